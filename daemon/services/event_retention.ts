/**
 * Event retention: the event log keeps events for `events.retention_days` and at most
 * `events.max_rows` of them, the oldest going first. It is pruned when volantd starts and every
 * `events.prune_interval_ms`; a client resuming from an id retention removed is told so
 * (`events_expired`) rather than left with a silent gap.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { EventStore } from "../store/mod.ts";

/** How long and how many events are kept (`events` in the config). */
export interface RetentionPolicy {
  /** Events older than this many days go. */
  retentionDays: number;
  /** At most this many events stay. */
  maxRows: number;
}

/**
 * Prunes the log once; returns how many events went and the highest id removed so far.
 *
 * @example
 * ```ts
 * import { openStore } from "../store/mod.ts";
 * import { pruneEvents } from "./event_retention.ts";
 * const store = openStore(":memory:");
 * const r = pruneEvents(store.events, { retentionDays: 7, maxRows: 1000 });
 * console.assert(r.removed === 0 && r.prunedThrough === 0);
 * store.close();
 * ```
 */
export function pruneEvents(
  log: Pick<EventStore, "prune">,
  policy: RetentionPolicy,
  now: Date = new Date(),
): { removed: number; prunedThrough: number } {
  const cutoff = new Date(now.getTime() - policy.retentionDays * 86_400_000).toISOString();
  return log.prune(cutoff, policy.maxRows);
}

/** Options of {@linkcode startEventRetention}. */
export interface EventRetentionOptions extends RetentionPolicy {
  log: Pick<EventStore, "prune">;
  /** Milliseconds between two prunes. */
  everyMs: number;
  logger: Logger;
  /** Clock; default `new Date()`. */
  now?: () => Date;
}

/**
 * Prunes now, then every `everyMs` until stopped.
 *
 * @example
 * ```ts ignore
 * const retention = startEventRetention({ log: store.events, retentionDays: 7, maxRows: 100_000,
 *   everyMs: 600_000, logger });
 * retention.stop();
 * ```
 */
export function startEventRetention(options: EventRetentionOptions): { stop(): void } {
  const now = options.now ?? (() => new Date());
  const run = () => {
    try {
      const { removed, prunedThrough } = pruneEvents(options.log, options, now());
      if (removed > 0) {
        options.logger.info("events pruned", { removed, pruned_through: prunedThrough });
      }
    } catch (err) {
      options.logger.error("pruning events failed", { error: err });
    }
  };
  run();
  const timer = setInterval(run, options.everyMs);
  Deno.unrefTimer(timer);
  return { stop: () => clearInterval(timer) };
}
