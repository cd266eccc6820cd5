/**
 * The VM service's shared context and its primitive steps: state changes (checked against
 * the lifecycle table, persisted with their event), ending a VMM, and the one place the
 * resources of a VMM run (driver files, tap and its network policy rules) are released.
 *
 * @module
 */
import type { KernelName, VmRecord, VmState } from "../../schema/mod.ts";
import type { Driver, ShutdownOptions, VmmHandle } from "../../hypervisor/driver.ts";
import type { Pool } from "../../net/mod.ts";
import type { GuestArtifacts } from "../guest.ts";
import type { Logger } from "../log.ts";
import type { HostNetwork } from "../network/mod.ts";
import type { LeaseStore, PolicyStore, PortStore, VmPatch, VmRow, VmStore } from "../store/mod.ts";
import { assertTransition } from "../vm_state.ts";
import type { VmEvents } from "./events.ts";
import type { PluginService } from "./plugins.ts";
import type { ImageService } from "./images.ts";
import type { KeyedMutex } from "./_mutex.ts";
import { vmPaths } from "./spec.ts";
import type { VmmJail } from "../../hypervisor/jail/mod.ts";
import type { JailSettings } from "../jail.ts";
import { jailRecord, releaseJail } from "./_jail.ts";
import { syncPoliciesQuietly } from "./_policy.ts";

/** The settings the VM service needs (see `serviceConfigFrom` in vms.ts). */
export interface VmServiceConfig {
  /** Daemon runtime dir; VMs get `<runtimeDir>/vms/<name>`. */
  runtimeDir: string;
  /** Daemon log dir; VMs get `<logDir>/vms/<name>/{serial,vmm}.log`. */
  logDir: string;
  /** Daemon state dir; VMs' writable disks go in `<stateDir>/vms/<name>`. */
  stateDir?: string;
  /** Kernel used when a create request names none (`auto`: the hypervisor's own). */
  defaultKernel: KernelName | "auto";
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
  /** Pause between two probes of kestrel's `/healthz`; default 100 ms. */
  probeIntervalMs?: number;
  /** How long one probe of `/healthz` may take; default 1000 ms. */
  probeTimeoutMs?: number;
  /** How often a running plugin VM's workload is polled; default 2000 ms. */
  workloadPollMs?: number;
  /** kestrel's port in guests started from now on (`guest.agent_port`); default `AGENT_PORT`. */
  agentPort?: number;
  /** A VM's serial log is rotated past this size; default 8 MiB. */
  serialLogBytes?: number;
  /** Serial log files kept per VM, the current one included; default 2. */
  serialLogFiles?: number;
  /** How often a running VM's serial log size is checked; default 1000 ms. */
  serialCheckMs?: number;
  /** VMM jails (`security.jail: on`; see `daemon/jail.ts`); absent: VMMs run unconfined. */
  jail?: JailSettings;
}

/** One VMM process the service watches. */
export interface Run {
  name: string;
  handle: VmmHandle;
  /** Epoch ms of the start request (boot_ms counts from here). */
  startedAtMs: number;
  /** Set before the daemon stops the VMM itself, so the exit watcher stays quiet. */
  expectExit: boolean;
  /** Aborts the readiness watchers. */
  abort: AbortController;
}

/** Everything the service's steps share. */
export interface VmRuntime {
  store: VmStore;
  leases: LeaseStore;
  ports: PortStore;
  /** Network policies. */
  policies: PolicyStore;
  /** One transaction across VMs, leases, ports, policies and the event log. */
  transaction: <T>(fn: () => T) => T;
  driver: Driver;
  guest: GuestArtifacts;
  /** The plugin registry (absent in tests that need none). */
  plugins?: PluginService;
  /** OCI images (absent in tests that need none). */
  images?: ImageService;
  network: HostNetwork;
  /** The address pool VMs are leased from. */
  pool: Pool;
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
    plugin: row.plugin,
    image: row.image,
    image_digest: row.image_digest,
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
    ip: row.ip,
    mac: row.mac,
    tap: row.tap,
    ports: row.ports.map((p) => ({ ...p })),
    network_policy: structuredClone(row.network_policy),
    timeline: row.timeline === null ? null : { ...row.timeline },
    deployment: row.deployment,
    restart: { ...row.restart },
    jail: jailRecord(row.handle?.jail),
    workload: row.workload === null ? null : { ...row.workload },
  };
}

/**
 * Moves a VM to `to` (checked against the lifecycle) and saves `patch`, recording its
 * `vm.state` event in the same transaction (listeners hear it once both are committed).
 */
export function setState(rt: VmRuntime, name: string, to: VmState, patch: VmPatch = {}): VmRow {
  const { from, row } = rt.transaction(() => {
    const current = rt.store.get(name);
    if (!current) throw new Error(`setState: VM ${name} vanished`);
    assertTransition(name, current.state, to);
    const row = rt.store.update(name, { ...patch, state: to });
    rt.events.record({
      type: "vm.state",
      name,
      from: current.state,
      to,
      at: row.updated_at,
      vm: toRecord(row),
    });
    return { from: current.state, row };
  });
  rt.logger.info("vm state", { vm: name, from, to, error: row.last_error ?? undefined });
  return row;
}

/**
 * Releases what a VMM run held: its sockets and pid files (driver cleanup), its tap, and the
 * row's handle. The single place these are released; safe to call twice. A tap that cannot be
 * deleted stays recorded on the row, so the next launch or the reconciler deletes it.
 */
export async function releaseResources(
  rt: VmRuntime,
  name: string,
  handle: VmmHandle | null,
  jail?: VmmJail,
): Promise<void> {
  if (handle) {
    try {
      await rt.driver.cleanup(handle);
    } catch (err) {
      rt.logger.warn("vmm cleanup failed", { vm: name, pid: handle.pid, error: err });
    }
  }
  // The per-VM initramfs is rebuilt at every launch.
  await Deno.remove(vmPaths(rt.config, name).initramfs).catch(() => {});
  const row = rt.store.get(name);
  // Its jail: cgroup (with anything left in it) and root directory.
  const jails = new Map<string, VmmJail>();
  for (const j of [jail, handle?.jail, row?.handle?.jail]) if (j) jails.set(j.root, j);
  for (const j of jails.values()) await releaseJail(rt, name, j);
  if (!row) return;
  const patch: VmPatch = {};
  if (row.tap) {
    try {
      await rt.network.deleteTap(row.tap);
      patch.tap = null;
      rt.logger.debug("tap deleted", { vm: name, tap: row.tap });
    } catch (err) {
      rt.logger.warn("tap delete failed", { vm: name, tap: row.tap, error: err });
    }
  }
  if (row.handle) patch.handle = null;
  // The secret lives as long as the run: the next start makes a new one.
  if (row.agent_secret) patch.agent_secret = null;
  if (Object.keys(patch).length > 0) rt.store.update(name, patch);
  // Its tap is gone: so are its network policy rules (and the peers' rules naming it).
  if (patch.tap === null) await syncPoliciesQuietly(rt, name);
}

/** The normal stop ladder from the config. */
export function stopLadder(rt: VmRuntime): ShutdownOptions {
  return { gracefulMs: rt.config.stopGracefulMs, termMs: rt.config.stopTermMs };
}

/** The ladder for undoing a launch or a guest that never got ready: no power button. */
export function killLadder(rt: VmRuntime): ShutdownOptions {
  return { gracefulMs: 0, termMs: rt.config.stopTermMs };
}

/** Ends a VMM process the daemon owns (no state change) and releases its resources. */
export async function killHandle(
  rt: VmRuntime,
  name: string,
  handle: VmmHandle,
  ladder: ShutdownOptions,
): Promise<void> {
  const run = rt.runs.get(name);
  if (run) {
    run.expectExit = true;
    run.abort.abort();
    rt.runs.delete(name);
  }
  try {
    const result = await rt.driver.shutdown(handle, ladder);
    rt.logger.info("vmm stopped", { vm: name, pid: handle.pid, via: result.via });
  } catch (err) {
    rt.logger.error("vmm shutdown failed", { vm: name, pid: handle.pid, error: err });
  }
  await releaseResources(rt, name, handle);
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
