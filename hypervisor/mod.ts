/**
 * Hypervisor drivers: the {@linkcode Driver} interface, the Cloud Hypervisor, Firecracker and
 * QEMU drivers, probing all of them and selecting one from the daemon config (`auto`: the first
 * usable of {@linkcode AUTO_ORDER}), KVM detection, and the process management and VMM jails
 * (`jail/`) every driver shares. The Cloud Hypervisor and Firecracker drivers are descriptions
 * on one REST-VMM driver (`rest/`); all three check specs with `spec_check.ts`.
 *
 * ```ts ignore
 * import { DaemonConfig } from "../schema/mod.ts";
 * import { selectDriver } from "./mod.ts";
 * const driver = await selectDriver(DaemonConfig.parse({}).hypervisor, console, {
 *   kernelFormat: "bzImage",
 * });
 * const handle = await driver.create(spec);
 * await driver.boot(handle);
 * ```
 *
 * @module
 */
export type {
  CreateHooks,
  DiskSpec,
  Driver,
  DriverProbe,
  KernelFormat,
  NicSpec,
  SavedState,
  ShutdownOptions,
  ShutdownResult,
  VmmHandle,
  VmmState,
  VmSpec,
} from "./driver.ts";
export {
  type BootProver,
  type BootVerdict,
  chooseDriver,
  selectDriver,
  type SelectDriverOptions,
  type Selection,
  type SelectLogger,
} from "./select.ts";
export {
  BOOT_PROBE_CMDLINE_KEY,
  BOOT_PROBE_MARKER,
  type BootProbeOptions,
  type BootProbeResult,
  consoleTail,
  hasProbeMarker,
  probeBoot,
  type ProbeGuest,
  probeNonce,
  reapProbeLeftovers,
} from "./boot_probe.ts";
export {
  AUTO_ORDER,
  type HypervisorName,
  type HypervisorReport,
  type HypervisorSurvey,
  probeAllHypervisors,
  type ProbeAllOptions,
} from "./probe_all.ts";
export { UnavailableDriver } from "./unavailable.ts";
export type { CgroupLimits, VmmCgroup, VmmJail } from "./jail/mod.ts";
export {
  type Accel,
  detectKvm,
  type DetectKvmOptions,
  hostAccelFingerprint,
  KVM_API_VERSION,
  type KvmStatus,
  kvmSuspect,
  resolveAccel,
} from "./kvm.ts";
export { stopLadder, type StopLadderOptions } from "./ladder.ts";
export {
  childStatus,
  type DetachedProcess,
  fileSize,
  findExecutable,
  isAlive,
  logTail,
  parseProcStat,
  type ProcStat,
  readProcStat,
  readStartTime,
  signalProcess,
  spawnDetached,
  type SpawnDetachedOptions,
  waitGone,
  type WaitGoneOptions,
} from "./process/mod.ts";
export {
  openQemuDriver,
  type OpenQemuOptions,
  QEMU_KERNEL_FORMATS,
  QEMU_MIN_VERSION,
  QemuDriver,
  type QemuDriverOptions,
} from "./qemu/mod.ts";
export {
  CH_INSTALL_FIX,
  CH_KERNEL_FORMATS,
  CH_MIN_VERSION,
  CloudHypervisorDriver,
  type CloudHypervisorDriverOptions,
  openCloudHypervisorDriver,
  type OpenCloudHypervisorOptions,
  probeCloudHypervisor,
  type VmmProbe,
} from "./cloud_hypervisor/mod.ts";
export {
  FC_INSTALL_FIX,
  FC_KERNEL_FORMATS,
  FC_MIN_VERSION,
  FirecrackerDriver,
  type FirecrackerDriverOptions,
  openFirecrackerDriver,
  type OpenFirecrackerOptions,
  probeFirecracker,
} from "./firecracker/mod.ts";
