/**
 * VMM jails, the Firecracker jailer's model for every driver: each VMM runs as its own
 * unprivileged uid/gid, in its own cgroup (memory, CPU and process limits) and in a mount
 * namespace of its own whose root is a tmpfs holding only its VM's files (bound at their own
 * paths) and the devices it needs, with no new privileges. The daemon prepares the uid, the
 * cgroup and the jail directory; a driver launches its VMM through {@linkcode jailLaunch}.
 *
 * ```ts ignore
 * import { cgroupParentDirs, createVmmCgroup, detectCgroupHost, vmmLimits } from "./mod.ts";
 * const host = await detectCgroupHost("auto");
 * const cgroup = await createVmmCgroup(host, cgroupParentDirs(host, "auto"), "web",
 *   vmmLimits({ cpus: 1, memoryMib: 256, accel: "tcg" }));
 * ```
 *
 * @module
 */
export {
  type CgroupLimits,
  type CgroupVersion,
  type Controller,
  CONTROLLERS,
  type JailDevice,
  type VmmCgroup,
  type VmmJail,
} from "./types.ts";
export {
  type CgroupHost,
  cgroupParentDirs,
  type CgroupSources,
  detectCgroupHost,
  type MountEntry,
  parseMountinfo,
  parseProcCgroup,
} from "./cgroup_host.ts";
export { ensureCgroupMounts, missingCgroupMounts } from "./cgroup_mounts.ts";
export {
  cgroupPids,
  cgroupProcsFiles,
  createVmmCgroup,
  killCgroupMembers,
  limitFiles,
  listVmmCgroups,
  prepareCgroupParent,
  readCgroupLimits,
  removeVmmCgroup,
} from "./cgroup.ts";
export { allocateUid, checkUidRange, checkUidRangeOnHost, type UidRange } from "./uid_range.ts";
export { type BindMode, type JailOp, type JailPaths, planJail } from "./plan.ts";
export { JAIL_SCRIPT, type JailLaunch, jailLaunch } from "./launch.ts";
export { parseLdd, programFiles } from "./program_files.ts";
export {
  CPU_PERIOD_US,
  DEFAULT_PIDS_MAX,
  type LimitInputs,
  VMM_CPU_SHARE,
  VMM_MEMORY_OVERHEAD_MIB,
  vmmLimits,
} from "./limits.ts";
export { prepareVmmJail, type VmmJailFiles } from "./prepare.ts";
