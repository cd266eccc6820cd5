/**
 * volantd, the Volant daemon: config, logging, the SQLite store (VMs, address leases,
 * published ports), the host network seam, the VM lifecycle and service, reconciliation, the
 * REST API and its server.
 *
 * @module
 */
export { main, type MainOptions, USAGE } from "./main.ts";
export {
  DEFAULT_CONFIG_PATH,
  ENV_OVERRIDES,
  type EnvLookup,
  loadConfig,
  type LoadConfigOptions,
  parseConfig,
  type ResolvedConfig,
} from "./config.ts";
export {
  createLogger,
  type LogFields,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  silentLogger,
} from "./log.ts";
export {
  ACTIONS,
  assertAction,
  assertTransition,
  canAct,
  canTransition,
  reachableWithoutRequest,
  SPONTANEOUS,
  TRANSITIONS,
  type VmAction,
} from "./vm_state.ts";
export {
  type GuestArtifacts,
  guestDirArtifacts,
  type GuestImage,
  INITRAMFS_FILE,
  KERNEL_FILES,
  RUNTIME_DISK_FILE,
} from "./guest.ts";
export { defaultDriverFactory, type DriverFactory } from "./driver_factory.ts";
export { JAIL_TOOLS, type JailSettings, setupJail, type SetupJailOptions } from "./jail.ts";
export {
  FAULT_ENV,
  FAULT_STEPS,
  type FaultOperation,
  faultPoint,
  type FaultStep,
  type FaultStepInfo,
  imageFaultPoint,
} from "./fault.ts";
export {
  type AgentProbe,
  type FakeAgent,
  fakeGuestAgent,
  FakeHostNetwork,
  type FakeHostNetworkOptions,
  type FakeNetworkFailures,
  type Forward,
  type HostNetwork,
  netHostNetwork,
  type NetHostNetworkOptions,
  type NetworkConfig,
  poolFromConfig,
  type ProbeOptions,
  probeTcp,
} from "./network/mod.ts";
export {
  AgentSecret,
  isKestrelRefusal,
  KESTREL_LIMITS,
  kestrelHealth,
  type KestrelLimits,
  kestrelRequest,
  type KestrelTarget,
  kestrelTarget,
} from "./kestrel/mod.ts";
export { hostCmdline, readHostCmdline, tscKhzFromCpuinfo } from "./host.ts";
export { reconcile, type ReconcileReport } from "./services/reconcile.ts";
export {
  type DaemonServer,
  parseHostPort,
  prepareSocket,
  serveDaemon,
  type ServeOptions,
} from "./server.ts";
export { ensureNamespace, enterNamespace, isInNamespace, NETNS_MARKER } from "./netns.ts";
export { VERSION } from "./version.ts";
