/**
 * Making the host's cgroup mounts visible in this mount namespace. `ip netns exec` (how volantd
 * enters `network.namespace`) mounts a fresh sysfs on `/sys`, which hides `/sys/fs/cgroup`; the
 * same hierarchies are mounted again here, at the same places, so cgroup paths mean the same
 * inside and outside. Nothing changes in the host's own mount namespace.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import { type MountEntry, parseMountinfo } from "./cgroup_host.ts";

/**
 * The mounts to make so that `wanted` (pid 1's cgroup mounts) are visible here too: those not
 * mounted at the same place in `own`, parents first (a tmpfs holding the hierarchies, then
 * each hierarchy).
 *
 * @example
 * ```ts
 * import { missingCgroupMounts, parseMountinfo } from "./mod.ts";
 * const host = parseMountinfo(
 *   "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n" +
 *     "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
 * );
 * console.assert(missingCgroupMounts(host, []).length === 2);
 * console.assert(missingCgroupMounts(host, host).length === 0);
 * ```
 */
export function missingCgroupMounts(
  wanted: readonly MountEntry[],
  own: readonly MountEntry[],
): MountEntry[] {
  const cgroups = wanted.filter((m) => isCgroup(m) && m.root === "/");
  const holders = wanted.filter((m) =>
    m.fsType === "tmpfs" &&
    cgroups.some((c) => c.mountPoint.startsWith(`${m.mountPoint}/`))
  );
  const here = new Set(own.map((m) => `${m.fsType} ${m.mountPoint}`));
  return [...holders, ...cgroups].filter((m) => !here.has(`${m.fsType} ${m.mountPoint}`));
}

function mountArgs(m: MountEntry): string[] {
  if (m.fsType === "tmpfs") return ["-t", "tmpfs", "-o", "mode=755,nosuid,nodev,noexec", "tmpfs"];
  if (m.fsType === "cgroup2") return ["-t", "cgroup2", "-o", "nosuid,nodev,noexec", "cgroup2"];
  // v1: the controllers (and a name=…) pick the same hierarchy again.
  const options = m.superOptions.filter((o) => o !== "rw" && o !== "ro");
  return ["-t", "cgroup", "-o", ["nosuid", "nodev", "noexec", ...options].join(","), "cgroup"];
}

function isCgroup(m: MountEntry): boolean {
  return m.fsType === "cgroup" || m.fsType === "cgroup2";
}

/**
 * When this process sees no cgroup mount at all while pid 1 does — it runs in a mount
 * namespace of its own that hid them, as under `ip netns exec` — mounts pid 1's again here;
 * returns the mount points it made. Does nothing where cgroups are visible (the host's own
 * mount namespace).
 *
 * @example
 * ```ts ignore
 * import { ensureCgroupMounts } from "./cgroup_mounts.ts";
 * console.log(await ensureCgroupMounts()); // [] on the host, ["/sys/fs/cgroup", …] in a netns
 * ```
 */
export async function ensureCgroupMounts(): Promise<string[]> {
  const own = parseMountinfo(await Deno.readTextFile("/proc/self/mountinfo"));
  if (own.some(isCgroup)) return [];
  const host = parseMountinfo(await Deno.readTextFile("/proc/1/mountinfo").catch(() => ""));
  const made: string[] = [];
  for (const m of missingCgroupMounts(host, own)) {
    await Deno.mkdir(m.mountPoint, { recursive: true }).catch(() => {});
    const out = await new Deno.Command("mount", {
      args: [...mountArgs(m), m.mountPoint],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new VolantError(
        "unsupported",
        `Cannot mount ${m.fsType} at ${m.mountPoint} in volantd's mount namespace: ` +
          new TextDecoder().decode(out.stderr).trim(),
        { mountPoint: m.mountPoint },
      );
    }
    made.push(m.mountPoint);
  }
  return made;
}
