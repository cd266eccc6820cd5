/**
 * volantd's state: SQLite via `node:sqlite`, numbered migrations, and narrow store interfaces
 * (no SQL outside this folder).
 *
 * @module
 */
export type {
  DeploymentPatch,
  DeploymentRow,
  DeploymentStore,
  EventBounds,
  EventFilter,
  EventLogListener,
  EventStore,
  ForwardRow,
  ImageOverrides,
  KeyStore,
  Lease,
  LeaseStore,
  NewDeployment,
  NewPlugin,
  NewToken,
  NewVm,
  PluginArtifactRow,
  PluginRow,
  PluginStore,
  PolicyStore,
  PortStore,
  Store,
  TokenRow,
  TokenStore,
  TrustedKeyRow,
  VmPatch,
  VmRow,
  VmStore,
  WorkloadSummary,
} from "./types.ts";
export { migrate, type Migration } from "./migrate.ts";
export { MIGRATIONS } from "./migrations/mod.ts";
export { openStore, type OpenStoreOptions } from "./sqlite.ts";
