/**
 * The VM lifecycle as an explicit table (after Cloud Hypervisor's model):
 *
 * ```
 * pending ─▶ starting ─▶ running ─▶ stopping ─▶ stopped
 *    │          │  │         │          │          │
 *    └──────────┴──┼─────────┴──────────┴─▶ crashed │
 *                  └──────────▶ stopping            │
 * stopped, crashed ─▶ starting ◀────────────────────┘
 * ```
 *
 * Also: which API actions each state allows, and which states follow without a request
 * (what `wait` may still see).
 *
 * @module
 */
import { type VmState, VolantError } from "../schema/mod.ts";

/** Every allowed transition: from → the states it may move to. */
export const TRANSITIONS: Readonly<Record<VmState, readonly VmState[]>> = {
  pending: ["starting", "crashed"],
  starting: ["running", "stopping", "crashed"],
  running: ["stopping", "crashed"],
  stopping: ["stopped", "crashed"],
  stopped: ["starting"],
  crashed: ["starting"],
};

/** Transitions the daemon makes on its own (guest ready, VMM exit, stop finishing). */
export const SPONTANEOUS: Readonly<Record<VmState, readonly VmState[]>> = {
  pending: ["starting", "crashed"],
  starting: ["running", "crashed"],
  running: ["crashed"],
  stopping: ["stopped", "crashed"],
  stopped: [],
  crashed: [],
};

/** Requests that change a VM's lifecycle. */
export type VmAction = "start" | "stop" | "restart" | "delete";

/** The states in which each action is accepted. */
export const ACTIONS: Readonly<Record<VmAction, readonly VmState[]>> = {
  start: ["stopped", "crashed"],
  stop: ["starting", "running"],
  restart: ["starting", "running", "stopped", "crashed"],
  delete: ["pending", "starting", "running", "stopping", "stopped", "crashed"],
};

/**
 * Whether the lifecycle allows `from → to`.
 *
 * @example
 * ```ts
 * import { canTransition } from "./vm_state.ts";
 * console.assert(canTransition("running", "stopping"));
 * console.assert(!canTransition("stopped", "running"));
 * ```
 */
export function canTransition(from: VmState, to: VmState): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * Throws `invalid_state` unless `from → to` is allowed.
 *
 * @example
 * ```ts
 * import { assertTransition } from "./vm_state.ts";
 * assertTransition("web", "starting", "running");
 * ```
 */
export function assertTransition(name: string, from: VmState, to: VmState): void {
  if (canTransition(from, to)) return;
  throw new VolantError(
    "invalid_state",
    `VM ${name} is ${from}; cannot move to ${to}`,
    { name, state: from, wanted: to },
  );
}

/**
 * Whether `action` is accepted in `state`.
 *
 * @example
 * ```ts
 * import { canAct } from "./vm_state.ts";
 * console.assert(canAct("start", "stopped") && !canAct("stop", "stopped"));
 * ```
 */
export function canAct(action: VmAction, state: VmState): boolean {
  return ACTIONS[action].includes(state);
}

/**
 * Throws `invalid_state` (naming the VM, its state and where the action is allowed) unless
 * `action` is accepted in `state`.
 *
 * @example
 * ```ts
 * import { assertAction } from "./vm_state.ts";
 * try {
 *   assertAction("web", "stop", "stopped");
 * } catch (err) {
 *   console.assert((err as Error).message.startsWith("VM web is stopped; cannot stop"));
 * }
 * ```
 */
export function assertAction(name: string, action: VmAction, state: VmState): void {
  if (canAct(action, state)) return;
  const allowed = ACTIONS[action].join(" or ");
  throw new VolantError(
    "invalid_state",
    `VM ${name} is ${state}; cannot ${action} it (only when ${allowed})`,
    { name, state, action },
  );
}

/**
 * Whether `to` can still follow `from` without another request (used by `wait`).
 * A state reaches itself.
 *
 * @example
 * ```ts
 * import { reachableWithoutRequest } from "./vm_state.ts";
 * console.assert(reachableWithoutRequest("starting", "running"));
 * console.assert(!reachableWithoutRequest("crashed", "running"));
 * ```
 */
export function reachableWithoutRequest(from: VmState, to: VmState): boolean {
  const seen = new Set<VmState>([from]);
  const queue: VmState[] = [from];
  while (queue.length > 0) {
    const state = queue.shift()!;
    if (state === to) return true;
    for (const next of SPONTANEOUS[state]) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return false;
}
