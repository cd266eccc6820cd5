/**
 * What confines one VMM (the Firecracker jailer's model, for every driver): its own uid and gid,
 * its own cgroup with memory, CPU and process limits, and its own mount namespace whose root is
 * a tmpfs holding only that VM's files and the devices it needs. The daemon prepares the uid, the
 * cgroup and the jail directory; a driver launches its VMM through {@linkcode jailLaunch}.
 *
 * @module
 */

/** The cgroup controllers a jail uses. */
export const CONTROLLERS = ["memory", "cpu", "pids"] as const;
/** One of {@linkcode CONTROLLERS}. */
export type Controller = typeof CONTROLLERS[number];

/** `v2`: the unified hierarchy; `v1`: one legacy hierarchy per controller. */
export type CgroupVersion = "v1" | "v2";

/** The limits written into a VMM's cgroup. */
export interface CgroupLimits {
  /** `memory.max` (v1 `memory.limit_in_bytes`): guest memory plus the VMM's own. */
  memoryMaxBytes: number;
  /** CPU time per period (`cpu.max` quota; v1 `cpu.cfs_quota_us`). */
  cpuQuotaUs: number;
  /** The period the quota applies to (v1 `cpu.cfs_period_us`). */
  cpuPeriodUs: number;
  /** `pids.max`: processes and threads. */
  pidsMax: number;
}

/** One VMM's cgroup: a directory per controller (all the same one with v2). */
export interface VmmCgroup {
  version: CgroupVersion;
  dirs: Record<Controller, string>;
  limits: CgroupLimits;
}

/** Device nodes a jail can hold besides `null`, `zero`, `random` and `urandom`. */
export type JailDevice = "kvm" | "tun";

/** How one VMM is confined; persisted with its handle so a restarted daemon can release it. */
export interface VmmJail {
  /** The VMM's own unprivileged uid. */
  uid: number;
  /** The VMM's own gid. */
  gid: number;
  /**
   * An empty directory (root's, on the host) that becomes the VMM's root: a tmpfs is mounted on
   * it inside the VMM's own mount namespace, so the host never sees what the jail holds.
   */
  root: string;
  cgroup: VmmCgroup;
  /** Device nodes made in the jail's `/dev`, owned by the VMM's uid. */
  devices: JailDevice[];
  /**
   * More paths the VMM may read and execute (e.g. the interpreter of a script VMM in tests).
   * The VMM's binary, its shared libraries and its data files are found by the driver.
   */
  readOnly?: string[];
}
