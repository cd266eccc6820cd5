import { deepEqual, ok } from "node:assert/strict";
import { type ObservedReplica, plan, type PlanAction, type PlanInput } from "./_deploy_plan.ts";

function replica(index: number, over: Partial<ObservedReplica> = {}): ObservedReplica {
  return {
    name: `web-${index}`,
    index,
    generation: 1,
    state: "running",
    healthy: true,
    unhealthyForMs: null,
    ip: `192.168.127.${index + 1}`,
    ...over,
  };
}

function input(over: Partial<PlanInput>): PlanInput {
  return {
    name: "web",
    replicas: 3,
    generation: 1,
    maxUnavailable: 1,
    deleting: false,
    members: [],
    unhealthyAfterMs: 1_000,
    parallel: 100,
    ...over,
  };
}

const show = (actions: PlanAction[]) =>
  actions.map((a) => "replica" in a ? `${a.kind} ${a.replica}` : a.kind);

/** Applies a plan the way the reconciler would if every action succeeded at once. */
function apply(members: ObservedReplica[], actions: PlanAction[], generation: number) {
  let out = [...members];
  for (const a of actions) {
    if (a.kind === "delete") out = out.filter((m) => m.name !== a.replica);
    if (a.kind === "create" || a.kind === "replace") {
      out = out.filter((m) => m.name !== a.replica);
      out.push(replica(a.index, { generation, state: "starting", healthy: false }));
    }
  }
  return out;
}

Deno.test("plan: an empty deployment creates replicas at the lowest indices", () => {
  deepEqual(show(plan(input({}))), ["create web-1", "create web-2", "create web-3"]);
  const gap = plan(input({ members: [replica(1), replica(3)] }));
  deepEqual(show(gap), ["create web-2"]);
});

Deno.test("plan: at most `parallel` actions, and none while creates back off", () => {
  deepEqual(plan(input({ replicas: 50, parallel: 4 })).length, 4);
  deepEqual(plan(input({ createsBlocked: true })), []);
});

Deno.test("plan: 50 replicas converge in passes and then nothing is left to do", () => {
  let members: ObservedReplica[] = [];
  for (let pass = 0; pass < 20; pass++) {
    const actions = plan(input({ replicas: 50, parallel: 8, members }));
    if (actions.length === 0) break;
    members = apply(members, actions, 1).map((m) => ({ ...m, state: "running", healthy: true }));
  }
  deepEqual(members.length, 50);
  deepEqual(new Set(members.map((m) => m.index)).size, 50);
  deepEqual(Math.max(...members.map((m) => m.index)), 50);
  deepEqual(plan(input({ replicas: 50, members })), []);
});

Deno.test("plan: scale down removes unhealthy replicas first, then the highest index", () => {
  const members = [replica(1), replica(2, { healthy: false, state: "crashed" }), replica(3)];
  deepEqual(show(plan(input({ replicas: 2, members }))), ["delete web-2"]);
  deepEqual(show(plan(input({ replicas: 1, members }))), ["delete web-2", "delete web-3"]);
  deepEqual(show(plan(input({ replicas: 0, members: [replica(1)] }))), ["delete web-1"]);
});

Deno.test("plan: crashed replicas are left to their restart policy; stopped ones started", () => {
  const members = [replica(1, { state: "crashed", healthy: false }), replica(2), replica(3)];
  deepEqual(plan(input({ members })), []);
  const stopped = [replica(1, { state: "stopped", healthy: false }), replica(2), replica(3)];
  deepEqual(show(plan(input({ members: stopped }))), ["start web-1"]);
});

Deno.test("plan: a replica unhealthy past the threshold is restarted in place", () => {
  const members = [
    replica(1, { healthy: false, unhealthyForMs: 999 }),
    replica(2, { healthy: false, unhealthyForMs: 1_000 }),
    replica(3),
  ];
  deepEqual(show(plan(input({ members }))), ["restart web-2"]);
});

Deno.test("plan: a rolling update replaces in place, never below replicas - max_unavailable", () => {
  let members = [replica(1), replica(2), replica(3)];
  const order: string[] = [];
  for (let pass = 0; pass < 20; pass++) {
    const actions = plan(input({ generation: 2, members }));
    const healthy = members.filter((m) => m.healthy).length;
    const down = actions.filter((a) =>
      a.kind === "replace"
    ).map((a) => "replica" in a ? members.find((m) => m.name === a.replica)! : undefined).filter((
      m,
    ) =>
      m?.healthy
    ).length;
    // Every observation keeps at least replicas - max_unavailable healthy.
    ok(healthy - down >= 2, `pass ${pass}`);
    order.push(...show(actions));
    if (actions.length === 0 && members.every((m) => m.generation === 2 && m.healthy)) break;
    members = apply(members, actions, 2);
    // The new ones come up before the next pass.
    members = members.map((m) =>
      m.generation === 2 ? { ...m, state: "running", healthy: true } : m
    );
  }
  deepEqual(order, ["replace web-1", "replace web-2", "replace web-3"]);
  deepEqual(members.map((m) => m.generation), [2, 2, 2]);
});

Deno.test("plan: a replacement still starting holds back the next one", () => {
  const members = [
    replica(1, { generation: 2, state: "starting", healthy: false }),
    replica(2),
    replica(3),
  ];
  deepEqual(plan(input({ generation: 2, members })), []);
  // max_unavailable 2 lets one more go.
  deepEqual(show(plan(input({ generation: 2, maxUnavailable: 2, members }))), [
    "replace web-2",
  ]);
});

Deno.test("plan: max_unavailable 0 surges one new replica, then removes an old one", () => {
  const members = [replica(1), replica(2)];
  const p1 = plan(input({ replicas: 2, generation: 2, maxUnavailable: 0, members }));
  deepEqual(show(p1), ["create web-3"]);
  const surging = [...members, replica(3, { generation: 2, state: "starting", healthy: false })];
  deepEqual(plan(input({ replicas: 2, generation: 2, maxUnavailable: 0, members: surging })), []);
  const up = [...members, replica(3, { generation: 2 })];
  deepEqual(show(plan(input({ replicas: 2, generation: 2, maxUnavailable: 0, members: up }))), [
    "delete web-2",
  ]);
});

Deno.test("plan: old replicas that are unhealthy are replaced without waiting", () => {
  const members = [
    replica(1, { state: "crashed", healthy: false }),
    replica(2, { state: "crashed", healthy: false }),
    replica(3),
  ];
  deepEqual(show(plan(input({ generation: 2, members }))), [
    "replace web-1",
    "replace web-2",
  ]);
});

Deno.test("plan: deleting removes every replica, then the deployment", () => {
  deepEqual(show(plan(input({ deleting: true, members: [replica(1), replica(2)] }))), [
    "delete web-1",
    "delete web-2",
  ]);
  deepEqual(show(plan(input({ deleting: true, members: [] }))), ["finish_delete"]);
});
