/**
 * The QEMU (`-M microvm`, QMP) hypervisor driver.
 *
 * ```ts ignore
 * import { openQemuDriver } from "./mod.ts";
 * const driver = await openQemuDriver({ accel: "auto" });
 * const handle = await driver.create(spec);
 * await driver.boot(handle);
 * ```
 *
 * @module
 */
export { QEMU_KERNEL_FORMATS, QemuDriver, type QemuDriverOptions, vmmStateOf } from "./driver.ts";
export { openQemuDriver, type OpenQemuOptions } from "./open.ts";
export {
  isSupportedVersion,
  parseQemuVersion,
  probeQemu,
  QEMU_INSTALL_FIX,
  QEMU_MIN_VERSION,
  type QemuProbe,
  type QemuVersion,
} from "./probe.ts";
export {
  optionValue,
  qemuArgs,
  type QemuArgsOptions,
  type QemuPaths,
  qemuPaths,
  qemuSpecRules,
  validateSpec,
} from "./cmdline.ts";
export {
  QmpClient,
  type QmpConnectOptions,
  type QmpEvent,
  qmpExecute,
  type QmpExecuteOptions,
  type QmpVersion,
} from "./qmp.ts";
