/**
 * The store's row types and the narrow interfaces services use: no SQL exists outside
 * `store/`, so cluster mode can swap the implementation.
 *
 * @module
 */
import type {
  DeploymentFailure,
  DeploymentTemplate,
  HypervisorName,
  KernelName,
  NetworkPolicy,
  NewEvent,
  PortMapping,
  VmRestartState,
  VmState,
  VolantEvent,
} from "../../schema/mod.ts";
import type { VmmHandle } from "../../hypervisor/driver.ts";
import type { ImageOverrides } from "../../schema/image_manifest.ts";
import type { BootTimeline } from "../../schema/boot_config.ts";
import type { AgentSecret } from "../kestrel/secret.ts";

export type { ImageOverrides };

/** One VM as stored. Timestamps are RFC 3339 strings. */
export interface VmRow {
  /** Row id (stable; later tables reference it). */
  id: number;
  /** Unique VM name (a DNS label). */
  name: string;
  /** Lifecycle state. */
  state: VmState;
  /** vCPUs. */
  cpu_cores: number;
  /** Guest memory in MiB. */
  memory_mb: number;
  /** Guest kernel. */
  kernel: KernelName;
  /** Extra kernel command-line words from the user. */
  kernel_cmdline: string | null;
  /** Hypervisor that runs it. */
  hypervisor: HypervisorName;
  /** Whether it runs with hardware KVM. */
  kvm: boolean;
  /** Creation time. */
  created_at: string;
  /** Last change. */
  updated_at: string;
  /** Time of the last start request. */
  started_at: string | null;
  /** Time kestrel reported ready after the last start. */
  ready_at: string | null;
  /** Milliseconds from start request to ready. */
  boot_ms: number | null;
  /** Why it last failed, or `null`. */
  last_error: string | null;
  /** Size of the serial log when the last start began: the readiness watcher reads from here. */
  serial_offset: number;
  /** The running VMM, or `null` when none is owned by this row. */
  handle: VmmHandle | null;
  /** The guest NIC's MAC (derived from the name), or `null` before the first launch. */
  mac: string | null;
  /** The host tap while the VMM runs (created before the VMM, deleted with it). */
  tap: string | null;
  /** The last address this VM was leased: handed back when it is free again. */
  last_ip: string | null;
  /** The plugin the VM runs (null: a bare VM with kestrel only). */
  plugin: string | null;
  /** The workload's status as kestrel last reported it (plugin VMs), or `null`. */
  workload: WorkloadSummary | null;
  /** The OCI image reference the VM runs, as given (null: not an image VM). */
  image: string | null;
  /** The image's manifest digest when the VM was created. */
  image_digest: string | null;
  /** The user's overrides of the image's process. */
  image_overrides: ImageOverrides | null;
  /** The VM's current lease (from `ip_leases`; change it through {@linkcode LeaseStore}). */
  ip: string | null;
  /** Published ports (from `port_forwards`; change them through {@linkcode PortStore}). */
  ports: PortMapping[];
  /** Its network policy (from `vm_network_policies`; change it through {@linkcode PolicyStore}). */
  network_policy: NetworkPolicy;
  /** kestrel's port in the guest at the last start, or `null` (booted before it was recorded). */
  agent_port: number | null;
  /**
   * The secret kestrel requires, from the last start, while the VMM runs; `null` otherwise.
   * Redacted wherever it is rendered (JSON, logs); never part of the API's records.
   */
  agent_secret: AgentSecret | null;
  /** The uid (and gid) its VMM runs as, from `security.uid_range`; `null` until a jailed start. */
  jail_uid: number | null;
  /** The deployment it is a replica of, or `null`. */
  deployment: string | null;
  /** The deployment template generation it was made from (replicas), or `null`. */
  generation: number | null;
  /** Its restart policy and what was done about crashes. */
  restart: VmRestartState;
  /** The last boot's phases as kestrel reported them, or `null`. */
  timeline: BootTimeline | null;
}

/** What the daemon keeps of kestrel's workload status. */
export interface WorkloadSummary {
  state: string;
  healthy: boolean;
  restarts: number;
  /** When this summary was taken (RFC 3339). */
  checked_at: string;
  /** Why it is unhealthy or failed, when kestrel said. */
  error: string | null;
}

/** Fields of a row that live in other tables (read-only through {@linkcode VmStore}). */
type Derived = "ip" | "ports" | "network_policy";

/** Fields a new VM may leave out (set at its first start). */
type LaterFields =
  | "agent_port"
  | "agent_secret"
  | "jail_uid"
  | "deployment"
  | "generation"
  | "restart"
  | "timeline";

/** What {@linkcode VmStore.insert} takes (the store sets `id`, `created_at`, `updated_at`). */
export type NewVm =
  & Omit<VmRow, "id" | "created_at" | "updated_at" | Derived | LaterFields>
  & Partial<Pick<VmRow, LaterFields>>;

/** Fields {@linkcode VmStore.update} may change (`updated_at` is always set). */
export type VmPatch = Partial<Omit<VmRow, "id" | "name" | "created_at" | "updated_at" | Derived>>;

/** VM rows. All methods are synchronous and atomic on their own. */
export interface VmStore {
  /** Inserts a VM; `already_exists` when the name is taken. */
  insert(vm: NewVm): VmRow;
  /** The VM named `name`, if any. */
  get(name: string): VmRow | undefined;
  /** All VMs, ordered by name. */
  list(): VmRow[];
  /** The replicas of deployment `name`, ordered by name (through its index). */
  listByDeployment(name: string): VmRow[];
  /** Number of VMs. */
  count(): number;
  /** Changes fields and `updated_at`; `not_found` when the VM does not exist. */
  update(name: string, patch: VmPatch): VmRow;
  /** Deletes a VM; `false` when it did not exist. */
  delete(name: string): boolean;
  /** Runs `fn` in one transaction (nested calls use savepoints); rolls back when it throws. */
  transaction<T>(fn: () => T): T;
}

/** One deployment's desired state as stored. */
export interface DeploymentRow {
  id: number;
  name: string;
  /** Desired replicas. */
  replicas: number;
  /** What each replica is made from. */
  template: DeploymentTemplate;
  /** Bumped by every template change; replicas record the one they were made from. */
  generation: number;
  /** Replicas a rolling update may take down at once (0: surge one first). */
  max_unavailable: number;
  /** A delete began: the reconciler deletes the replicas, then the row. */
  deleting: boolean;
  /** The latest failed actions, newest last (at most 10). */
  failures: DeploymentFailure[];
  created_at: string;
  updated_at: string;
}

/** What {@linkcode DeploymentStore.insert} takes. */
export type NewDeployment = Pick<
  DeploymentRow,
  "name" | "replicas" | "template" | "generation" | "max_unavailable"
>;

/** Fields {@linkcode DeploymentStore.update} may change (`updated_at` is always set). */
export type DeploymentPatch = Partial<
  Pick<
    DeploymentRow,
    "replicas" | "template" | "generation" | "max_unavailable" | "deleting" | "failures"
  >
>;

/** Deployments' desired state (their replicas are VM rows naming them). */
export interface DeploymentStore {
  get(name: string): DeploymentRow | undefined;
  /** Every deployment, by name. */
  list(): DeploymentRow[];
  /** `already_exists` when the name is taken. */
  insert(d: NewDeployment): DeploymentRow;
  /** `not_found` when absent. */
  update(name: string, patch: DeploymentPatch): DeploymentRow;
  /** False when it did not exist. */
  delete(name: string): boolean;
}

/** One address lease. */
export interface Lease {
  /** The address, dotted quad. */
  ip: string;
  /** The owner's row id. */
  vm_id: number;
  /** The owner's name. */
  vm: string;
  /** RFC 3339 time it was leased. */
  leased_at: string;
}

/**
 * Address leases: one per VM, one VM per address. Allocation itself (which address) is the
 * caller's: read {@linkcode LeaseStore.taken}, pick with `net/`, then {@linkcode LeaseStore.add},
 * inside one {@linkcode Store.transaction} so no other writer comes between.
 */
export interface LeaseStore {
  /** Every leased address as an unsigned 32-bit integer (what `net/` `nextFree` takes). */
  taken(): Set<number>;
  /**
   * The lowest address in `first..last` (unsigned 32-bit integers) that is neither leased nor in
   * `reserved`, or `null` when there is none. Same answer as `net/` `nextFree`, found in SQL
   * (reads only up to the first gap instead of every lease).
   */
  lowestFree(first: number, last: number, reserved: ReadonlySet<number>): number | null;
  /**
   * Leases `ip` to VM `vmId` and records it as the VM's `last_ip`. `ip_unavailable` when the
   * address is leased to another VM; `already_exists` when the VM holds a lease already.
   */
  add(vmId: number, ip: string): Lease;
  /** The lease of VM `vmId`, if any. */
  get(vmId: number): Lease | undefined;
  /** The lease of address `ip`, if any. */
  byAddress(ip: string): Lease | undefined;
  /** Frees the lease of VM `vmId` (its `last_ip` stays); returns the freed address. */
  release(vmId: number): string | null;
  /** Every lease, in numeric address order. */
  list(): Lease[];
  /** Frees leases whose VM row no longer exists; returns them. */
  releaseOrphans(): Omit<Lease, "vm">[];
}

/** A published port with its owner and the owner's address (null while it holds no lease). */
export interface ForwardRow {
  /** The owner's name. */
  vm: string;
  /** The owner's address, or `null` when it holds no lease. */
  ip: string | null;
  /** Host port. */
  host_port: number;
  /** Port in the guest. */
  guest_port: number;
  /** Protocol. */
  protocol: "tcp" | "udp";
}

/** Published ports: one owner per host port and protocol. */
export interface PortStore {
  /**
   * Publishes `ports` for VM `vmId`. `already_exists` naming `publish[i].host_port` (and the
   * owner) when a host port is published already, or twice in `ports`.
   */
  add(vmId: number, ports: readonly PortMapping[]): void;
  /** The VM that published `hostPort`/`protocol`, if any. */
  owner(hostPort: number, protocol: "tcp" | "udp"): string | undefined;
  /** Every published port, ordered by host port and protocol. */
  list(): ForwardRow[];
}

/** VMs' network policies; a VM without one stored has the default policy. */
export interface PolicyStore {
  /** VM `vmId`'s policy, its peers by their current names. */
  get(vmId: number): NetworkPolicy;
  /** Every stored policy by row id (VMs missing from the map have the default). */
  all(): Map<number, NetworkPolicy>;
  /**
   * Replaces VM `vmId`'s policy (call inside a transaction). `invalid_argument` naming
   * `<field>.allow_from[i]` (`field` default `network_policy`; `""`: `allow_from[i]`) when a
   * peer does not exist or is the VM itself; nothing is written then.
   */
  set(vmId: number, policy: NetworkPolicy, field?: string): void;
}

/** One artifact of an installed plugin (a blob in the artifact cache). */
export interface PluginArtifactRow {
  /** `initramfs`, `rootfs` or `disk:<name>`. */
  role: string;
  url: string;
  checksum: string;
  size: number;
}

/** An installed plugin. */
export interface PluginRow {
  name: string;
  version: string;
  enabled: boolean;
  /** The manifest exactly as installed (JSON text; its signature covers it). */
  manifest: string;
  /** How it was admitted: its signature verified against a trusted key, or allowed unsigned. */
  signature: "verified" | "unsigned";
  key_id: string | null;
  /** Where the manifest came from (a URL or path), when not sent inline. */
  source: string | null;
  installed_at: string;
  updated_at: string;
  artifacts: PluginArtifactRow[];
}

/** What {@linkcode PluginStore.insert} takes. */
export type NewPlugin = Omit<PluginRow, "installed_at" | "updated_at">;

/** The plugin registry. */
export interface PluginStore {
  get(name: string): PluginRow | undefined;
  list(): PluginRow[];
  /** `already_exists` when installed. */
  insert(plugin: NewPlugin): PluginRow;
  /** `not_found` when absent. */
  setEnabled(name: string, enabled: boolean): PluginRow;
  /** VMs that run the plugin. */
  usedBy(name: string): string[];
  /** `invalid_state` while a VM uses it; false when it was not installed. */
  delete(name: string): boolean;
  /** Every checksum some plugin references (for cache garbage collection). */
  checksums(): Set<string>;
}

/** A key manifests may be signed with. */
export interface TrustedKeyRow {
  key_id: string;
  /** `ed25519:<base64>`. */
  public_key: string;
  comment: string | null;
  added_at: string;
}

/** The trusted keys. */
export interface KeyStore {
  list(): TrustedKeyRow[];
  get(keyId: string): TrustedKeyRow | undefined;
  /** Adds a key (updating its comment when already trusted). */
  add(key: Omit<TrustedKeyRow, "added_at">): TrustedKeyRow;
  remove(keyId: string): boolean;
}

/** An API bearer token as stored: its sha256, never the token. */
export interface TokenRow {
  /** Public id (12 hex digits), part of the token. */
  id: string;
  name: string;
  scope: "read" | "admin";
  /** sha256 of the whole token, hex. */
  hash: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** What {@linkcode TokenStore.insert} takes. */
export type NewToken = Pick<TokenRow, "id" | "name" | "scope" | "hash">;

/** API bearer tokens. */
export interface TokenStore {
  /** The token with this id, revoked or not. */
  get(id: string): TokenRow | undefined;
  /** The token named `name` that is not revoked. */
  activeByName(name: string): TokenRow | undefined;
  /** Tokens oldest first; revoked ones only when asked. */
  list(includeRevoked: boolean): TokenRow[];
  /** `already_exists` when a token that is not revoked has the name. */
  insert(token: NewToken): TokenRow;
  /** Marks it revoked (once); the row as it is now, undefined when there is none. */
  revoke(id: string): TokenRow | undefined;
  /** Records a use. */
  touch(id: string, at: string): void;
  /** Tokens that are not revoked. */
  activeCount(): number;
}

/** Where the event log stands. */
export interface EventBounds {
  /** The oldest id still kept, or `null` when none is (none recorded yet, or all pruned). */
  oldest: number | null;
  /** The newest id ever recorded (0: none yet); the next event gets a higher one. */
  latest: number;
  /** The highest id retention removed (0: none): resuming below it misses events. */
  prunedThrough: number;
}

/** Which events {@linkcode EventStore.after} returns. */
export interface EventFilter {
  /** Only this VM's events (`vm.*` with this name). */
  vm?: string;
}

/** Receives each event once it is committed, in id order. */
export type EventLogListener = (event: VolantEvent) => void;

/**
 * The event log: every change the daemon reports, with a durable id (increasing, never reused)
 * and its time. Events are appended inside the transaction of the change they report.
 */
export interface EventStore {
  /**
   * Records an event and returns it with its id. Inside a {@linkcode Store.transaction} it commits
   * or rolls back with that transaction, and listeners hear it once the outermost transaction
   * commits; outside one it is committed, and heard, at once.
   */
  append(event: NewEvent): VolantEvent;
  /** At most `limit` events with ids above `after`, oldest first. */
  after(after: number, limit: number, filter?: EventFilter): VolantEvent[];
  /** The oldest kept, newest recorded and highest pruned ids. */
  bounds(): EventBounds;
  /**
   * Removes every event older than `olderThan` (RFC 3339), and all but the newest `keep`, always
   * oldest first (a prefix of the log): returns how many went and the highest id removed so far.
   */
  prune(olderThan: string, keep: number): { removed: number; prunedThrough: number };
  /** Hears every event once it is committed, in id order; returns the function that stops it. */
  subscribe(listener: EventLogListener): () => void;
}

/** The daemon's store: its tables and their lifetime. */
export interface Store {
  /** Database file. */
  readonly path: string;
  /** VM rows. */
  readonly vms: VmStore;
  /** Address leases. */
  readonly leases: LeaseStore;
  /** Published ports. */
  readonly ports: PortStore;
  /** Network policies. */
  readonly policies: PolicyStore;
  /** Installed plugins. */
  readonly plugins: PluginStore;
  /** Keys plugin manifests may be signed with. */
  readonly keys: KeyStore;
  /** API bearer tokens (hashed). */
  readonly tokens: TokenStore;
  /** The event log. */
  readonly events: EventStore;
  /** Deployments. */
  readonly deployments: DeploymentStore;
  /** Highest applied migration. */
  schemaVersion(): number;
  /** Runs `fn` in one transaction across every table; rolls back when it throws. */
  transaction<T>(fn: () => T): T;
  /** Reads a PRAGMA of the store's connection (diagnostics, tests), e.g. `journal_mode`. */
  pragma(name: string): string | number | null;
  /** Closes the database (idempotent). */
  close(): void;
}
