/**
 * In-process VM events: every state change, deletion and workload change, for `wait` and the
 * event stream (`GET /api/v1/events`; the wire form is `schema/event.ts`).
 *
 * @module
 */
import type { VmDeletedEvent, VmEvent, VmStateEvent, VmWorkloadEvent } from "../../schema/event.ts";

export type { VmDeletedEvent, VmEvent, VmStateEvent, VmWorkloadEvent };

/** Receives events synchronously, in order. */
export type VmEventListener = (event: VmEvent) => void;

/**
 * A small synchronous event emitter. A throwing listener does not disturb the others.
 *
 * @example
 * ```ts
 * import { VmEvents } from "./events.ts";
 * const events = new VmEvents();
 * const seen: string[] = [];
 * const off = events.subscribe((e) => seen.push(e.type));
 * off();
 * console.assert(events.listenerCount() === 0);
 * ```
 */
export class VmEvents {
  #listeners = new Set<VmEventListener>();

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: VmEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Delivers an event to every listener. */
  emit(event: VmEvent): void {
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
}
