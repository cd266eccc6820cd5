/**
 * The deployment planner: from one deployment's desired state and its replicas as they are,
 * the next actions — a pure function, so every rule is tested at any scale without VMs.
 *
 * | situation                                   | action                                     |
 * |---------------------------------------------|--------------------------------------------|
 * | deleting                                    | delete every replica, then the deployment  |
 * | a replica stopped (by a user)               | start it                                   |
 * | running, workload unhealthy too long        | restart it in place (same address)         |
 * | fewer replicas than desired                 | create at the lowest free indices          |
 * | more than desired, no update under way      | delete: unhealthy first, highest index     |
 * | old generation, max_unavailable ≥ 1         | replace in place while enough stay healthy |
 * | old generation, max_unavailable 0           | create one more, then delete an old one    |
 *
 * Crashed replicas are left to their restart policy (always); a crash-looping one is replaced
 * by a rolling update like any other old one.
 *
 * @module
 */
import type { VmState } from "../../schema/mod.ts";

/** One replica as the reconciler sees it. */
export interface ObservedReplica {
  name: string;
  /** `n` of `<deployment>-<n>`. */
  index: number;
  /** Template generation it was made from. */
  generation: number;
  state: VmState;
  /** Running with its workload healthy (or without a health check). */
  healthy: boolean;
  /** How long it has been running but unhealthy (ms), or null. */
  unhealthyForMs: number | null;
  /** Its address (kept by an in-place replace). */
  ip: string | null;
}

/** What the planner decides from. */
export interface PlanInput {
  name: string;
  replicas: number;
  generation: number;
  maxUnavailable: number;
  deleting: boolean;
  members: readonly ObservedReplica[];
  /** Unhealthy this long → restart in place. */
  unhealthyAfterMs: number;
  /** At most this many actions per pass. */
  parallel: number;
  /** Creates are backing off after a failure: plan none. */
  createsBlocked?: boolean;
}

/** One step of the plan. */
export type PlanAction =
  | { kind: "create"; replica: string; index: number }
  | { kind: "delete"; replica: string }
  | { kind: "replace"; replica: string; index: number; ip: string | null }
  | { kind: "restart"; replica: string }
  | { kind: "start"; replica: string }
  | { kind: "finish_delete" };

/** Lowest indices ≥ 1 that no member has, `count` of them. */
function freeIndices(members: readonly ObservedReplica[], count: number): number[] {
  const used = new Set(members.map((m) => m.index));
  const out: number[] = [];
  for (let i = 1; out.length < count; i++) if (!used.has(i)) out.push(i);
  return out;
}

/** Removal order: not healthy first, then old generation, then highest index. */
function removalOrder(a: ObservedReplica, b: ObservedReplica): number {
  if (a.healthy !== b.healthy) return a.healthy ? 1 : -1;
  if (a.generation !== b.generation) return a.generation - b.generation;
  return b.index - a.index;
}

/**
 * The next actions for one deployment (at most `parallel`, none touching a replica twice).
 *
 * @example
 * ```ts
 * import { plan } from "./_deploy_plan.ts";
 * const actions = plan({
 *   name: "web", replicas: 2, generation: 1, maxUnavailable: 1, deleting: false,
 *   members: [], unhealthyAfterMs: 60_000, parallel: 4,
 * });
 * console.assert(actions.map((a) => "replica" in a ? a.replica : "").join() === "web-1,web-2");
 * ```
 */
export function plan(input: PlanInput): PlanAction[] {
  const out: PlanAction[] = [];
  const touched = new Set<string>();
  const room = () => out.length < input.parallel;
  const push = (action: PlanAction) => {
    if (!room()) return false;
    if ("replica" in action) {
      if (touched.has(action.replica)) return false;
      touched.add(action.replica);
    }
    out.push(action);
    return true;
  };
  const members = [...input.members].sort((a, b) => a.index - b.index);

  if (input.deleting) {
    for (const m of members) push({ kind: "delete", replica: m.name });
    if (members.length === 0) out.push({ kind: "finish_delete" });
    return out;
  }

  const desired = input.replicas;
  const outdated = (m: ObservedReplica) => m.generation < input.generation;
  const old = members.filter(outdated);
  const fresh = members.filter((m) => !outdated(m));

  // Scale down first (an update in progress keeps at most one surge replica).
  const surge = input.maxUnavailable === 0 && old.length > 0 ? 1 : 0;
  if (members.length > desired + surge) {
    const extra = members.length - desired - surge;
    for (const m of [...members].sort(removalOrder).slice(0, extra)) {
      push({ kind: "delete", replica: m.name });
    }
  }
  const kept = members.filter((m) => !touched.has(m.name));

  // Repairs on replicas that stay.
  for (const m of kept) {
    if (m.state === "stopped") push({ kind: "start", replica: m.name });
    else if (
      m.state === "running" && m.unhealthyForMs !== null &&
      m.unhealthyForMs >= input.unhealthyAfterMs && !outdated(m)
    ) push({ kind: "restart", replica: m.name });
  }

  // Scale up.
  if (kept.length < desired && !input.createsBlocked) {
    for (const index of freeIndices(members, desired - kept.length)) {
      push({ kind: "create", replica: `${input.name}-${index}`, index });
    }
  }

  // Rolling update.
  const oldKept = old.filter((m) => !touched.has(m.name));
  if (oldKept.length === 0 || kept.length < desired) return out;
  let available = kept.filter((m) => m.healthy && !touched.has(m.name)).length;
  const minAvailable = Math.max(0, desired - input.maxUnavailable);
  if (input.maxUnavailable === 0) {
    const freshKept = fresh.filter((m) => !touched.has(m.name));
    if (kept.length === desired) {
      // Surge: one new replica first, unless one is still coming up.
      if (freshKept.every((m) => m.healthy) && !input.createsBlocked) {
        const [index] = freeIndices(members, 1);
        push({ kind: "create", replica: `${input.name}-${index}`, index: index! });
      }
      return out;
    }
    // kept = desired + 1: an old one goes once that leaves `desired` healthy.
    const victim = [...oldKept].sort(removalOrder)[0]!;
    if (!victim.healthy || available - 1 >= desired) {
      push({ kind: "delete", replica: victim.name });
    }
    return out;
  }
  const candidates = [...oldKept].sort((a, b) =>
    a.healthy === b.healthy ? a.index - b.index : a.healthy ? 1 : -1
  );
  for (const m of candidates) {
    if (m.healthy) {
      if (available - 1 < minAvailable) break;
      if (!push({ kind: "replace", replica: m.name, index: m.index, ip: m.ip })) break;
      available--;
    } else if (!push({ kind: "replace", replica: m.name, index: m.index, ip: m.ip })) break;
  }
  return out;
}
