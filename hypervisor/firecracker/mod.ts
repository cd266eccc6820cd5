/**
 * The Firecracker hypervisor driver (REST API over a unix socket, hardware KVM only, ELF
 * vmlinux and raw disks only).
 *
 * ```ts ignore
 * import { openFirecrackerDriver } from "./mod.ts";
 * const driver = await openFirecrackerDriver({ binary: "firecracker" });
 * const handle = await driver.create(spec);
 * await driver.boot(handle);
 * ```
 *
 * @module
 */
export {
  FC_ENDPOINTS,
  type FcActionType,
  FcApi,
  type FcApiOptions,
  type FcInstanceInfo,
  type FcInstanceState,
} from "./api.ts";
export {
  FC_KERNEL_FORMATS,
  FC_MEMORY_FILE,
  FC_SNAPSHOT_FILES,
  FC_STATE_FILE,
  fcArgs,
  type FcBootSource,
  type FcConfigRequest,
  fcConfigRequests,
  type FcDrive,
  type FcMachineConfig,
  type FcNetworkInterface,
  type FcPaths,
  fcPaths,
  fcSerialPrefix,
  type FcSnapshotCreate,
  fcSnapshotCreate,
  type FcSnapshotLoad,
  fcSnapshotLoad,
  fcSpecRules,
} from "./config.ts";
export { fcStateOf, FirecrackerDriver, type FirecrackerDriverOptions } from "./driver.ts";
export { openFirecrackerDriver, type OpenFirecrackerOptions } from "./open.ts";
export { FC_INSTALL_FIX, FC_MIN_VERSION, probeFirecracker } from "./probe.ts";
