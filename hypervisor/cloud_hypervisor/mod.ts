/**
 * The Cloud Hypervisor hypervisor driver (REST API over a unix socket, hardware KVM only), and
 * the pieces it shares with the Firecracker driver: the HTTP-over-unix-socket client, the
 * launch/claim helpers and the VMM binary probe.
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
  chArgs,
  chDiskId,
  chNetId,
  type ChPaths,
  chPaths,
  chSpecRules,
  type ChVmConfig,
  chVmConfig,
} from "./config.ts";
export { chStateOf, CloudHypervisorDriver, type CloudHypervisorDriverOptions } from "./driver.ts";
export { openCloudHypervisorDriver, type OpenCloudHypervisorOptions } from "./open.ts";
export { CH_INSTALL_FIX, CH_MIN_VERSION, probeCloudHypervisor } from "./probe.ts";
export {
  checkRestSpec,
  type ClaimOptions,
  claimRuntimeDir,
  launchRestVmm,
  type LaunchRestVmmOptions,
  type RestSpecRules,
} from "./rest_vmm.ts";
export {
  type HttpMethod,
  restApiError,
  unixHttp,
  type UnixHttpFailure,
  type UnixHttpRequest,
  type UnixHttpResponse,
  vmmErrorText,
} from "./unix_http.ts";
export {
  atLeast,
  formatVersion,
  parseVmmVersion,
  probeVmm,
  type ProbeVmmOptions,
  type VmmProbe,
  type VmmVersion,
} from "./vmm_probe.ts";
