/**
 * Zod schemas shared by volantd, volar and kestrel: the single source for validation,
 * REST bodies, CLI `--json` output and the OpenAPI document.
 *
 * @module
 */
export { ErrorBody, ErrorCode, fromZodError, VolantError } from "./error.ts";
export {
  HypervisorName,
  Ipv4Address,
  KernelName,
  LIMITS,
  NO_RESTARTS,
  PortMapping,
  type VmCreateInput,
  VmCreateRequest,
  VmList,
  VmName,
  VmRecord,
  VmRestartPolicy,
  VmRestartState,
  VmState,
  VmTemplateFields,
} from "./vm.ts";
export {
  type DeploymentCreateInput,
  DeploymentCreateRequest,
  DeploymentFailure,
  DeploymentList,
  DeploymentName,
  DeploymentRecord,
  DeploymentReplica,
  DeploymentScaleRequest,
  DeploymentStatus,
  DeploymentTemplate,
  DeploymentUpdateRequest,
  MAX_REPLICAS,
  MaxUnavailable,
  replicaIndex,
  replicaName,
  Replicas,
} from "./deployment.ts";
export {
  AgentAccess,
  BOOT_CONFIG_KEY,
  BOOT_CONFIG_PATH,
  BootConfig,
  BootTimeline,
  decodeBootConfig,
  encodeBootConfig,
  GUEST_ROOT_DIR,
  GuestNetwork,
  ImageRoot,
  READY_MARKER,
  ReadyReport,
  TIMELINE_CHAINS,
  TIMELINE_PHASES,
} from "./boot_config.ts";
export {
  AccelChoice,
  DaemonConfig,
  type DaemonConfigInput,
  DefaultKernelChoice,
  HypervisorChoice,
} from "./config.ts";
export { JailSwitch, SecurityConfig, VmJailRecord } from "./security.ts";
export {
  cidrIsNetwork,
  DEFAULT_NETWORK_POLICY,
  DEPLOYMENT_PEER,
  EgressMode,
  EgressRule,
  HostPortRule,
  Ipv4Cidr,
  mergeNetworkPolicy,
  NetworkPolicy,
  NetworkPolicyFields,
  type NetworkPolicyInput,
  normalizeNetworkPolicy,
} from "./network_policy.ts";
export { Acceleration, ConsoleInfo, ERROR_STATUS, Health, WaitQuery } from "./api.ts";
export { VERSION } from "./version.ts";
export {
  ActionInfo,
  ActionList,
  AGENT_AUTH_REALM,
  AGENT_AUTH_SCHEME,
  AGENT_PORT,
  AgentHealth,
  AgentHealthWithWorkload,
  GuestStats,
  HealthVerdict,
  LEGACY_AGENT_PORT,
  LogLine,
  LogStream,
  NetCheckRequest,
  NetCheckResult,
  WorkloadExit,
  WorkloadHealth,
  WorkloadState,
  WorkloadStatus,
} from "./agent.ts";
export {
  Action,
  ArtifactUrl,
  canonicalManifest,
  Checksum,
  HealthCheck,
  InitConfig,
  Manifest,
  type ManifestArtifact,
  manifestArtifacts,
  type ManifestInput,
  PluginName,
  RestartPolicy,
  Signature,
  Workload,
} from "./manifest.ts";
export {
  SnapshotCreateRequest,
  SnapshotFile,
  SnapshotList,
  SnapshotName,
  SnapshotRecord,
  VmCloneRequest,
  VmCloneResult,
  VmRestoreRequest,
} from "./snapshot.ts";
export {
  DEFAULT_PATH,
  type EarlyWorkload,
  earlyWorkloadFor,
  workloadEnv,
} from "./workload_launch.ts";
export {
  generateKeyPair,
  parsePublicKey,
  type PrivateKeyFile,
  type PublicKey,
  signManifest,
  type Verification,
  verifyManifest,
} from "./signing.ts";
export {
  KeyList,
  KeyRecord,
  KeyTrustRequest,
  PluginArtifact,
  PluginEnableRequest,
  PluginInstallRequest,
  PluginList,
  PluginRecord,
} from "./plugin.ts";
export {
  EnvAssignment,
  ImageList,
  ImageProcess,
  ImagePullRequest,
  ImageRecord,
  ImageRef,
} from "./image.ts";
export {
  imageArgv,
  type ImageForManifest,
  imageManifest,
  type ImageOverrides,
} from "./image_manifest.ts";
export {
  DeploymentEvent,
  DeploymentEventType,
  DeploymentReplicaEvent,
  EventId,
  EventsQuery,
  ImageEvent,
  ImageEventType,
  type NewEvent,
  type NewVmEvent,
  parseEventId,
  PluginEvent,
  PluginEventType,
  StreamError,
  VmDeletedEvent,
  VmEvent,
  VmStateEvent,
  VmWorkloadEvent,
  VolantEvent,
} from "./event.ts";
export {
  TOKEN_PATTERN,
  TokenCreated,
  type TokenCreateInput,
  TokenCreateRequest,
  TokenId,
  TokenList,
  TokenListQuery,
  TokenName,
  TokenRecord,
  TokenScope,
} from "./token.ts";
export {
  RegistryCredential,
  RegistryCredentialList,
  RegistryHost,
  RegistryLoginRequest,
} from "./registry.ts";
