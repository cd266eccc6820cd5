/**
 * In-process VM events: every state change and deletion, for `wait` now and the event
 * stream (SSE) later.
 *
 * @module
 */
import type { VmRecord, VmState } from "../../schema/mod.ts";
import type { WorkloadSummary } from "../store/mod.ts";

/** A VM changed state (`from` is `null` when it was just created). */
export interface VmStateEvent {
  /** Event type. */
  type: "vm.state";
  /** The VM's name. */
  name: string;
  /** Previous state (`null` for a new VM). */
  from: VmState | null;
  /** New state. */
  to: VmState;
  /** RFC 3339 time of the change. */
  at: string;
  /** The VM after the change. */
  vm: VmRecord;
}

/** A VM was deleted; `vm` is its last record. */
export interface VmDeletedEvent {
  /** Event type. */
  type: "vm.deleted";
  /** The VM's name. */
  name: string;
  /** RFC 3339 time of the deletion. */
  at: string;
  /** The VM's last record. */
  vm: VmRecord;
}

/** The workload kestrel supervises changed: it became healthy or unhealthy, or was restarted. */
export interface VmWorkloadEvent {
  /** Event type. */
  type: "vm.workload";
  /** The VM's name. */
  name: string;
  /** What changed. */
  change: "healthy" | "unhealthy" | "restarted" | "failed";
  /** RFC 3339 time the daemon noticed. */
  at: string;
  /** The workload's status. */
  workload: WorkloadSummary;
}

/** Every event the VM service emits. */
export type VmEvent = VmStateEvent | VmDeletedEvent | VmWorkloadEvent;

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
