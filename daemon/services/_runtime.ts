/**
 * The VM service's shared context and its primitive steps: state changes (checked against
 * the lifecycle table, persisted, emitted) and the one place resources are released.
 *
 * @module
 */
import type { KernelName, VmRecord, VmState } from "../../schema/mod.ts";
import type { Driver, VmmHandle } from "../../hypervisor/driver.ts";
import type { GuestArtifacts } from "../guest.ts";
import type { Logger } from "../log.ts";
import type { VmPatch, VmRow, VmStore } from "../store/mod.ts";
import { assertTransition } from "../vm_state.ts";
import type { VmEvents } from "./events.ts";
import type { KeyedMutex } from "./_mutex.ts";

/** The settings the VM service needs (see `serviceConfigFrom` in vms.ts). */
export interface VmServiceConfig {
  /** Daemon runtime dir; VMs get `<runtimeDir>/vms/<name>`. */
  runtimeDir: string;
  /** Daemon log dir; VMs get `<logDir>/vms/<name>/{serial,vmm}.log`. */
  logDir: string;
  /** Kernel used when a create request names none. */
  defaultKernel: KernelName;
  /** Start request → kestrel ready, at most. */
  readyMs: number;
  /** Stop ladder: how long the guest gets to power off after the power button. */
  stopGracefulMs: number;
  /** Stop ladder: how long the VMM gets after SIGTERM before SIGKILL. */
  stopTermMs: number;
  /** Host-specific kernel command-line words (e.g. `tsc_early_khz=… tsc=reliable` under TCG). */
  hostCmdline: string;
  /** How often the serial log is polled for the ready line; default 50 ms. */
  pollMs?: number;
}

/** One VMM process the service watches. */
export interface Run {
  name: string;
  handle: VmmHandle;
  /** Epoch ms of the start request (boot_ms counts from here). */
  startedAtMs: number;
  /** Set before the daemon stops the VMM itself, so the exit watcher stays quiet. */
  expectExit: boolean;
  /** Aborts the readiness watcher. */
  abort: AbortController;
}

/** Everything the service's steps share. */
export interface VmRuntime {
  store: VmStore;
  driver: Driver;
  guest: GuestArtifacts;
  config: VmServiceConfig;
  logger: Logger;
  events: VmEvents;
  mutex: KeyedMutex;
  runs: Map<string, Run>;
  now: () => Date;
  /** Aborted when the service closes: watchers stop, VMs keep running. */
  closing: AbortController;
}

/** The API form of a row. */
export function toRecord(row: VmRow): VmRecord {
  return {
    name: row.name,
    state: row.state,
    cpu_cores: row.cpu_cores,
    memory_mb: row.memory_mb,
    kernel: row.kernel,
    kernel_cmdline: row.kernel_cmdline,
    hypervisor: row.hypervisor,
    kvm: row.kvm,
    pid: row.handle?.pid ?? null,
    created_at: row.created_at,
    updated_at: row.updated_at,
    started_at: row.started_at,
    ready_at: row.ready_at,
    boot_ms: row.boot_ms,
    last_error: row.last_error,
    ip: null,
    mac: null,
    tap: null,
    ports: [],
  };
}

/** Moves a VM to `to` (checked against the lifecycle), saves `patch`, emits `vm.state`. */
export function setState(rt: VmRuntime, name: string, to: VmState, patch: VmPatch = {}): VmRow {
  const current = rt.store.get(name);
  if (!current) throw new Error(`setState: VM ${name} vanished`);
  assertTransition(name, current.state, to);
  const row = rt.store.update(name, { ...patch, state: to });
  rt.logger.info("vm state", {
    vm: name,
    from: current.state,
    to,
    error: row.last_error ?? undefined,
  });
  rt.events.emit({
    type: "vm.state",
    name,
    from: current.state,
    to,
    at: row.updated_at,
    vm: toRecord(row),
  });
  return row;
}

/**
 * Releases what a VMM held: its sockets and pid files (driver cleanup) and the row's handle.
 * The single place later resources (taps, leases) are released too. Safe to call twice.
 */
export async function releaseResources(
  rt: VmRuntime,
  name: string,
  handle: VmmHandle | null,
): Promise<void> {
  if (handle) {
    try {
      await rt.driver.cleanup(handle);
    } catch (err) {
      rt.logger.warn("vmm cleanup failed", { vm: name, pid: handle.pid, error: err });
    }
  }
  const row = rt.store.get(name);
  if (row?.handle) rt.store.update(name, { handle: null });
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
