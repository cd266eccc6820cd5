import { equal, throws } from "node:assert/strict";
import { VmState, type VolantError } from "../schema/mod.ts";
import {
  ACTIONS,
  assertAction,
  assertTransition,
  canAct,
  canTransition,
  reachableWithoutRequest,
} from "./vm_state.ts";

const ALLOWED = new Set([
  "pending>starting",
  "pending>crashed",
  "starting>running",
  "starting>stopping",
  "starting>crashed",
  "running>stopping",
  "running>crashed",
  "stopping>stopped",
  "stopping>crashed",
  "stopped>starting",
  "crashed>starting",
]);

Deno.test("every transition is allowed or refused as the table says", () => {
  let allowed = 0;
  for (const from of VmState.options) {
    for (const to of VmState.options) {
      const expected = ALLOWED.has(`${from}>${to}`);
      equal(canTransition(from, to), expected, `${from} → ${to}`);
      if (expected) {
        assertTransition("web", from, to);
        allowed++;
      } else {
        throws(
          () => assertTransition("web", from, to),
          (err: VolantError) =>
            err.code === "invalid_state" &&
            err.message === `VM web is ${from}; cannot move to ${to}`,
        );
      }
    }
  }
  equal(allowed, ALLOWED.size);
});

Deno.test("actions are accepted only in their states", () => {
  const expected: Record<string, string[]> = {
    start: ["stopped", "crashed"],
    stop: ["starting", "running"],
    restart: ["starting", "running", "stopped", "crashed"],
    delete: [...VmState.options],
  };
  for (const action of Object.keys(ACTIONS) as Array<keyof typeof ACTIONS>) {
    for (const state of VmState.options) {
      const ok = expected[action]!.includes(state);
      equal(canAct(action, state), ok, `${action} in ${state}`);
      if (!ok) {
        throws(
          () => assertAction("web", action, state),
          (err: VolantError) =>
            err.code === "invalid_state" &&
            err.message.startsWith(`VM web is ${state}; cannot ${action} it`),
        );
      }
    }
  }
});

Deno.test("wait reachability follows only spontaneous transitions", () => {
  equal(reachableWithoutRequest("pending", "running"), true);
  equal(reachableWithoutRequest("starting", "running"), true);
  equal(reachableWithoutRequest("running", "running"), true);
  equal(reachableWithoutRequest("running", "crashed"), true);
  equal(reachableWithoutRequest("stopping", "stopped"), true);
  equal(reachableWithoutRequest("crashed", "running"), false);
  equal(reachableWithoutRequest("stopped", "running"), false);
  equal(reachableWithoutRequest("running", "stopped"), false);
  equal(reachableWithoutRequest("stopping", "running"), false);
});
