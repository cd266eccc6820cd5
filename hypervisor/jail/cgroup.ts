/**
 * One cgroup per VMM: made (with its limits) before the VMM starts, joined by the VMM's launch
 * wrapper before it execs the VMM, read back for the record, and removed — killing whatever is
 * left in it — once the VMM is gone.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type { CgroupHost } from "./cgroup_host.ts";
import {
  type CgroupLimits,
  type CgroupVersion,
  type Controller,
  CONTROLLERS,
  type VmmCgroup,
} from "./types.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function uniqueDirs(dirs: Record<Controller, string>): string[] {
  return [...new Set(CONTROLLERS.map((c) => dirs[c]))];
}

async function write(path: string, value: string): Promise<void> {
  try {
    await Deno.writeTextFile(path, value);
  } catch (err) {
    throw new VolantError(
      "internal",
      `Cannot write ${JSON.stringify(value)} to ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    );
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * Makes the parent directories (`cgroupParentDirs`) and, with v2, delegates memory, cpu and pids
 * down to them: every cgroup from the root to the parent gets them in `cgroup.subtree_control`.
 * A cgroup that holds processes cannot (v2's no-internal-process rule): `unsupported`, naming
 * it and the way out.
 *
 * @example
 * ```ts ignore
 * import { cgroupParentDirs, detectCgroupHost, prepareCgroupParent } from "./mod.ts";
 * const host = await detectCgroupHost("auto");
 * await prepareCgroupParent(host, cgroupParentDirs(host, "auto"));
 * ```
 */
export async function prepareCgroupParent(
  host: CgroupHost,
  dirs: Record<Controller, string>,
): Promise<void> {
  for (const dir of uniqueDirs(dirs)) {
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (err) {
      throw new VolantError(
        "unsupported",
        `Cannot make the VMM cgroup parent ${dir}: ${(err as Error).message} (volantd must run ` +
          "as root to jail VMMs; or set security.cgroup_parent elsewhere, or security.jail: off)",
        { dir, setting: "security.cgroup_parent" },
        { cause: err },
      );
    }
  }
  if (host.version !== "v2") return;
  const mount = host.mounts.memory;
  const parent = dirs.memory;
  const chain = [mount];
  for (const part of parent.slice(mount.length).split("/").filter((p) => p !== "")) {
    chain.push(`${chain.at(-1)}/${part}`);
  }
  for (const dir of chain) {
    const enabled = (await Deno.readTextFile(`${dir}/cgroup.subtree_control`)).trim().split(/\s+/);
    const want = CONTROLLERS.filter((c) => !enabled.includes(c));
    if (want.length === 0) continue;
    try {
      await Deno.writeTextFile(
        `${dir}/cgroup.subtree_control`,
        want.map((c) => `+${c}`).join(" "),
      );
    } catch (err) {
      throw new VolantError(
        "unsupported",
        `cgroup v2: cannot delegate ${want.join(", ")} below ${dir} ` +
          `(${(err as Error).message}); a cgroup that holds processes (volantd's own, under ` +
          "systemd) cannot hand controllers down: set security.cgroup_parent to an absolute " +
          "path such as /volant",
        { dir, setting: "security.cgroup_parent" },
        { cause: err },
      );
    }
  }
}

/**
 * The limits as the cgroup files spell them, by file name.
 *
 * @example
 * ```ts
 * import { limitFiles } from "./cgroup.ts";
 * const limits = { memoryMaxBytes: 1024, cpuQuotaUs: 150000, cpuPeriodUs: 100000, pidsMax: 64 };
 * console.assert(limitFiles("v2", limits)["cpu.max"] === "150000 100000");
 * console.assert(limitFiles("v1", limits)["memory.limit_in_bytes"] === "1024");
 * ```
 */
export function limitFiles(version: CgroupVersion, limits: CgroupLimits): Record<string, string> {
  return version === "v2"
    ? {
      "memory.max": String(limits.memoryMaxBytes),
      "cpu.max": `${limits.cpuQuotaUs} ${limits.cpuPeriodUs}`,
      "pids.max": String(limits.pidsMax),
    }
    : {
      "memory.limit_in_bytes": String(limits.memoryMaxBytes),
      "cpu.cfs_period_us": String(limits.cpuPeriodUs),
      "cpu.cfs_quota_us": String(limits.cpuQuotaUs),
      "pids.max": String(limits.pidsMax),
    };
}

const FILE_CONTROLLER: Record<string, Controller> = {
  "memory.max": "memory",
  "memory.limit_in_bytes": "memory",
  "cpu.max": "cpu",
  "cpu.cfs_period_us": "cpu",
  "cpu.cfs_quota_us": "cpu",
  "pids.max": "pids",
};

/**
 * Makes the cgroup `<parent>/<name>` in each hierarchy with `limits` written. One that is there
 * already belongs to this VM's last VMM: whatever still runs in it is killed first.
 *
 * @example
 * ```ts ignore
 * import { createVmmCgroup } from "./cgroup.ts";
 * const cg = await createVmmCgroup(host, parentDirs, "web", limits);
 * ```
 */
export async function createVmmCgroup(
  host: CgroupHost,
  parentDirs: Record<Controller, string>,
  name: string,
  limits: CgroupLimits,
): Promise<VmmCgroup> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new VolantError("invalid_argument", `Cannot name a cgroup ${JSON.stringify(name)}`);
  }
  const dirs = Object.fromEntries(
    CONTROLLERS.map((c) => [c, `${parentDirs[c]}/${name}`]),
  ) as Record<Controller, string>;
  const cgroup: VmmCgroup = { version: host.version, dirs, limits };
  await killCgroupMembers(cgroup);
  for (const dir of uniqueDirs(dirs)) await Deno.mkdir(dir, { recursive: true });
  for (const [file, value] of Object.entries(limitFiles(host.version, limits))) {
    await write(`${dirs[FILE_CONTROLLER[file]!]}/${file}`, value);
  }
  return cgroup;
}

/** The `cgroup.procs` files a VMM writes its pid to, to join its cgroup. */
export function cgroupProcsFiles(cgroup: VmmCgroup): string[] {
  return uniqueDirs(cgroup.dirs).map((dir) => `${dir}/cgroup.procs`);
}

/**
 * The limit files as they read now (name → trimmed content; absent when unreadable).
 *
 * @example
 * ```ts ignore
 * import { readCgroupLimits } from "./cgroup.ts";
 * console.log(await readCgroupLimits(cg)); // { "memory.max": "469762048", … }
 * ```
 */
export async function readCgroupLimits(cgroup: VmmCgroup): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const file of Object.keys(limitFiles(cgroup.version, cgroup.limits))) {
    const text = await Deno.readTextFile(`${cgroup.dirs[FILE_CONTROLLER[file]!]}/${file}`)
      .catch(() => null);
    if (text !== null) out[file] = text.trim();
  }
  return out;
}

/** The pids in the cgroup, in any of its hierarchies (none when it does not exist). */
export async function cgroupPids(cgroup: VmmCgroup): Promise<number[]> {
  const pids = new Set<number>();
  for (const file of cgroupProcsFiles(cgroup)) {
    const text = await Deno.readTextFile(file).catch(() => "");
    for (const line of text.split("\n")) if (/^\d+$/.test(line)) pids.add(Number(line));
  }
  return [...pids];
}

/**
 * SIGKILLs every process in the cgroup (they are its VMM's: nothing else joins it) and waits
 * until none is left; false when some remain after `timeoutMs`.
 */
export async function killCgroupMembers(cgroup: VmmCgroup, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await cgroupPids(cgroup);
    if (pids.length === 0) return true;
    if (Date.now() > deadline) return false;
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }
    await sleep(20);
  }
}

/**
 * Kills what is left in the cgroup and removes its directories; a missing cgroup is fine.
 * Throws `internal` when a process survives SIGKILL or a directory cannot be removed.
 *
 * @example
 * ```ts ignore
 * import { removeVmmCgroup } from "./cgroup.ts";
 * await removeVmmCgroup(handle.jail.cgroup);
 * ```
 */
export async function removeVmmCgroup(cgroup: VmmCgroup): Promise<void> {
  if (!(await killCgroupMembers(cgroup))) {
    throw new VolantError(
      "internal",
      `Processes ${(await cgroupPids(cgroup)).join(", ")} survive SIGKILL in ${cgroup.dirs.memory}`,
      { cgroup: cgroup.dirs },
    );
  }
  for (const dir of uniqueDirs(cgroup.dirs)) {
    for (let attempt = 0;; attempt++) {
      try {
        await Deno.remove(dir);
        break;
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) break;
        // EBUSY while the last task's exit is still being accounted.
        if (attempt >= 50) {
          throw new VolantError(
            "internal",
            `Cannot remove cgroup ${dir}: ${(err as Error).message}`,
            { dir },
            { cause: err },
          );
        }
        await sleep(20);
      }
    }
  }
}

/** Names of the cgroups under the parent (the VMM cgroups a previous daemon left). */
export async function listVmmCgroups(parentDirs: Record<Controller, string>): Promise<string[]> {
  const names = new Set<string>();
  for (const dir of uniqueDirs(parentDirs)) {
    if (!(await exists(dir))) continue;
    for await (const entry of Deno.readDir(dir)) if (entry.isDirectory) names.add(entry.name);
  }
  return [...names].sort();
}
