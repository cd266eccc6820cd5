/**
 * Daemon services: the VM service and its event emitter.
 *
 * @module
 */
export {
  serviceConfigFrom,
  VmService,
  type VmServiceConfig,
  type VmServiceOptions,
} from "./vms.ts";
export {
  type VmDeletedEvent,
  type VmEvent,
  type VmEventListener,
  VmEvents,
  type VmStateEvent,
  type VmWorkloadEvent,
} from "./events.ts";
export { BASE_CMDLINE, buildCmdline, type VmPaths, vmPaths } from "./spec.ts";
export {
  type ArtifactCacheLike,
  type ArtifactProgress,
  type PluginBootFiles,
  PluginService,
  type PluginServiceOptions,
} from "./plugins.ts";
export { ImageService, type ImageServiceOptions, type PullProgress } from "./images.ts";
export { TOKEN_HINT, TokenService, type TokenServiceOptions } from "./tokens.ts";
export {
  REGISTRY_CREDENTIALS_FILE,
  RegistryCredentialService,
  type RegistryCredentialServiceOptions,
} from "./registries.ts";
