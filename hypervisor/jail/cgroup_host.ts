/**
 * Finding the cgroup controllers a jail needs (memory, cpu, pids): cgroup v2 when the unified
 * hierarchy offers all three, else the legacy v1 hierarchies (hybrid hosts), else a refusal that
 * says what the host has. Also where VMM cgroups go (`security.cgroup_parent`) and what
 * delegation the parent needs.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import { type CgroupVersion, type Controller, CONTROLLERS } from "./types.ts";

/** One mount from `/proc/<pid>/mountinfo`. */
export interface MountEntry {
  /** Where it is mounted. */
  mountPoint: string;
  /** The path inside its filesystem that is mounted there (`/` for a whole hierarchy). */
  root: string;
  fsType: string;
  source: string;
  /** Per-superblock options: for cgroup v1 the controllers (`rw,memory`). */
  superOptions: string[];
}

function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Parses `/proc/<pid>/mountinfo`.
 *
 * @example
 * ```ts
 * import { parseMountinfo } from "./cgroup_host.ts";
 * const [m] = parseMountinfo("35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
 * console.assert(m?.fsType === "cgroup" && m.superOptions.includes("memory"));
 * ```
 */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const dash = line.indexOf(" - ");
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(" ");
    const right = line.slice(dash + 3).split(" ");
    if (left.length < 5 || right.length < 3) continue;
    out.push({
      root: unescape(left[3]!),
      mountPoint: unescape(left[4]!),
      fsType: right[0]!,
      source: right[1]!,
      superOptions: right[2]!.split(","),
    });
  }
  return out;
}

/**
 * Parses `/proc/<pid>/cgroup`: the process's cgroup per v1 controller, and `""` for the v2
 * (unified) one.
 *
 * @example
 * ```ts
 * import { parseProcCgroup } from "./cgroup_host.ts";
 * const m = parseProcCgroup("4:memory:/job/1\n1:cpu,cpuacct:/\n0::/init.scope\n");
 * console.assert(m.get("memory") === "/job/1" && m.get("cpu") === "/" && m.get("") === "/init.scope");
 * ```
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const path = line.slice(second + 1);
    const controllers = line.slice(first + 1, second);
    if (controllers === "") out.set("", path);
    for (const c of controllers.split(",")) if (c !== "") out.set(c, path);
  }
  return out;
}

/** Where the jail's controllers are, and where this process sits in them. */
export interface CgroupHost {
  version: CgroupVersion;
  /** Mount point of each controller's hierarchy (the same unified mount with v2). */
  mounts: Record<Controller, string>;
  /** This process's cgroup in each hierarchy, relative to its mount (`/` for the root). */
  own: Record<Controller, string>;
  /** One line for logs and `volar doctor`. */
  description: string;
}

/** Files {@linkcode detectCgroupHost} reads (tests pass their own). */
export interface CgroupSources {
  mountinfo: string;
  procCgroup: string;
  /** Reads a file under a cgroup mount (`cgroup.controllers`); null when unreadable. */
  readFile: (path: string) => Promise<string | null>;
}

async function hostSources(): Promise<CgroupSources> {
  const own = await Deno.readTextFile("/proc/self/mountinfo");
  // In a mount namespace that hid the cgroup mounts (`ip netns exec` mounts a fresh /sys), the
  // host's are what volantd would mount again (cgroup_mounts.ts): judge by pid 1's.
  const hidden = !parseMountinfo(own).some((m) => m.fsType === "cgroup" || m.fsType === "cgroup2");
  return {
    mountinfo: hidden ? await Deno.readTextFile("/proc/1/mountinfo").catch(() => own) : own,
    procCgroup: await Deno.readTextFile("/proc/self/cgroup"),
    readFile: (path) => Deno.readTextFile(path).catch(() => null),
  };
}

function record<T>(fn: (c: Controller) => T): Record<Controller, T> {
  return Object.fromEntries(CONTROLLERS.map((c) => [c, fn(c)])) as Record<Controller, T>;
}

/** What the host offers, in words (for refusals). */
function survey(v2: MountEntry | undefined, v2Controllers: string[], v1: MountEntry[]): string {
  const parts: string[] = [];
  parts.push(
    v2
      ? `cgroup2 at ${v2.mountPoint} offers ${v2Controllers.join(", ") || "no controllers"}`
      : "no cgroup2 mount",
  );
  const legacy = CONTROLLERS.filter((c) => v1.some((m) => m.superOptions.includes(c)));
  parts.push(
    legacy.length > 0
      ? `cgroup v1 hierarchies for ${legacy.join(", ")}`
      : "no cgroup v1 hierarchies",
  );
  return parts.join("; ");
}

const FIX = "boot the host with cgroup v2 (systemd.unified_cgroup_hierarchy=1, the default on " +
  "Debian 12), or set security.jail: off (VMMs then run as root, unconfined)";

/**
 * Finds the controllers a jail needs. `prefer` is `security.cgroup`: `auto` takes v2 when the
 * unified hierarchy offers memory, cpu and pids, else v1 hierarchies for all three; `v2` and
 * `v1` insist. Throws `unsupported` saying what the host has and the way out.
 *
 * @example
 * ```ts ignore
 * import { detectCgroupHost } from "./cgroup_host.ts";
 * const host = await detectCgroupHost("auto");
 * console.log(host.description); // cgroup v2 at /sys/fs/cgroup (memory, cpu, pids)
 * ```
 */
export async function detectCgroupHost(
  prefer: "auto" | CgroupVersion,
  sources?: CgroupSources,
): Promise<CgroupHost> {
  const src = sources ?? await hostSources();
  const mounts = parseMountinfo(src.mountinfo);
  const own = parseProcCgroup(src.procCgroup);
  const v2 = mounts.find((m) => m.fsType === "cgroup2" && m.root === "/");
  const v2Controllers = v2
    ? ((await src.readFile(`${v2.mountPoint}/cgroup.controllers`)) ?? "").trim().split(/\s+/)
      .filter((c) => c !== "")
    : [];
  const v1 = mounts.filter((m) => m.fsType === "cgroup" && m.root === "/");
  const v2Ok = v2 !== undefined && CONTROLLERS.every((c) => v2Controllers.includes(c));
  const v1Mount = (c: Controller) => v1.find((m) => m.superOptions.includes(c));
  const v1Ok = CONTROLLERS.every((c) => v1Mount(c) !== undefined && own.has(c));
  if (v2Ok && prefer !== "v1") {
    return {
      version: "v2",
      mounts: record(() => v2.mountPoint),
      own: record(() => own.get("") ?? "/"),
      description: `cgroup v2 at ${v2.mountPoint} (${CONTROLLERS.join(", ")})`,
    };
  }
  if (v1Ok && prefer !== "v2") {
    return {
      version: "v1",
      mounts: record((c) => v1Mount(c)!.mountPoint),
      own: record((c) => own.get(c)!),
      description: `cgroup v1 hierarchies (${
        CONTROLLERS.map((c) => v1Mount(c)!.mountPoint).join(", ")
      })` + (v2 ? `; cgroup2 at ${v2.mountPoint} lacks ${missing(v2Controllers)}` : ""),
    };
  }
  const wanted = prefer === "auto" ? "cgroup v2 or v1" : `cgroup ${prefer}`;
  throw new VolantError(
    "unsupported",
    `The VMM jail needs the memory, cpu and pids controllers (${wanted}), and this host has ` +
      `${survey(v2, v2Controllers, v1)}: ${FIX}` +
      (prefer !== "auto" ? `; or set security.cgroup: auto` : ""),
    { setting: "security.cgroup", prefer },
  );
}

function missing(have: string[]): string {
  return CONTROLLERS.filter((c) => !have.includes(c)).join(", ");
}

const PARENT = /^\/?[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;

/**
 * The directories VMM cgroups are made in, per controller. `parent` is
 * `security.cgroup_parent`: an absolute path sits under the hierarchy's root, a relative one
 * under the cgroup volantd itself runs in; `auto` is `/volant` with v2 (a top-level cgroup,
 * as the Firecracker jailer makes) and `volant` with v1 (below volantd's own cgroups, so VMMs
 * stay inside whatever the daemon was started in).
 *
 * @example
 * ```ts
 * import { cgroupParentDirs } from "./cgroup_host.ts";
 * const dirs = cgroupParentDirs({
 *   version: "v1", description: "",
 *   mounts: { memory: "/cg/memory", cpu: "/cg/cpu", pids: "/cg/pids" },
 *   own: { memory: "/job/7", cpu: "/", pids: "/" },
 * }, "auto");
 * console.assert(dirs.memory === "/cg/memory/job/7/volant" && dirs.cpu === "/cg/cpu/volant");
 * ```
 */
export function cgroupParentDirs(host: CgroupHost, parent: string): Record<Controller, string> {
  const effective = parent === "auto" ? (host.version === "v2" ? "/volant" : "volant") : parent;
  if (!PARENT.test(effective) || effective.split("/").some((p) => p === "." || p === "..")) {
    throw new VolantError(
      "invalid_argument",
      `security.cgroup_parent: ${JSON.stringify(parent)} is not a cgroup path (names of ` +
        "letters, digits, '.', '_', '-' joined by '/'; absolute: below the root, relative: " +
        "below volantd's own cgroup)",
      { setting: "security.cgroup_parent", value: parent },
    );
  }
  const join = (...parts: string[]) => parts.join("/").replace(/\/+/g, "/").replace(/\/$/, "");
  return record((c) =>
    effective.startsWith("/")
      ? join(host.mounts[c], effective)
      : join(host.mounts[c], host.own[c], effective)
  );
}
