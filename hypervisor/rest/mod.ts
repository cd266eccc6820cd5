/**
 * The base of the REST-API drivers (Cloud Hypervisor, Firecracker): HTTP over a unix socket,
 * launching the VMM detached until its API answers, probing its binary, opening a driver once
 * the probe passes, and {@linkcode RestVmmDriver}, the whole driver for a VMM described by a
 * small {@linkcode RestVmm}. Each VMM's folder holds only its description: API client, config,
 * command line, probe limits.
 *
 * ```ts ignore
 * import { openRestVmm, RestVmmDriver } from "./mod.ts";
 * class FirecrackerDriver extends RestVmmDriver<FcApi, FcInstanceState> {
 *   constructor(options: RestVmmDriverOptions) {
 *     super(FIRECRACKER, options);
 *   }
 * }
 * const driver = await openRestVmm("Firecracker", "firecracker", {}, probeFirecracker,
 *   (o) => new FirecrackerDriver(o));
 * ```
 *
 * @module
 */
export {
  RESTORE_STAGING,
  type RestSnapshots,
  type RestStep,
  type RestVmm,
  RestVmmDriver,
  type RestVmmDriverOptions,
  SAVE_STAGING,
} from "./driver.ts";
export {
  type CollectedState,
  collectSavedState,
  lendFiles,
  removeTree,
  requireEmptyDir,
  requireEnterable,
  requireSavedState,
} from "./saved_state.ts";
export { launchRestVmm, type LaunchRestVmmOptions } from "./launch.ts";
export { openRestVmm, type OpenRestVmmOptions } from "./open.ts";
export {
  type HttpMethod,
  restApiError,
  restJson,
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
