/**
 * The VM service: create, start, stop, restart, delete, get, list and wait, wiring the store,
 * a hypervisor driver and the guest artifacts. Requests on one VM are serialised by a mutex
 * per name; every failure undoes the steps already taken before the error is returned.
 *
 * @module
 */
import {
  fromZodError,
  HypervisorName,
  mergeNetworkPolicy,
  NetworkPolicy,
  NO_RESTARTS,
  normalizeNetworkPolicy,
  VmCloneRequest,
  type VmCloneResult,
  VmCreateRequest,
  type VmRecord,
  type VmState,
  VolantError,
} from "../../schema/mod.ts";
import type { Driver } from "../../hypervisor/driver.ts";
import type { Pool } from "../../net/mod.ts";
import type { ResolvedConfig } from "../config.ts";
import { defaultKernelFor, type GuestArtifacts, KERNEL_FILES } from "../guest.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { HostNetwork } from "../network/mod.ts";
import type { Store, VmRow } from "../store/mod.ts";
import { assertAction } from "../vm_state.ts";
import { VmEvents } from "./events.ts";
import { KeyedMutex } from "./_mutex.ts";
import { vmPaths } from "./spec.ts";
import { launch, stopVm } from "./_lifecycle.ts";
import { type CloneSource, SnapshotService } from "./snapshots.ts";
import { pluginFiles } from "./_boot_media.ts";
import type { PluginService } from "./plugins.ts";
import type { ImageService } from "./images.ts";
import { waitForState } from "./_wait_state.ts";
import { checkPublish, leaseAddress, macOf, syncForwards } from "./_network.ts";
import { assertPolicyChangeable, replacePolicy, syncPoliciesQuietly } from "./_policy.ts";
import { runningTarget } from "./_agent.ts";
import { faultPoint } from "../fault.ts";
import type { KestrelTarget } from "../kestrel/target.ts";
import {
  killHandle,
  killLadder,
  messageOf,
  setState,
  toRecord,
  type VmRuntime,
  type VmServiceConfig,
} from "./_runtime.ts";

export type { VmServiceConfig } from "./_runtime.ts";

/** What {@linkcode VmService} is built from. */
export interface VmServiceOptions {
  /** Where VM rows, leases, published ports and the event log live. */
  store: Pick<Store, "vms" | "leases" | "ports" | "policies" | "events" | "transaction">;
  /** The hypervisor driver. */
  driver: Driver;
  /** Where kernels and images come from. */
  guest: GuestArtifacts;
  /** The plugin registry; without it, creating a VM with a plugin is refused. */
  plugins?: PluginService;
  /** OCI images; without it, creating a VM from an image is refused. */
  images?: ImageService;
  /** Bridge, taps, port forwards, kestrel probes. */
  network: HostNetwork;
  /** The address pool (see `poolFromConfig`). */
  pool: Pool;
  /** Paths, timeouts and cmdline words. */
  config: VmServiceConfig;
  /** Logger; default silent. */
  logger?: Logger;
  /** Share the events (over `store.events`); default new ones over `store.events`. */
  events?: VmEvents;
  /** Clock; default `new Date()`. */
  now?: () => Date;
}

/**
 * The service settings from the daemon config.
 *
 * @example
 * ```ts
 * import { parseConfig } from "../config.ts";
 * import { serviceConfigFrom } from "./vms.ts";
 * const c = serviceConfigFrom(parseConfig({}, () => undefined));
 * console.assert(c.readyMs === 60_000);
 * ```
 */
export function serviceConfigFrom(config: ResolvedConfig, hostCmdline = ""): VmServiceConfig {
  return {
    runtimeDir: config.runtime_dir,
    logDir: config.log_dir,
    stateDir: config.state_dir,
    defaultKernel: config.guest.default_kernel,
    readyMs: config.timeouts.ready_ms,
    stopGracefulMs: config.timeouts.stop_graceful_ms,
    stopTermMs: config.timeouts.stop_term_ms,
    agentPort: config.guest.agent_port,
    serialLogBytes: config.limits.serial_log_bytes,
    serialLogFiles: config.limits.serial_log_files,
    hostCmdline,
  };
}

/** The image service; `unsupported` when this daemon has none. */
function imageService(rt: VmRuntime): ImageService {
  if (!rt.images) throw new VolantError("unsupported", "this volantd has no image store");
  return rt.images;
}

async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/**
 * Manages VMs.
 *
 * @example
 * ```ts ignore
 * import { VmService } from "./vms.ts";
 * const vm = await service.create({ name: "web", memory_mb: 256 });
 * const ready = await service.wait("web", "running", 60_000);
 * console.log(ready.boot_ms);
 * ```
 */
export class VmService {
  /** Every change, recorded in the event log and heard as it commits. */
  readonly events: VmEvents;
  /** Internal: the shared context (used by the reconciler). */
  readonly runtime: VmRuntime;
  /** Snapshots of its VMs, and restoring them. */
  readonly snapshots: SnapshotService;
  #waits = new Set<(err: VolantError) => void>();
  #reserved: (name: string) => string | undefined = () => undefined;

  /** Builds a service; call `reconcile(service)` before serving requests. */
  constructor(options: VmServiceOptions) {
    this.events = options.events ?? new VmEvents(options.store.events);
    this.runtime = {
      store: options.store.vms,
      leases: options.store.leases,
      ports: options.store.ports,
      policies: options.store.policies,
      transaction: options.store.transaction,
      driver: options.driver,
      guest: options.guest,
      ...(options.plugins ? { plugins: options.plugins } : {}),
      ...(options.images ? { images: options.images } : {}),
      network: options.network,
      pool: options.pool,
      config: options.config,
      logger: options.logger ?? silentLogger(),
      events: this.events,
      mutex: new KeyedMutex(),
      runs: new Map(),
      now: options.now ?? (() => new Date()),
      closing: new AbortController(),
    };
    this.snapshots = new SnapshotService(this.runtime);
  }

  #open(): void {
    if (this.runtime.closing.signal.aborted) {
      throw new VolantError("daemon_unreachable", "volantd is shutting down");
    }
  }

  #row(name: string): VmRow {
    const row = this.runtime.store.get(name);
    if (!row) throw new VolantError("not_found", `VM ${name} does not exist`, { name });
    return row;
  }

  /** Every VM, ordered by name. */
  list(): VmRecord[] {
    return this.runtime.store.list().map(toRecord);
  }

  /** Number of VMs. */
  count(): number {
    return this.runtime.store.count();
  }

  /** One VM; `not_found` when absent. */
  get(name: string): VmRecord {
    return toRecord(this.#row(name));
  }

  /**
   * Where VM `name`'s kestrel answers (address, port, secret) for the daemon's kestrel client;
   * `invalid_state` unless it is starting or running with an address. Daemon-internal: the
   * secret is never part of a record.
   */
  kestrelTarget(name: string): KestrelTarget {
    return runningTarget(this.#row(name));
  }

  /**
   * The unix socket of VM `name`'s serial console. `invalid_state` unless it is starting or
   * running; `unsupported` when its hypervisor offers no console socket (the serial output is
   * still in its serial log) or the VMM was started without one.
   */
  async consoleSocket(name: string): Promise<string> {
    const row = this.#row(name);
    if ((row.state !== "running" && row.state !== "starting") || !row.handle) {
      throw new VolantError(
        "invalid_state",
        `VM ${name} is ${row.state}; its console exists only while it runs (volar vms start ${name})`,
        { name, state: row.state },
      );
    }
    const driver = this.runtime.driver;
    const path = driver.consoleSocket?.(row.handle);
    if (path === undefined) {
      throw new VolantError(
        "unsupported",
        `The ${driver.name} driver has no interactive console; VM ${name}'s serial output ` +
          `is in ${vmPaths(this.runtime.config, name).serialLog}`,
        { name, hypervisor: driver.name },
      );
    }
    try {
      await Deno.lstat(path);
    } catch {
      throw new VolantError(
        "unsupported",
        `VM ${name} was started without a console socket (${path}); restart it to get one`,
        { name, path },
      );
    }
    return path;
  }

  /**
   * Names `reserved(name)` answers for (with why) cannot be taken by a create that is not a
   * replica's: the deployments' replica names.
   */
  reserveNames(reserved: (name: string) => string | undefined): void {
    this.#reserved = reserved;
  }

  /**
   * Creates and boots a VM from an unvalidated request body; resolves once the VMM runs
   * (state `starting`). The row, its lease (the requested address or the lowest free one) and
   * its published ports are written in one transaction. Errors: `invalid_argument`,
   * `already_exists` (name, or a published port), `ip_unavailable`, `ip_pool_exhausted`,
   * `kernel_not_found`, network and driver errors — each after undoing every step (no row,
   * lease, port, tap, dirs or process). `replica` makes it a replica of a deployment (the
   * deployment service's own creates).
   */
  async create(
    input: unknown,
    replica?: { deployment: string; generation: number },
  ): Promise<VmRecord> {
    this.#open();
    const parsed = VmCreateRequest.safeParse(input);
    if (!parsed.success) throw fromZodError(parsed.error);
    const req = parsed.data;
    const rt = this.runtime;
    const hypervisor = HypervisorName.safeParse(rt.driver.name);
    if (!hypervisor.success) {
      throw new VolantError("internal", `Unknown hypervisor driver name ${rt.driver.name}`);
    }
    return await rt.mutex.run(req.name, async () => {
      this.#open();
      if (rt.store.get(req.name)) {
        throw new VolantError("already_exists", `VM ${req.name} already exists`, {
          name: req.name,
        });
      }
      const reserved = replica === undefined ? this.#reserved(req.name) : undefined;
      if (reserved !== undefined) {
        throw new VolantError("already_exists", `name: ${reserved}`, {
          field: "name",
          name: req.name,
        });
      }
      // A clone resumes a snapshot: what it runs comes from there (checked, marked in use).
      const clone = req.from_snapshot === undefined
        ? undefined
        : await this.snapshots.forClone(req.from_snapshot);
      try {
        return await this.#createRow(req, clone, replica);
      } finally {
        clone?.release();
      }
    });
  }

  /** The row, lease, ports and policy in one transaction, then the launch (see `create`). */
  async #createRow(
    req: VmCreateRequest,
    clone: CloneSource | undefined,
    replica: { deployment: string; generation: number } | undefined,
  ): Promise<VmRecord> {
    const rt = this.runtime;
    const hypervisor = rt.driver.name as VmRow["hypervisor"];
    const t = clone?.template;
    const pluginName = t ? t.plugin ?? undefined : req.plugin;
    const imageRef = t ? t.image ?? undefined : req.image;
    const manifest = pluginName === undefined
      ? undefined
      : (await pluginFiles(rt, pluginName)).manifest;
    if (manifest?.devices && manifest.devices.pci_passthrough.length > 0) {
      throw new VolantError(
        "invalid_argument",
        `plugin ${pluginName}: devices.pci_passthrough is not supported by this build`,
        { plugin: pluginName },
      );
    }
    // A clone takes its identity from kestrel: a guest without it would come up as its parent.
    const init = manifest?.init.mode ?? "kestrel";
    if (clone && init !== "kestrel") {
      throw new VolantError(
        "invalid_argument",
        `from_snapshot: snapshot ${clone.record.name} is of a plugin with init.mode ${init}: ` +
          "without kestrel in the guest a clone cannot take its own address and name (it would " +
          "come up as its parent); restore it in place instead",
        { field: "from_snapshot", snapshot: clone.record.name, init },
      );
    }
    const pulled = imageRef === undefined
      ? undefined
      : await imageService(rt).ensure(imageRef, req.insecure_registry);
    const kernel = t?.kernel ?? req.kernel ??
      defaultKernelFor(rt.driver.name, rt.config.defaultKernel);
    const format = KERNEL_FILES[kernel].format;
    if (!rt.driver.kernelFormats.includes(format)) {
      throw new VolantError(
        "invalid_argument",
        `kernel: ${kernel} is a ${format} image, which ${rt.driver.name} cannot boot (it ` +
          `boots ${rt.driver.kernelFormats.join(" or ")}); leave kernel unset to get ` +
          `${defaultKernelFor(rt.driver.name, "auto")}`,
        { field: "kernel", kernel, hypervisor: rt.driver.name },
      );
    }
    const image = await rt.guest.resolve(kernel);
    await checkPublish(rt, req.publish);
    const row = rt.transaction(() => {
      const inserted = rt.store.insert({
        name: req.name,
        state: "pending",
        cpu_cores: t?.cpu_cores ?? req.cpu_cores ?? manifest?.resources.cpu_cores ?? 1,
        memory_mb: t?.memory_mb ?? req.memory_mb ?? manifest?.resources.memory_mb ?? 256,
        kernel,
        kernel_cmdline: t ? t.kernel_cmdline : req.kernel_cmdline ?? null,
        hypervisor,
        kvm: rt.driver.kvm,
        started_at: null,
        ready_at: null,
        boot_ms: null,
        last_error: null,
        serial_offset: 0,
        handle: null,
        mac: macOf(req.name),
        tap: null,
        last_ip: null,
        plugin: pluginName ?? null,
        workload: null,
        image: imageRef ?? null,
        image_digest: t ? t.image_digest : pulled?.digest ?? null,
        image_overrides: t ? t.image_overrides : req.image === undefined ? null : {
          env: Object.fromEntries(req.env.map((e) => {
            const eq = e.indexOf("=");
            return [e.slice(0, eq), e.slice(eq + 1)];
          })),
          entrypoint: req.entrypoint ?? null,
          cmd: req.cmd ?? null,
        },
        deployment: replica?.deployment ?? null,
        generation: replica?.generation ?? null,
        restart: {
          ...NO_RESTARTS,
          policy: req.restart ?? (replica ? "always" : manifest?.restart.vm ?? "never"),
        },
      });
      leaseAddress(rt, inserted.id, req.ip);
      rt.ports.add(inserted.id, req.publish);
      rt.policies.set(
        inserted.id,
        t && req.network_policy === undefined
          ? t.network_policy
          : mergeNetworkPolicy(req.network_policy, manifest?.network),
        "network_policy",
      );
      const created = rt.store.get(req.name)!;
      rt.events.record({
        type: "vm.state",
        name: created.name,
        from: null,
        to: "pending",
        at: created.created_at,
        vm: toRecord(created),
      });
      return created;
    });
    rt.logger.info("vm created", { vm: row.name, ip: row.ip ?? undefined });
    faultPoint("create_committed");
    try {
      if (clone) await clone.copyDisks(vmPaths(rt.config, row.name).diskDir);
      const launched = clone
        ? await launch(rt, row, image, { stateDir: clone.stateDir, identity: true })
        : await launch(rt, row, image);
      if (clone) rt.logger.info("vm cloned", { vm: row.name, snapshot: clone.record.name });
      if (req.publish.length > 0) await syncForwards(rt);
      return toRecord(rt.store.get(row.name) ?? launched);
    } catch (err) {
      const now = rt.store.get(row.name);
      if (now?.handle) await killHandle(rt, row.name, now.handle, killLadder(rt));
      await this.#forget(row.name);
      throw err;
    }
  }

  /**
   * Clones running VM `source` (body: {@linkcode VmCloneRequest}): snapshots it (it pauses for
   * the save and runs on) as `<clone>-base`, resumes that snapshot as `count` new VMs (each
   * `from_snapshot`: its own address, MAC, hostname, kestrel secret and disk copies), then
   * deletes the snapshot unless `keep_snapshot`. All or nothing: when one clone fails, the
   * clones already made are deleted and the error thrown.
   */
  async clone(source: string, input: unknown): Promise<VmCloneResult> {
    this.#open();
    const parsed = VmCloneRequest.safeParse(input);
    if (!parsed.success) throw fromZodError(parsed.error);
    const req = parsed.data;
    const names = req.count === 1
      ? [req.clone]
      : Array.from({ length: req.count }, (_, i) => `${req.clone}-${i + 1}`);
    const rt = this.runtime;
    for (const name of names) {
      if (rt.store.get(name) || this.#reserved(name) !== undefined) {
        throw new VolantError("already_exists", `name: VM ${name} already exists`, {
          field: "name",
          name,
        });
      }
    }
    const snapshot = `${req.clone}-base`;
    await this.snapshots.create(source, { snapshot });
    const made: VmRecord[] = [];
    try {
      for (const name of names) made.push(await this.create({ name, from_snapshot: snapshot }));
    } catch (err) {
      for (const vm of made) {
        await this.delete(vm.name).catch((e) =>
          rt.logger.warn("clone not undone", { vm: vm.name, error: e })
        );
      }
      if (!req.keep_snapshot) await this.snapshots.remove(snapshot).catch(() => {});
      throw err;
    }
    if (!req.keep_snapshot) await this.snapshots.remove(snapshot);
    return { snapshot, snapshot_kept: req.keep_snapshot, vms: made };
  }

  /**
   * Removes every trace of a VM (dirs, row and with it its lease, ports and policy, their
   * forwards and rules); the row goes with its `vm.deleted` event. No process or tap may remain.
   */
  async #forget(name: string): Promise<VmRecord | undefined> {
    const rt = this.runtime;
    const paths = vmPaths(rt.config, name);
    await removeTree(paths.runtimeDir);
    await removeTree(paths.logDir);
    await removeTree(paths.diskDir);
    faultPoint("delete_files");
    // The lease is free from here on: the event says so as the row goes.
    const last = rt.transaction(() => {
      const last = rt.store.get(name);
      rt.store.delete(name);
      if (last) {
        rt.events.record({
          type: "vm.deleted",
          name,
          at: rt.now().toISOString(),
          vm: toRecord(last),
        });
      }
      return last;
    });
    faultPoint("delete_row");
    if (!last) return undefined;
    const record = toRecord(last);
    if (last.ports.length > 0) {
      try {
        await syncForwards(rt);
      } catch (err) {
        rt.logger.error("removing port forwards failed", { vm: name, error: err });
      }
    }
    // Peers that named it lost it (their rows went with it).
    await syncPoliciesQuietly(rt, name);
    return record;
  }

  /** Launches `row`; on failure records the error on the VM (crashed if it got to starting). */
  async #startLocked(row: VmRow): Promise<VmRecord> {
    const rt = this.runtime;
    if (row.handle) await killHandle(rt, row.name, row.handle, killLadder(rt));
    try {
      return toRecord(await launch(rt, rt.store.get(row.name) ?? row));
    } catch (err) {
      const now = rt.store.get(row.name);
      if (now?.state === "starting") {
        setState(rt, row.name, "crashed", { last_error: messageOf(err) });
      } else if (now) {
        rt.store.update(row.name, { last_error: messageOf(err) });
      }
      throw err;
    }
  }

  /** Starts a `stopped` or `crashed` VM; resolves at `starting`. */
  async start(name: string): Promise<VmRecord> {
    this.#open();
    return await this.runtime.mutex.run(name, () => {
      const row = this.#row(name);
      assertAction(name, "start", row.state);
      return this.#startLocked(row);
    });
  }

  /** Stops a `starting` or `running` VM through the stop ladder; resolves at `stopped`. */
  async stop(name: string): Promise<VmRecord> {
    this.#open();
    return await this.runtime.mutex.run(name, async () => {
      const row = this.#row(name);
      assertAction(name, "stop", row.state);
      return toRecord(await stopVm(this.runtime, row));
    });
  }

  /** Stops (when it runs) and starts a VM; resolves at `starting`. */
  async restart(name: string): Promise<VmRecord> {
    this.#open();
    return await this.runtime.mutex.run(name, async () => {
      let row = this.#row(name);
      assertAction(name, "restart", row.state);
      if (row.state === "starting" || row.state === "running") {
        row = await stopVm(this.runtime, row);
      }
      return this.#startLocked(row);
    });
  }

  /** Deletes a VM (stopping it first when it runs); resolves to its last record. */
  async delete(name: string): Promise<VmRecord> {
    this.#open();
    const rt = this.runtime;
    return await rt.mutex.run(name, async () => {
      let row = this.#row(name);
      assertAction(name, "delete", row.state);
      if (row.state === "starting" || row.state === "running") row = await stopVm(rt, row);
      if (row.handle) await killHandle(rt, name, row.handle, killLadder(rt));
      faultPoint("delete_stopped");
      const last = await this.#forget(name);
      rt.logger.info("vm deleted", { vm: name });
      return last ?? toRecord(row);
    });
  }

  /**
   * Replaces the network policy of a starting or running VM from an unvalidated body; the new
   * rules apply at once (connections the old policy allowed and the new one does not stop).
   * All or nothing: nft and the store both change, or neither. Errors: `invalid_argument`
   * naming the field (a malformed CIDR or port, `allow_from[i]` naming no VM or the VM itself),
   * `invalid_state` for a VM that does not run (its policy is set at create time or while it
   * runs), `not_found`, network errors.
   */
  async setNetworkPolicy(name: string, input: unknown): Promise<VmRecord> {
    this.#open();
    const parsed = NetworkPolicy.safeParse(input);
    if (!parsed.success) throw fromZodError(parsed.error);
    const policy = normalizeNetworkPolicy(parsed.data);
    const rt = this.runtime;
    return await rt.mutex.run(name, async () => {
      const row = this.#row(name);
      assertPolicyChangeable(row);
      await replacePolicy(rt, row, policy);
      return toRecord(this.#row(name));
    });
  }

  /**
   * Resolves once VM `name` is in `state`. Rejects with `timeout` after `timeoutMs`, with
   * `invalid_state` when the VM is (or gets) in a state from which `state` cannot follow
   * without another request, and with `not_found` when it does not exist or is deleted.
   */
  async wait(name: string, state: VmState, timeoutMs: number): Promise<VmRecord> {
    this.#open();
    return await waitForState(this.runtime, this.#waits, name, state, timeoutMs);
  }

  /**
   * Stops serving: pending waits fail with `daemon_unreachable`, watchers stop, in-flight
   * requests finish. VMs keep running (the next daemon re-adopts them).
   */
  async close(): Promise<void> {
    const rt = this.runtime;
    if (rt.closing.signal.aborted) return;
    rt.closing.abort();
    for (const cancel of [...this.#waits]) {
      cancel(new VolantError("daemon_unreachable", "volantd is shutting down"));
    }
    for (const run of rt.runs.values()) run.abort.abort();
    await rt.mutex.idle();
    this.events.close();
  }
}
