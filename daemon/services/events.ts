/**
 * The daemon's events: every change (VM states, deletions and workload health, plugins,
 * images) is recorded in the store's event log with a durable id, in the same transaction as
 * the change, and heard by in-process listeners once it commits — `wait`, and the event stream
 * (`GET /api/v1/events`, which replays the log from an id, then follows; the wire form is
 * `schema/event.ts`).
 *
 * @module
 */
import type {
  NewEvent,
  VmDeletedEvent,
  VmEvent,
  VmStateEvent,
  VmWorkloadEvent,
  VolantEvent,
} from "../../schema/event.ts";
import type { EventBounds, EventFilter, EventStore } from "../store/mod.ts";

export type { NewEvent, VmDeletedEvent, VmEvent, VmStateEvent, VmWorkloadEvent, VolantEvent };

/** Receives events synchronously, in id order. */
export type VmEventListener = (event: VolantEvent) => void;

/**
 * The event log of one daemon and its listeners. A throwing listener does not disturb the
 * others.
 *
 * @example
 * ```ts
 * import { openStore } from "../store/mod.ts";
 * import { VmEvents } from "./events.ts";
 * const store = openStore(":memory:");
 * const events = new VmEvents(store.events);
 * const seen: number[] = [];
 * const off = events.subscribe((e) => seen.push(e.id));
 * const plugin = {
 *   name: "hello", version: "1", runtime: "hello", description: null, enabled: true,
 *   init: "kestrel" as const, signature: { status: "unsigned" as const, key_id: null },
 *   source: null, installed_at: "", updated_at: "", artifacts: [], actions: [], used_by: [],
 * };
 * const at = new Date().toISOString();
 * store.transaction(() => events.record({ type: "plugin.enabled", name: "hello", at, plugin }));
 * off();
 * console.assert(seen.length === 1 && events.replay(0, 10).length === 1);
 * store.close();
 * ```
 */
export class VmEvents {
  #listeners = new Set<VmEventListener>();
  #log: EventStore;
  #off: () => void;
  #closing = new AbortController();

  /** Events recorded in `log` are heard here once committed. */
  constructor(log: EventStore) {
    this.#log = log;
    this.#off = log.subscribe((event) => this.emit(event));
  }

  /**
   * Records an event in the log. Call it inside the store transaction of the change it reports:
   * both commit together, and listeners hear it after the commit.
   */
  record(event: NewEvent): VolantEvent {
    return this.#log.append(event);
  }

  /** At most `limit` recorded events after id `after`, oldest first. */
  replay(after: number, limit: number, filter?: EventFilter): VolantEvent[] {
    return this.#log.after(after, limit, filter);
  }

  /** The oldest kept, newest recorded and highest pruned ids. */
  bounds(): EventBounds {
    return this.#log.bounds();
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: VmEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Delivers an event to every listener (the log does this for each committed event). */
  emit(event: VolantEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own business.
      }
    }
  }

  /** Number of listeners (tests, diagnostics). */
  listenerCount(): number {
    return this.#listeners.size;
  }

  /** Aborted when the daemon stops serving: event streams end (clients reconnect). */
  get closing(): AbortSignal {
    return this.#closing.signal;
  }

  /** Stops hearing the log and ends the streams that follow it. */
  close(): void {
    this.#off();
    this.#closing.abort();
  }
}
