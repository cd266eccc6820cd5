import { deepEqual, equal, ok } from "node:assert/strict";
import { compactEvents, EventType, type StateSnapshotEvent } from "@ag-ui/client";
import { type Json, jsonDiff, jsonEqual } from "./json_patch.ts";

/**
 * `doc` patched by `jsonDiff(doc, to)`, as AG-UI's own client applies a STATE_DELTA (its event
 * compaction runs fast-json-patch, validating each operation against the document).
 */
function patched(doc: Json, to: Json): Json {
  const [snapshot] = compactEvents([
    { type: EventType.STATE_SNAPSHOT, snapshot: doc },
    { type: EventType.STATE_DELTA, delta: jsonDiff(doc, to) },
  ]);
  return (snapshot as StateSnapshotEvent).snapshot as Json;
}

Deno.test("jsonDiff() of equal documents is empty, whatever the key order", () => {
  deepEqual(jsonDiff({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 }), []);
  ok(jsonEqual({ a: [1, 2] }, { a: [1, 2] }));
  ok(!jsonEqual({ a: [1, 2] }, { a: [2, 1] }));
  ok(!jsonEqual({ a: null }, {}));
  ok(!jsonEqual([], {}));
});

Deno.test("jsonDiff() adds, removes and replaces object members, nested", () => {
  const from = { vms: [], meta: { a: 1, b: { c: "x", d: true } } };
  const to = { vms: [], meta: { a: 2, b: { c: "x", e: null } } };
  deepEqual(jsonDiff(from, to), [
    { op: "replace", path: "/meta/a", value: 2 },
    { op: "remove", path: "/meta/b/d" },
    { op: "add", path: "/meta/b/e", value: null },
  ]);
  deepEqual(patched(from, to), to);
});

Deno.test("jsonDiff() replaces a value whose type changes, and escapes pointer segments", () => {
  deepEqual(jsonDiff({ "a/b": { "~c": 1 } }, { "a/b": { "~c": [1] } }), [
    { op: "replace", path: "/a~1b/~0c", value: [1] },
  ]);
  deepEqual(jsonDiff({ a: null }, { a: {} }), [{ op: "replace", path: "/a", value: {} }]);
  deepEqual(jsonDiff({ a: {} }, { a: [] }), [{ op: "replace", path: "/a", value: [] }]);
  deepEqual(patched({ "a/b": { "~c": 1 } }, { "a/b": { "~c": [1] } }), { "a/b": { "~c": [1] } });
});

Deno.test("jsonDiff() adds and removes array elements where they are, by name", () => {
  const vm = (name: string, state = "running") => ({ name, state, ip: null });
  const from = { vms: [vm("a"), vm("b"), vm("c")] };
  // b deleted, d created between a and c, c changed state.
  const to = { vms: [vm("a"), vm("d", "starting"), vm("c", "stopped")] };
  deepEqual(jsonDiff(from, to), [
    { op: "replace", path: "/vms/1", value: vm("d", "starting") },
    { op: "replace", path: "/vms/2/state", value: "stopped" },
  ]);
  deepEqual(patched(from, to), to);
  deepEqual(jsonDiff(from, { vms: [vm("a"), vm("c")] }), [{ op: "remove", path: "/vms/1" }]);
  deepEqual(jsonDiff(from, { vms: [vm("x"), ...from.vms] }), [
    { op: "add", path: "/vms/0", value: vm("x") },
  ]);
  deepEqual(jsonDiff({ vms: [] }, { vms: [vm("a"), vm("b")] }), [
    { op: "add", path: "/vms/0", value: vm("a") },
    { op: "add", path: "/vms/1", value: vm("b") },
  ]);
  deepEqual(jsonDiff(from, { vms: [] }), [
    { op: "remove", path: "/vms/0" },
    { op: "remove", path: "/vms/0" },
    { op: "remove", path: "/vms/0" },
  ]);
  // Scalars are matched by value.
  deepEqual(jsonDiff([1, 2, 3, 4], [1, 3, 4, 5]), [
    { op: "remove", path: "/1" },
    { op: "add", path: "/3", value: 5 },
  ]);
  deepEqual(patched([1, 2, 3, 4], [1, 3, 4, 5]), [1, 3, 4, 5]);
});

/** A small deterministic PRNG (mulberry32), so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random JSON value: objects, arrays (of named records, sometimes), scalars. */
function randomJson(random: () => number, depth: number): Json {
  const pick = Math.floor(random() * (depth > 0 ? 7 : 4));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return random() < 0.5;
    case 2:
      return Math.floor(random() * 5);
    case 3:
      return ["x", "y", "a/b", "~"][Math.floor(random() * 4)]!;
    case 4: {
      const out: Record<string, Json> = {};
      for (let i = Math.floor(random() * 4); i > 0; i--) {
        out[["a", "b", "c", "d/e"][Math.floor(random() * 4)]!] = randomJson(random, depth - 1);
      }
      return out;
    }
    case 5:
      return Array.from(
        { length: Math.floor(random() * 5) },
        () => randomJson(random, depth - 1),
      );
    default:
      return Array.from({ length: Math.floor(random() * 6) }, () => ({
        name: ["web", "db", "cache", "job"][Math.floor(random() * 4)]!,
        state: randomJson(random, 0),
        extra: randomJson(random, depth - 1),
      }));
  }
}

Deno.test("jsonDiff(): AG-UI's client applies every diff to exactly the new document", () => {
  const random = prng(16);
  for (let n = 0; n < 2_000; n++) {
    const from = { vms: randomJson(random, 3), deployments: randomJson(random, 3) };
    const to = { vms: randomJson(random, 3), deployments: randomJson(random, 3) };
    deepEqual(patched(from, to), to, `case ${n}: ${JSON.stringify({ from, to })}`);
    equal(jsonDiff(to, to).length, 0);
  }
});
