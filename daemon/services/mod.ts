/**
 * Daemon services: the VM service, its events and their retention, plugins, images, tokens and
 * registry credentials.
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
  type NewEvent,
  type VmDeletedEvent,
  type VmEvent,
  type VmEventListener,
  VmEvents,
  type VmStateEvent,
  type VmWorkloadEvent,
  type VolantEvent,
} from "./events.ts";
export {
  type EventRetentionOptions,
  pruneEvents,
  type RetentionPolicy,
  startEventRetention,
} from "./event_retention.ts";
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
export {
  DeploymentService,
  type DeploymentServiceOptions,
  type DeploymentSettings,
  replicaHealthy,
} from "./deployments.ts";
export { restartDelay, type RestartSettings, VmRestarter } from "./restarts.ts";
