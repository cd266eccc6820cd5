/**
 * The Cloud Hypervisor hypervisor driver (REST API over a unix socket, hardware KVM only). The
 * pieces it shares with the Firecracker driver (the HTTP-over-unix-socket client, the launch
 * helper, the VMM binary probe) live in `../rest/`, the spec check and runtime-dir claim in
 * `../spec_check.ts` and `../spec_files.ts`; they are re-exported here as before.
 *
 * ```ts ignore
 * import { openCloudHypervisorDriver } from "./mod.ts";
 * const driver = await openCloudHypervisorDriver({ binary: "cloud-hypervisor" });
 * const handle = await driver.create(spec);
 * await driver.boot(handle);
 * ```
 *
 * @module
 */
export {
  CH_API_BASE,
  CH_ENDPOINTS,
  type ChAction,
  ChApi,
  type ChApiOptions,
  type ChCounters,
  type ChPing,
  type ChVmInfo,
  type ChVmState,
} from "./api.ts";
export {
  CH_KERNEL_FORMATS,
  CH_SNAPSHOT_FILES,
  chArgs,
  chDiskId,
  chNetId,
  type ChPaths,
  chPaths,
  type ChRestoreConfig,
  chRestoreConfig,
  chRestoredVmConfig,
  type ChSnapshotConfig,
  chSnapshotConfig,
  chSpecRules,
  type ChVmConfig,
  chVmConfig,
} from "./config.ts";
export { chStateOf, CloudHypervisorDriver, type CloudHypervisorDriverOptions } from "./driver.ts";
export { openCloudHypervisorDriver, type OpenCloudHypervisorOptions } from "./open.ts";
export { CH_INSTALL_FIX, CH_MIN_VERSION, probeCloudHypervisor } from "./probe.ts";
export { checkVmSpec as checkRestSpec, type VmSpecRules as RestSpecRules } from "../spec_check.ts";
export { type ClaimOptions, claimRuntimeDir } from "../spec_files.ts";
export {
  atLeast,
  formatVersion,
  type HttpMethod,
  launchRestVmm,
  type LaunchRestVmmOptions,
  parseVmmVersion,
  probeVmm,
  type ProbeVmmOptions,
  restApiError,
  unixHttp,
  type UnixHttpFailure,
  type UnixHttpRequest,
  type UnixHttpResponse,
  vmmErrorText,
  type VmmProbe,
  type VmmVersion,
} from "../rest/mod.ts";
