/**
 * Deployments: create, list, get, scale, update and delete, and the reconciler that keeps each
 * one's replicas (`<name>-1` … `<name>-N`, VMs naming their deployment) at its desired count and
 * template (the rules are `_deploy_plan.ts`). Desired state is a row in SQLite written with its
 * event; replicas are VM rows written by the VM service; the reconciler only ever compares the
 * two, so it resumes after a daemon restart without duplicating a replica (a name is taken or it
 * is not). A replica's crash is its restart policy's (always); an unhealthy one is restarted in
 * place, a stopped one started.
 *
 * A kill -9 mid-action leaves what the VM service leaves (a replica row the reconciler sees at
 * the next start, crashed and restarted, or missing and created) and a deployment row that is
 * the truth; a delete that was under way goes on at start (`deleting`).
 *
 * @module
 */
import {
  type DeploymentFailure,
  type DeploymentRecord,
  type DeploymentReplica,
  type DeploymentStatus,
  DeploymentTemplate,
  fromZodError,
  replicaIndex,
  replicaName,
  VolantError,
} from "../../schema/mod.ts";
import {
  DeploymentCreateRequest,
  DeploymentScaleRequest,
  DeploymentUpdateRequest,
} from "../../schema/deployment.ts";
import type { DeploymentEventType } from "../../schema/event.ts";
import type { Logger } from "../log.ts";
import type { DeploymentRow, DeploymentStore, Store, VmRow } from "../store/mod.ts";
import type { ImageService } from "./images.ts";
import type { PluginService } from "./plugins.ts";
import type { VmService } from "./vms.ts";
import { DeploymentReconciler, replicaHealthy } from "./_deploy_reconciler.ts";

export { replicaHealthy };

/** The `deployments` section of the config, and the crash-loop threshold. */
export interface DeploymentSettings {
  /** Replicas a deployment may ask for. */
  max_replicas: number;
  /** Actions one deployment runs at once. */
  parallel: number;
  /** Unhealthy this long → restarted in place. */
  unhealthy_after_ms: number;
  /** The reconciler looks at every deployment at least this often. */
  resync_ms: number;
  /** A replica crashed this many times in a row is crash-looping (`restart.crash_loop_after`). */
  crash_loop_after: number;
}

/** What {@linkcode DeploymentService} is built from. */
export interface DeploymentServiceOptions {
  store: Pick<Store, "deployments" | "transaction">;
  vms: VmService;
  plugins?: PluginService;
  images?: ImageService;
  settings: DeploymentSettings;
  logger: Logger;
}

/** Failed actions kept per deployment. */
const MAX_FAILURES = 10;

/**
 * Manages deployments.
 *
 * @example
 * ```ts ignore
 * const web = await deployments.create({ name: "web", plugin: "app", replicas: 3 });
 * await deployments.wait("web", 120_000);
 * await deployments.scale("web", { replicas: 5 });
 * ```
 */
export class DeploymentService {
  readonly #store: DeploymentStore;
  readonly #transaction: <T>(fn: () => T) => T;
  readonly #vms: VmService;
  readonly #plugins?: PluginService;
  readonly #images?: ImageService;
  readonly settings: DeploymentSettings;
  readonly #reconciler: DeploymentReconciler;
  #closing = new AbortController();

  /** Builds the service; replica names are reserved from here on. Call {@linkcode start}. */
  constructor(options: DeploymentServiceOptions) {
    this.#store = options.store.deployments;
    this.#transaction = options.store.transaction;
    this.#vms = options.vms;
    if (options.plugins) this.#plugins = options.plugins;
    if (options.images) this.#images = options.images;
    this.settings = options.settings;
    this.#reconciler = new DeploymentReconciler({
      store: this.#store,
      vms: this.#vms,
      settings: this.settings,
      logger: options.logger,
      record: (row) => this.#toRecord(row),
      emit: (type, row) => this.#emit(type, row),
      fail: (name, failure) => this.#fail(name, failure),
      succeeded: (name) => this.#clearFailures(name),
    });
    this.#vms.reserveNames((vm) => {
      for (const d of this.#store.list()) {
        if (replicaIndex(d.name, vm) !== null) {
          return `${vm} is a replica name of deployment ${d.name}; pick another name`;
        }
      }
      return undefined;
    });
  }

  /** Starts the reconciler (after the VMs were reconciled). */
  start(): void {
    this.#reconciler.start();
  }

  /** Stops the reconciler; actions under way finish. */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#reconciler.close();
  }

  #row(name: string): DeploymentRow {
    const row = this.#store.get(name);
    if (!row) throw new VolantError("not_found", `Deployment ${name} does not exist`, { name });
    return row;
  }

  #members(name: string): VmRow[] {
    return this.#vms.runtime.store.listByDeployment(name);
  }

  #toRecord(row: DeploymentRow): DeploymentRecord {
    const members = this.#members(row.name);
    const replicas: DeploymentReplica[] = members.map((vm) => ({
      name: vm.name,
      state: vm.state,
      healthy: replicaHealthy(vm),
      ip: vm.ip,
      generation: vm.generation ?? 0,
      restarts: vm.restart.restarts,
      crash_loop: vm.restart.streak >= this.settings.crash_loop_after,
      last_error: vm.last_error,
    }));
    const ready = replicas.filter((r) => r.healthy).length;
    const updated = replicas.filter((r) => r.generation === row.generation).length;
    let status: DeploymentStatus;
    if (row.deleting) status = "deleting";
    else if (replicas.some((r) => r.crash_loop)) status = "crash_loop";
    else if (
      replicas.length === row.replicas && ready === row.replicas && updated === row.replicas
    ) status = "ready";
    else if (
      row.failures.length > 0 ||
      replicas.some((r) => r.state === "crashed" || (r.state === "running" && !r.healthy))
    ) status = "degraded";
    else status = "progressing";
    return {
      name: row.name,
      status,
      replicas: row.replicas,
      ready,
      updated,
      generation: row.generation,
      max_unavailable: row.max_unavailable,
      template: row.template,
      members: replicas,
      failures: row.failures,
      created_at: row.created_at,
      updated_at: row.updated_at,
    };
  }

  /** Records a deployment event for `row` (call inside the transaction of the change). */
  #emit(type: DeploymentEventType, row: DeploymentRow): void {
    this.#vms.events.record({
      type,
      name: row.name,
      at: row.updated_at,
      deployment: this.#toRecord(row),
    });
  }

  #fail(name: string, failure: DeploymentFailure): void {
    this.#transaction(() => {
      const row = this.#store.get(name);
      if (!row) return;
      this.#store.update(name, { failures: [...row.failures, failure].slice(-MAX_FAILURES) });
      this.#vms.events.record({
        type: "deployment.replica",
        name,
        at: failure.at,
        replica: failure.replica,
        change: "failed",
        message: `${failure.action} failed: ${failure.message}`,
      });
    });
  }

  #clearFailures(name: string): void {
    const row = this.#store.get(name);
    if (row && row.failures.length > 0) this.#store.update(name, { failures: [] });
  }

  #checkReplicas(replicas: number): void {
    if (replicas > this.settings.max_replicas) {
      throw new VolantError(
        "invalid_argument",
        `replicas: at most ${this.settings.max_replicas} (deployments.max_replicas), got ${replicas}`,
        { field: "replicas", max: this.settings.max_replicas },
      );
    }
  }

  /** `not_found` for a plugin or image the template names that is not there. */
  async #checkSource(template: DeploymentTemplate): Promise<void> {
    if (template.plugin !== undefined) {
      if (!this.#plugins) {
        throw new VolantError("unsupported", "This volantd has no plugin registry");
      }
      const plugin = this.#plugins.get(template.plugin);
      if (!plugin.enabled) {
        throw new VolantError(
          "invalid_state",
          `plugin: ${template.plugin} is disabled (volar plugins enable ${template.plugin})`,
          { field: "plugin", plugin: template.plugin },
        );
      }
    }
    if (template.image !== undefined) {
      if (!this.#images) throw new VolantError("unsupported", "This volantd has no image store");
      await this.#images.ensure(template.image, template.insecure_registry);
    }
  }

  /** Refuses replica names `first..last` of `name` that a VM outside it holds. */
  #checkNames(name: string, first: number, last: number): void {
    const taken: string[] = [];
    for (let i = first; i <= last; i++) {
      const vm = this.#vms.runtime.store.get(replicaName(name, i));
      if (vm && vm.deployment !== name) taken.push(vm.name);
    }
    if (taken.length > 0) {
      throw new VolantError(
        "already_exists",
        `replicas: ${taken.join(", ")} ${taken.length === 1 ? "is a VM" : "are VMs"} outside ` +
          `deployment ${name}; its replicas would need ${
            taken.length === 1 ? "that name" : "those names"
          } (delete ${taken.length === 1 ? "it" : "them"} or pick another deployment name)`,
        { field: "replicas", taken },
      );
    }
  }

  #open(): void {
    if (this.#closing.signal.aborted) {
      throw new VolantError("daemon_unreachable", "volantd is shutting down");
    }
  }

  /** Every deployment, by name. */
  list(): DeploymentRecord[] {
    return this.#store.list().map((row) => this.#toRecord(row));
  }

  /** One deployment; `not_found` when absent. */
  get(name: string): DeploymentRecord {
    return this.#toRecord(this.#row(name));
  }

  /**
   * Creates a deployment from an unvalidated body; its replicas are created by the reconciler
   * (wait with {@linkcode wait}). Errors: `invalid_argument` naming the field, `already_exists`
   * (the name, or a replica name a VM holds), `not_found` (plugin or image).
   */
  async create(input: unknown): Promise<DeploymentRecord> {
    this.#open();
    const parsed = DeploymentCreateRequest.safeParse(input);
    if (!parsed.success) throw fromZodError(parsed.error);
    const { name, replicas, max_unavailable, ...fields } = parsed.data;
    this.#checkReplicas(replicas);
    const template = DeploymentTemplate.parse(fields);
    await this.#checkSource(template);
    if (this.#store.get(name)) {
      throw new VolantError("already_exists", `Deployment ${name} already exists`, { name });
    }
    this.#checkNames(name, 1, replicas);
    const row = this.#transaction(() => {
      const row = this.#store.insert({ name, replicas, template, generation: 1, max_unavailable });
      this.#emit("deployment.created", row);
      return row;
    });
    this.#reconciler.poke(name);
    return this.#toRecord(row);
  }

  /** Sets the desired replica count (`invalid_argument`, `not_found`, `already_exists`). */
  scale(name: string, input: unknown): DeploymentRecord {
    this.#open();
    const parsed = DeploymentScaleRequest.safeParse(input);
    if (!parsed.success) throw fromZodError(parsed.error);
    const { replicas } = parsed.data;
    this.#checkReplicas(replicas);
    const current = this.#row(name);
    this.#refuseDeleting(current);
    const have = this.#members(name).length;
    if (replicas > have) this.#checkNames(name, 1, replicas);
    const row = this.#transaction(() => {
      const row = this.#store.update(name, { replicas, failures: [] });
      this.#emit("deployment.scaled", row);
      return row;
    });
    this.#reconciler.poke(name);
    return this.#toRecord(row);
  }

  /**
   * Changes the template (a rolling update: the generation goes up) and/or max_unavailable.
   * `image` replaces `plugin` and the reverse.
   */
  async update(name: string, input: unknown): Promise<DeploymentRecord> {
    this.#open();
    const parsed = DeploymentUpdateRequest.safeParse(input);
    if (!parsed.success) throw fromZodError(parsed.error);
    const current = this.#row(name);
    this.#refuseDeleting(current);
    const { max_unavailable, ...changes } = parsed.data;
    const given = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
    const base: Record<string, unknown> = { ...current.template };
    if ("image" in given) {
      delete base.plugin;
    }
    if ("plugin" in given) {
      for (const k of ["image", "entrypoint", "cmd", "env", "insecure_registry"]) delete base[k];
    }
    const merged = DeploymentTemplate.safeParse({ ...base, ...given });
    if (!merged.success) throw fromZodError(merged.error);
    const changed = JSON.stringify(merged.data) !== JSON.stringify(current.template);
    if (changed) await this.#checkSource(merged.data);
    const row = this.#transaction(() => {
      const row = this.#store.update(name, {
        ...(changed
          ? { template: merged.data, generation: current.generation + 1, failures: [] }
          : {}),
        ...(max_unavailable === undefined ? {} : { max_unavailable }),
      });
      this.#emit("deployment.updated", row);
      return row;
    });
    this.#reconciler.poke(name);
    return this.#toRecord(row);
  }

  #refuseDeleting(row: DeploymentRow): void {
    if (row.deleting) {
      throw new VolantError("invalid_state", `Deployment ${row.name} is being deleted`, {
        name: row.name,
      });
    }
  }

  /**
   * Deletes a deployment: its replicas are deleted, then it; resolves to its last record once
   * gone (a delete cut short by a daemon restart goes on at the next start).
   */
  async delete(name: string, timeoutMs = 600_000): Promise<DeploymentRecord> {
    this.#open();
    const current = this.#row(name);
    if (!current.deleting) {
      this.#transaction(() => {
        const row = this.#store.update(name, { deleting: true });
        this.#emit("deployment.deleting", row);
      });
    }
    const last = this.#toRecord(this.#row(name));
    this.#reconciler.poke(name);
    await this.#until(name, timeoutMs, () => this.#store.get(name) === undefined, () => null);
    return { ...last, members: [], ready: 0, updated: 0 };
  }

  /**
   * Resolves once deployment `name` is ready (every replica healthy at its generation).
   * `invalid_state` when it is deleted, or a replica crash-loops, or 3 actions failed in a row
   * (the reconciler keeps trying; the message lists the failures); `timeout` otherwise.
   */
  async wait(name: string, timeoutMs: number): Promise<DeploymentRecord> {
    this.#row(name);
    let last: DeploymentRecord | undefined;
    await this.#until(name, timeoutMs, () => {
      const row = this.#store.get(name);
      if (!row) {
        throw new VolantError("invalid_state", `Deployment ${name} was deleted`, { name });
      }
      last = this.#toRecord(row);
      return last.status === "ready";
    }, () => {
      if (!last) return null;
      if (last.status === "crash_loop") {
        const looping = last.members.filter((m) => m.crash_loop).map((m) => m.name);
        return new VolantError(
          "invalid_state",
          `Deployment ${name}: ${looping.join(", ")} crash-loop${
            looping.length === 1 ? "s" : ""
          } (volar vms get ${looping[0]} shows the last error); volantd keeps restarting`,
          { name, crash_loop: looping },
        );
      }
      if (last.failures.length >= 3) {
        const lines = last.failures.slice(-3).map((f) => `${f.replica}: ${f.action}: ${f.message}`);
        return new VolantError(
          "invalid_state",
          `Deployment ${name}: the last actions failed (volantd keeps retrying):\n` +
            lines.join("\n"),
          { name, failures: last.failures },
        );
      }
      return null;
    });
    return last!;
  }

  async #until(
    name: string,
    timeoutMs: number,
    done: () => boolean,
    failed: () => VolantError | null,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (done()) return;
      const err = failed();
      if (err) throw err;
      if (this.#closing.signal.aborted) {
        throw new VolantError("daemon_unreachable", "volantd is shutting down");
      }
      if (Date.now() >= deadline) {
        throw new VolantError(
          "timeout",
          `Deployment ${name} did not get there within ${timeoutMs} ms`,
          { name, deployment: this.#store.get(name) ? this.#toRecord(this.#row(name)) : null },
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, deadline - Date.now()))));
    }
  }
}
