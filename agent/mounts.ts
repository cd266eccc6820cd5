/**
 * The filesystems PID 1 needs, mounted idempotently: kestrel reads `/proc/self/mountinfo`,
 * plans only what is missing (stage 0 already mounted /proc, /sys, /dev, /tmp and /run) and
 * mounts the rest. Started from an initramfs with nothing mounted, the same plan mounts all.
 *
 * @module
 */
import { MS_NODEV, MS_NOEXEC, MS_NOSUID } from "./libc.ts";
import type { System } from "./system.ts";

/** One line of `/proc/<pid>/mountinfo`. */
export interface MountEntry {
  /** Unique mount id. */
  id: number;
  /** Id of the parent mount. */
  parentId: number;
  /** Root of the mount within its filesystem. */
  root: string;
  /** Mount point, relative to the process's root (escapes decoded). */
  mountPoint: string;
  /** Per-mount options (`rw,nosuid`). */
  options: string;
  /** Filesystem type (`proc`, `tmpfs`…). */
  fsType: string;
  /** Mount source (`/dev/vda`, `none`…). */
  source: string;
  /** Per-superblock options. */
  superOptions: string;
}

/** One filesystem to mount: the arguments of `mount(2)`. */
export interface MountSpec {
  /** Source (`proc`, `tmpfs`, a device path). */
  source: string;
  /** Mount point (absolute). */
  target: string;
  /** Filesystem type. */
  fstype: string;
  /** `MS_*` flags. */
  flags: number;
  /** Filesystem option string, if any. */
  data?: string;
}

const SAFE = MS_NOSUID | MS_NODEV | MS_NOEXEC;

/**
 * What PID 1 needs mounted, parents before children: proc, sysfs, devtmpfs, a private devpts
 * instance, /dev/shm, /tmp and /run.
 */
export const STANDARD_MOUNTS: readonly MountSpec[] = [
  { source: "proc", target: "/proc", fstype: "proc", flags: SAFE },
  { source: "sysfs", target: "/sys", fstype: "sysfs", flags: SAFE },
  { source: "devtmpfs", target: "/dev", fstype: "devtmpfs", flags: MS_NOSUID, data: "mode=0755" },
  {
    source: "devpts",
    target: "/dev/pts",
    fstype: "devpts",
    flags: MS_NOSUID | MS_NOEXEC,
    data: "newinstance,ptmxmode=0666,mode=0620",
  },
  {
    source: "shm",
    target: "/dev/shm",
    fstype: "tmpfs",
    flags: MS_NOSUID | MS_NODEV,
    data: "mode=1777",
  },
  {
    source: "tmpfs",
    target: "/tmp",
    fstype: "tmpfs",
    flags: MS_NOSUID | MS_NODEV,
    data: "mode=1777",
  },
  {
    source: "tmpfs",
    target: "/run",
    fstype: "tmpfs",
    flags: MS_NOSUID | MS_NODEV,
    data: "mode=0755",
  },
];

/** Where `/dev/ptmx` points when kestrel has to create it. */
export const PTMX_LINK = "pts/ptmx";

function unescapeField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Parses `/proc/self/mountinfo`. Octal escapes (`\040` for a space) are decoded; malformed
 * lines are skipped.
 *
 * @example
 * ```ts
 * import { parseMountinfo } from "./mounts.ts";
 * const [m] = parseMountinfo("22 1 0:21 / /proc rw,nosuid shared:5 - proc proc rw\n");
 * console.assert(m?.mountPoint === "/proc" && m.fsType === "proc");
 * ```
 */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(" ");
    const dash = fields.indexOf("-");
    if (dash < 6 || fields.length < dash + 3) continue;
    const id = Number(fields[0]);
    const parentId = Number(fields[1]);
    if (!Number.isInteger(id) || !Number.isInteger(parentId)) continue;
    out.push({
      id,
      parentId,
      root: unescapeField(fields[3] ?? ""),
      mountPoint: unescapeField(fields[4] ?? ""),
      options: fields[5] ?? "",
      fsType: fields[dash + 1] ?? "",
      source: unescapeField(fields[dash + 2] ?? ""),
      superOptions: fields[dash + 3] ?? "",
    });
  }
  return out;
}

/**
 * The mounts still missing: every wanted spec whose target is not already a mount point
 * (whatever is mounted there is kept). Order is preserved, so parents come first.
 *
 * @example
 * ```ts
 * import { parseMountinfo, planMounts, STANDARD_MOUNTS } from "./mounts.ts";
 * const mounted = parseMountinfo("22 1 0:21 / /proc rw - proc proc rw\n");
 * const plan = planMounts(mounted, STANDARD_MOUNTS);
 * console.assert(!plan.some((m) => m.target === "/proc") && plan[0]?.target === "/sys");
 * ```
 */
export function planMounts(
  mounted: readonly MountEntry[],
  wanted: readonly MountSpec[] = STANDARD_MOUNTS,
): MountSpec[] {
  const points = new Set(mounted.map((m) => m.mountPoint));
  return wanted.filter((spec) => !points.has(spec.target));
}

/**
 * One-line description of a mount, as kestrel logs it: `devpts on /dev/pts (newinstance,…)`.
 *
 * @example
 * ```ts
 * import { describeMount } from "./mounts.ts";
 * const text = describeMount({ source: "tmpfs", target: "/run", fstype: "tmpfs", flags: 0 });
 * console.assert(text === "tmpfs on /run");
 * ```
 */
export function describeMount(spec: MountSpec): string {
  return `${spec.fstype} on ${spec.target}${spec.data === undefined ? "" : ` (${spec.data})`}`;
}

async function readMounted(system: System): Promise<MountEntry[] | undefined> {
  try {
    return parseMountinfo(await system.readText("/proc/self/mountinfo"));
  } catch {
    return undefined; // no /proc yet
  }
}

async function mountOne(system: System, spec: MountSpec): Promise<void> {
  if (!(await system.exists(spec.target))) await system.mkdirp(spec.target);
  system.mount(spec);
}

/**
 * Mounts whatever of `wanted` is missing, /proc first (it is needed to read mountinfo), then
 * creates `/dev/ptmx → pts/ptmx` when /dev has no ptmx. Returns the specs it mounted.
 * Throws the first mount error (a `VolantError` naming the errno and the mount point).
 *
 * @example
 * ```ts ignore
 * import { ensureMounts } from "./mounts.ts";
 * import { realSystem } from "./system.ts";
 * const mounted = await ensureMounts(realSystem());
 * ```
 */
export async function ensureMounts(
  system: System,
  wanted: readonly MountSpec[] = STANDARD_MOUNTS,
): Promise<MountSpec[]> {
  const done: MountSpec[] = [];
  let mounted = await readMounted(system);
  if (mounted === undefined) {
    const proc = wanted.find((spec) => spec.target === "/proc");
    if (proc !== undefined) {
      await mountOne(system, proc);
      done.push(proc);
    }
    mounted = (await readMounted(system)) ?? [];
    if (proc !== undefined && !mounted.some((m) => m.mountPoint === "/proc")) {
      // A dry run (or a failed read) cannot see the fresh /proc: count it as mounted.
      mounted.push({
        id: 0,
        parentId: 0,
        root: "/",
        mountPoint: "/proc",
        options: "",
        fsType: "proc",
        source: "proc",
        superOptions: "",
      });
    }
  }
  for (const spec of planMounts(mounted, wanted)) {
    await mountOne(system, spec);
    done.push(spec);
  }
  if (wanted.some((spec) => spec.target === "/dev/pts") && !(await system.exists("/dev/ptmx"))) {
    await system.symlink(PTMX_LINK, "/dev/ptmx");
  }
  return done;
}
