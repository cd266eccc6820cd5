/**
 * Hypervisor drivers: the {@linkcode Driver} interface, the QEMU driver, driver selection from
 * the daemon config, KVM detection, and the process management every driver shares.
 *
 * ```ts ignore
 * import { DaemonConfig } from "../schema/mod.ts";
 * import { selectDriver } from "./mod.ts";
 * const driver = await selectDriver(DaemonConfig.parse({}).hypervisor);
 * const handle = await driver.create(spec);
 * await driver.boot(handle);
 * ```
 *
 * @module
 */
export type {
  DiskSpec,
  Driver,
  DriverProbe,
  KernelFormat,
  NicSpec,
  ShutdownOptions,
  ShutdownResult,
  VmmHandle,
  VmmState,
  VmSpec,
} from "./driver.ts";
export { selectDriver, type SelectDriverOptions, type SelectLogger } from "./select.ts";
export { UnavailableDriver } from "./unavailable.ts";
export {
  type Accel,
  detectKvm,
  type DetectKvmOptions,
  KVM_API_VERSION,
  type KvmStatus,
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
