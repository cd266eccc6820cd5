/**
 * The store's row types and the narrow interfaces services use: no SQL exists outside
 * `store/`, so cluster mode can swap the implementation.
 *
 * @module
 */
import type { HypervisorName, KernelName, VmState } from "../../schema/mod.ts";
import type { VmmHandle } from "../../hypervisor/driver.ts";

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
}

/** What {@linkcode VmStore.insert} takes (the store sets `id`, `created_at`, `updated_at`). */
export type NewVm = Omit<VmRow, "id" | "created_at" | "updated_at">;

/** Fields {@linkcode VmStore.update} may change (`updated_at` is always set). */
export type VmPatch = Partial<Omit<VmRow, "id" | "name" | "created_at" | "updated_at">>;

/** VM rows. All methods are synchronous and atomic on their own. */
export interface VmStore {
  /** Inserts a VM; `already_exists` when the name is taken. */
  insert(vm: NewVm): VmRow;
  /** The VM named `name`, if any. */
  get(name: string): VmRow | undefined;
  /** All VMs, ordered by name. */
  list(): VmRow[];
  /** Number of VMs. */
  count(): number;
  /** Changes fields and `updated_at`; `not_found` when the VM does not exist. */
  update(name: string, patch: VmPatch): VmRow;
  /** Deletes a VM; `false` when it did not exist. */
  delete(name: string): boolean;
  /** Runs `fn` in one transaction (nested calls use savepoints); rolls back when it throws. */
  transaction<T>(fn: () => T): T;
}

/** The daemon's store: its tables and their lifetime. */
export interface Store {
  /** Database file. */
  readonly path: string;
  /** VM rows. */
  readonly vms: VmStore;
  /** Highest applied migration. */
  schemaVersion(): number;
  /** Runs `fn` in one transaction across every table; rolls back when it throws. */
  transaction<T>(fn: () => T): T;
  /** Reads a PRAGMA of the store's connection (diagnostics, tests), e.g. `journal_mode`. */
  pragma(name: string): string | number | null;
  /** Closes the database (idempotent). */
  close(): void;
}
