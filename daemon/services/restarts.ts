/**
 * VM restart policies: a VM whose VMM died without being asked (state `crashed`, its lease
 * kept) is started again after a backoff that doubles with each crash in a row — `on-failure`
 * up to `restart.max_retries` crashes in a row, `always` without end. A VM that ran
 * `restart.stable_ms` has its streak reset. What was done is on the VM's record (`restart`:
 * policy, restarts, streak, status, next restart) and survives a daemon restart: crashed VMs
 * due a restart are picked up at start. A VM the user stopped stays stopped.
 *
 * A kill -9 of volantd between a crash and its restart leaves the VM `crashed` with `next_at`
 * recorded; the next daemon restarts it (at once when that time has passed).
 *
 * @module
 */
import type { VmRestartState } from "../../schema/mod.ts";
import type { Logger } from "../log.ts";
import type { VmRow } from "../store/mod.ts";
import type { VolantEvent } from "./events.ts";
import type { VmService } from "./vms.ts";
import { messageOf } from "./_runtime.ts";

/** The `restart` section of the config. */
export interface RestartSettings {
  /** Backoff before the first restart. */
  initial_ms: number;
  /** Longest backoff. */
  max_ms: number;
  /** Running this long resets the streak. */
  stable_ms: number;
  /** on-failure gives up after this many crashes in a row. */
  max_retries: number;
  /** A streak this long is shown as a crash loop. */
  crash_loop_after: number;
}

/** The backoff before restart number `streak` (1 for the first crash in a row). */
export function restartDelay(settings: RestartSettings, streak: number): number {
  const exp = Math.min(Math.max(streak - 1, 0), 30);
  return Math.min(settings.initial_ms * 2 ** exp, settings.max_ms);
}

/**
 * Starts crashed VMs again as their restart policy says.
 *
 * @example
 * ```ts
 * import { restartDelay } from "./restarts.ts";
 * const s = { initial_ms: 1000, max_ms: 60_000, stable_ms: 60_000, max_retries: 10, crash_loop_after: 5 };
 * console.assert(restartDelay(s, 1) === 1000 && restartDelay(s, 3) === 4000);
 * console.assert(restartDelay(s, 20) === 60_000);
 * ```
 */
export class VmRestarter {
  #service: VmService;
  #settings: RestartSettings;
  #logger: Logger;
  #timers = new Map<string, ReturnType<typeof setTimeout>>();
  #stable = new Map<string, ReturnType<typeof setTimeout>>();
  #off: (() => void) | undefined;
  #closed = false;

  /** Restarts `service`'s VMs with the given settings; call {@linkcode start}. */
  constructor(service: VmService, settings: RestartSettings, logger: Logger) {
    this.#service = service;
    this.#settings = settings;
    this.#logger = logger;
  }

  /** Follows the VMs' events and schedules the restarts that are due (after reconcile). */
  start(): void {
    this.#off = this.#service.events.subscribe((e) => this.#heard(e));
    for (const row of this.#service.runtime.store.list()) {
      if (row.restart.policy === "never") continue;
      if (row.state === "crashed" && row.restart.status !== "gave_up") this.#schedule(row, false);
      if (row.state === "running") this.#watchStable(row);
    }
  }

  /** Stops scheduling (pending restarts are dropped; the next daemon picks them up). */
  close(): void {
    this.#closed = true;
    this.#off?.();
    for (const t of [...this.#timers.values(), ...this.#stable.values()]) clearTimeout(t);
    this.#timers.clear();
    this.#stable.clear();
  }

  /** VMs with a restart pending (tests, diagnostics). */
  pending(): string[] {
    return [...this.#timers.keys()].sort();
  }

  #heard(event: VolantEvent): void {
    if (this.#closed) return;
    if (event.type === "vm.deleted") {
      this.#cancel(event.name);
      return;
    }
    if (event.type !== "vm.state") return;
    const row = this.#service.runtime.store.get(event.name);
    if (!row || row.restart.policy === "never") return;
    if (event.to === "crashed" && row.state === "crashed") this.#schedule(row, true);
    else if (event.to === "running") this.#watchStable(row);
    else if (event.to === "stopped" || event.to === "stopping") this.#cancel(event.name);
  }

  #cancel(name: string): void {
    for (const timers of [this.#timers, this.#stable]) {
      const t = timers.get(name);
      if (t !== undefined) clearTimeout(t);
      timers.delete(name);
    }
  }

  #save(name: string, restart: VmRestartState): void {
    try {
      this.#service.runtime.store.update(name, { restart });
    } catch {
      // Deleted meanwhile.
    }
  }

  /** A crash (`fresh`) or a restart found due at start: count it, back off, then start. */
  #schedule(row: VmRow, fresh: boolean): void {
    if (this.#timers.has(row.name)) return;
    const s = this.#settings;
    const stable = this.#stable.get(row.name);
    if (stable !== undefined) clearTimeout(stable);
    this.#stable.delete(row.name);
    const streak = fresh ? row.restart.streak + 1 : Math.max(row.restart.streak, 1);
    if (row.restart.policy === "on-failure" && streak > s.max_retries) {
      this.#save(row.name, { ...row.restart, streak, status: "gave_up", next_at: null });
      this.#logger.warn("vm restart gave up", { vm: row.name, streak });
      return;
    }
    const now = Date.now();
    const recorded = row.restart.next_at === null ? NaN : Date.parse(row.restart.next_at);
    const due = !fresh && Number.isFinite(recorded)
      ? Math.max(recorded, now)
      : now + restartDelay(s, streak);
    this.#save(row.name, {
      ...row.restart,
      streak,
      status: streak >= s.crash_loop_after ? "crash_loop" : "waiting",
      next_at: new Date(due).toISOString(),
    });
    this.#logger.info("vm restart scheduled", { vm: row.name, streak, in_ms: due - now });
    this.#timers.set(
      row.name,
      setTimeout(() => {
        this.#timers.delete(row.name);
        this.#restart(row.name).catch(() => {});
      }, due - now),
    );
  }

  async #restart(name: string): Promise<void> {
    if (this.#closed) return;
    const row = this.#service.runtime.store.get(name);
    if (!row || row.state !== "crashed" || row.restart.policy === "never") return;
    const counted = {
      ...row.restart,
      restarts: row.restart.restarts + 1,
      status: row.restart.streak >= this.#settings.crash_loop_after
        ? "crash_loop" as const
        : "idle" as const,
      next_at: null,
    };
    this.#save(name, counted);
    try {
      await this.#service.start(name);
      this.#logger.info("vm restarted", { vm: name, restarts: counted.restarts });
    } catch (err) {
      if (this.#closed) return;
      this.#logger.warn("vm restart failed", { vm: name, error: messageOf(err) });
      // A start that failed before the VMM ran leaves it crashed without a new event.
      const now = this.#service.runtime.store.get(name);
      if (now?.state === "crashed") this.#schedule(now, true);
    }
  }

  /** Resets the streak once the VM has run `stable_ms` (the same run). */
  #watchStable(row: VmRow): void {
    const before = this.#stable.get(row.name);
    if (before !== undefined) clearTimeout(before);
    const startedAt = row.started_at;
    this.#stable.set(
      row.name,
      setTimeout(() => {
        this.#stable.delete(row.name);
        const now = this.#service.runtime.store.get(row.name);
        if (now?.state !== "running" || now.started_at !== startedAt) return;
        if (now.restart.streak === 0 && now.restart.status === "idle") return;
        this.#save(row.name, { ...now.restart, streak: 0, status: "idle", next_at: null });
      }, this.#settings.stable_ms),
    );
  }
}
