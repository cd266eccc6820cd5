/**
 * The deployment reconciler: one pass at a time per deployment — observe its replicas, plan
 * (`_deploy_plan.ts`), run the actions (at most `deployments.parallel` at once), record what
 * happened as `deployment.replica` events — started by events of its replicas and itself, and
 * at least every `deployments.resync_ms`. A failed create backs off (doubling, up to a minute)
 * before the next.
 *
 * @module
 */
import type {
  DeploymentFailure,
  DeploymentRecord,
  VolantError as VolantErrorType,
} from "../../schema/mod.ts";
import type { DeploymentEventType } from "../../schema/event.ts";
import type { Logger } from "../log.ts";
import type { DeploymentRow, DeploymentStore, VmRow } from "../store/mod.ts";
import type { VmService } from "./vms.ts";
import type { VolantEvent } from "./events.ts";
import { type ObservedReplica, plan, type PlanAction } from "./_deploy_plan.ts";
import type { DeploymentSettings } from "./deployments.ts";
import { messageOf } from "./_runtime.ts";

/** What the reconciler needs from the deployment service. */
export interface ReconcilerOptions {
  store: DeploymentStore;
  vms: VmService;
  settings: DeploymentSettings;
  logger: Logger;
  record(row: DeploymentRow): DeploymentRecord;
  emit(type: DeploymentEventType, row: DeploymentRow): void;
  fail(name: string, failure: DeploymentFailure): void;
  succeeded(name: string): void;
}

/** Whether a replica counts as available: running, its workload healthy (or without one). */
export function replicaHealthy(row: VmRow): boolean {
  return row.state === "running" && (row.workload === null || row.workload.healthy);
}

const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

/** Keeps deployments' replicas as their rows say. */
export class DeploymentReconciler {
  #o: ReconcilerOptions;
  #running = new Map<string, Promise<void>>();
  #dirty = new Set<string>();
  /** Replica → since when it has been running but unhealthy (epoch ms) and in which run. */
  #unhealthy = new Map<string, { since: number; startedAt: string | null }>();
  /** Deployment → creates blocked until (epoch ms), and the current backoff. */
  #backoff = new Map<string, { until: number; ms: number }>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #off: (() => void) | undefined;
  #closed = false;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
  }

  /** Follows events and resyncs periodically; every deployment is looked at once now. */
  start(): void {
    this.#off = this.#o.vms.events.subscribe((e) => this.#heard(e));
    const tick = () => {
      if (this.#closed) return;
      for (const d of this.#o.store.list()) this.poke(d.name);
      this.#timer = setTimeout(tick, this.#o.settings.resync_ms);
    };
    tick();
  }

  /** Stops; passes under way finish. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#off?.();
    clearTimeout(this.#timer);
    await Promise.allSettled([...this.#running.values()]);
  }

  #heard(event: VolantEvent): void {
    if (event.type === "vm.state" || event.type === "vm.deleted") {
      if (event.vm.deployment) this.poke(event.vm.deployment);
    } else if (event.type === "vm.workload") {
      const row = this.#o.vms.runtime.store.get(event.name);
      if (row?.deployment) this.poke(row.deployment);
    }
  }

  /** Runs a pass for deployment `name` now, or right after the one under way. */
  poke(name: string): void {
    if (this.#closed) return;
    if (this.#running.has(name)) {
      this.#dirty.add(name);
      return;
    }
    const run = (async () => {
      try {
        do {
          this.#dirty.delete(name);
          await this.#pass(name);
        } while (this.#dirty.has(name) && !this.#closed);
      } catch (err) {
        this.#o.logger.error("deployment pass failed", { deployment: name, error: err });
      } finally {
        this.#running.delete(name);
      }
    })();
    this.#running.set(name, run);
  }

  #observe(row: DeploymentRow): ObservedReplica[] {
    const now = Date.now();
    const prefix = `${row.name}-`;
    return this.#o.vms.runtime.store.listByDeployment(row.name)
      .map((vm) => {
        const healthy = replicaHealthy(vm);
        let unhealthyForMs: number | null = null;
        if (vm.state === "running" && !healthy) {
          const seen = this.#unhealthy.get(vm.name);
          if (seen && seen.startedAt === vm.started_at) unhealthyForMs = now - seen.since;
          else {
            this.#unhealthy.set(vm.name, { since: now, startedAt: vm.started_at });
            unhealthyForMs = 0;
          }
        } else this.#unhealthy.delete(vm.name);
        return {
          name: vm.name,
          index: Number(vm.name.slice(prefix.length)) || 0,
          generation: vm.generation ?? 0,
          state: vm.state,
          healthy,
          unhealthyForMs,
          ip: vm.ip,
        };
      });
  }

  async #pass(name: string): Promise<void> {
    const row = this.#o.store.get(name);
    if (!row) return;
    const backoff = this.#backoff.get(name);
    const members = this.#observe(row);
    const actions = plan({
      name,
      replicas: row.replicas,
      generation: row.generation,
      maxUnavailable: row.max_unavailable,
      deleting: row.deleting,
      members,
      unhealthyAfterMs: this.#o.settings.unhealthy_after_ms,
      parallel: this.#o.settings.parallel,
      createsBlocked: backoff !== undefined && backoff.until > Date.now(),
    });
    if (actions.length === 0) {
      const record = this.#o.record(row);
      if (record.status === "ready") this.#o.succeeded(name);
      return;
    }
    const done = await Promise.all(actions.map((a) => this.#act(row, a)));
    // Something changed: look again. (What failed waits for the next event or resync.)
    if (done.some((ok) => ok)) this.#dirty.add(name);
  }

  #replicaEvent(
    deployment: string,
    replica: string,
    change: "created" | "replaced" | "restarted" | "started" | "removed",
  ): void {
    this.#o.vms.events.record({
      type: "deployment.replica",
      name: deployment,
      at: new Date().toISOString(),
      replica,
      change,
      message: null,
    });
  }

  async #create(row: DeploymentRow, replica: string, ip: string | null): Promise<void> {
    const body = { ...row.template, name: replica, ...(ip ? { ip } : {}) };
    const as = { deployment: row.name, generation: row.generation };
    try {
      await this.#o.vms.create(body, as);
    } catch (err) {
      // The old address went to someone else meanwhile: any address will do.
      if (ip && (err as VolantErrorType).code === "ip_unavailable") {
        await this.#o.vms.create({ ...row.template, name: replica }, as);
      } else throw err;
    }
  }

  async #delete(replica: string): Promise<void> {
    try {
      await this.#o.vms.delete(replica);
    } catch (err) {
      if ((err as VolantErrorType).code !== "not_found") throw err;
    }
  }

  /** Runs one action; false when it failed (recorded on the deployment). */
  async #act(row: DeploymentRow, action: PlanAction): Promise<boolean> {
    const name = row.name;
    if (action.kind === "finish_delete") {
      this.#o.vms.runtime.transaction(() => {
        const last = this.#o.store.get(name);
        if (!last) return;
        this.#o.emit("deployment.deleted", last);
        this.#o.store.delete(name);
      });
      this.#backoff.delete(name);
      this.#o.logger.info("deployment deleted", { deployment: name });
      return true;
    }
    const replica = action.replica;
    try {
      switch (action.kind) {
        case "create":
          await this.#create(row, replica, null);
          this.#backoff.delete(name);
          this.#replicaEvent(name, replica, "created");
          break;
        case "replace":
          await this.#delete(replica);
          await this.#create(row, replica, action.ip);
          this.#replicaEvent(name, replica, "replaced");
          break;
        case "delete":
          await this.#delete(replica);
          this.#replicaEvent(name, replica, "removed");
          break;
        case "restart":
          this.#unhealthy.delete(replica);
          await this.#o.vms.restart(replica);
          this.#replicaEvent(name, replica, "restarted");
          break;
        case "start":
          await this.#o.vms.start(replica);
          this.#replicaEvent(name, replica, "started");
          break;
      }
      this.#o.logger.info("deployment action", { deployment: name, action: action.kind, replica });
      return true;
    } catch (err) {
      if (this.#closed) return false;
      const message = messageOf(err);
      this.#o.logger.warn("deployment action failed", {
        deployment: name,
        action: action.kind,
        replica,
        error: message,
      });
      if (action.kind === "create" || action.kind === "replace") {
        const prev = this.#backoff.get(name)?.ms ?? BACKOFF_MIN_MS / 2;
        const ms = Math.min(prev * 2, BACKOFF_MAX_MS);
        // The resync after `until` tries again.
        this.#backoff.set(name, { until: Date.now() + ms, ms });
      }
      this.#o.fail(name, {
        replica,
        action: action.kind,
        at: new Date().toISOString(),
        message,
      });
      return false;
    }
  }
}
