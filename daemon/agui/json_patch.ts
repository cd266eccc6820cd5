/**
 * The difference of two JSON documents as an RFC 6902 JSON Patch (`add`, `remove`, `replace`
 * only), for AG-UI's `STATE_DELTA`. Objects are compared key by key; arrays element by element
 * along their longest common subsequence, elements matched by identity (an object's `name` or
 * `id`, else the whole value), so a VM created or deleted in the middle of the list is one `add`
 * or `remove`, and a VM whose state changed is a `replace` of the fields that changed.
 *
 * @module
 */

/** A JSON value (what `JSON.parse` returns). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One operation of a JSON Patch: the three {@linkcode jsonDiff} writes. */
export type JsonPatchOp =
  | { op: "add"; path: string; value: Json }
  | { op: "replace"; path: string; value: Json }
  | { op: "remove"; path: string };

/** Above this many cells (old length × new length) arrays are compared index by index. */
const MAX_LCS_CELLS = 1_000_000;

function isObject(value: Json): value is { [key: string]: Json } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether two JSON values are equal (objects regardless of key order). */
export function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]!));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length &&
    keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k]!, b[k]!));
}

/** A JSON Pointer segment (RFC 6901: `~` is `~0`, `/` is `~1`). */
function segment(key: string | number): string {
  return `/${String(key).replaceAll("~", "~0").replaceAll("/", "~1")}`;
}

/** What an array element is matched by: its `name` or `id`, else its whole value. */
function identity(value: Json): string {
  if (isObject(value)) {
    if (typeof value.name === "string") return `name:${value.name}`;
    if (typeof value.id === "string" || typeof value.id === "number") return `id:${value.id}`;
  }
  return `value:${JSON.stringify(value)}`;
}

/** Index pairs of a longest common subsequence of `a` and `b`, in order. */
function commonSubsequence(a: string[], b: string[]): Array<[number, number]> {
  const n = a.length;
  const m = b.length;
  // lengths[i][j]: LCS length of a[i..] and b[j..], in one flat array.
  const lengths = new Uint32Array((n + 1) * (m + 1));
  const at = (i: number, j: number) => i * (m + 1) + j;
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lengths[at(i, j)] = a[i] === b[j]
        ? lengths[at(i + 1, j + 1)]! + 1
        : Math.max(lengths[at(i + 1, j)]!, lengths[at(i, j + 1)]!);
    }
  }
  const pairs: Array<[number, number]> = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) pairs.push([i++, j++]);
    else if (lengths[at(i + 1, j)]! >= lengths[at(i, j + 1)]!) i++;
    else j++;
  }
  return pairs;
}

function diffArrays(from: Json[], to: Json[], path: string, ops: JsonPatchOp[]): void {
  const pairs = from.length * to.length > MAX_LCS_CELLS
    ? Array.from({ length: Math.min(from.length, to.length) }, (_, i): [number, number] => [i, i])
    : commonSubsequence(from.map(identity), to.map(identity));
  pairs.push([from.length, to.length]);
  // `k` is the index in the array as patched so far.
  let i = 0;
  let j = 0;
  let k = 0;
  for (const [pi, pj] of pairs) {
    // The gap before the next matched pair: what both sides have is replaced, the rest of the
    // old elements removed (each at `k`, as the array shrinks), the rest of the new ones added.
    for (; i < pi && j < pj; i++, j++, k++) {
      ops.push({ op: "replace", path: path + segment(k), value: to[j]! });
    }
    for (; i < pi; i++) ops.push({ op: "remove", path: path + segment(k) });
    for (; j < pj; j++, k++) ops.push({ op: "add", path: path + segment(k), value: to[j]! });
    if (pi < from.length) diffInto(from[i++]!, to[j++]!, path + segment(k++), ops);
  }
}

function diffInto(from: Json, to: Json, path: string, ops: JsonPatchOp[]): void {
  if (jsonEqual(from, to)) return;
  if (Array.isArray(from) && Array.isArray(to)) return diffArrays(from, to, path, ops);
  if (!isObject(from) || !isObject(to)) {
    ops.push({ op: "replace", path, value: to });
    return;
  }
  for (const key of Object.keys(from)) {
    if (!Object.hasOwn(to, key)) ops.push({ op: "remove", path: path + segment(key) });
  }
  for (const [key, value] of Object.entries(to)) {
    if (Object.hasOwn(from, key)) diffInto(from[key]!, value, path + segment(key), ops);
    else ops.push({ op: "add", path: path + segment(key), value });
  }
}

/**
 * The JSON Patch that turns `from` into `to` (empty when they are equal). Applied in order to
 * `from`, each operation is valid (its parent exists; a removed or replaced member exists).
 *
 * @example
 * ```ts
 * import { jsonDiff } from "./json_patch.ts";
 * const ops = jsonDiff(
 *   { vms: [{ name: "a", state: "starting" }] },
 *   { vms: [{ name: "a", state: "running" }, { name: "b", state: "starting" }] },
 * );
 * console.assert(JSON.stringify(ops) === JSON.stringify([
 *   { op: "replace", path: "/vms/0/state", value: "running" },
 *   { op: "add", path: "/vms/1", value: { name: "b", state: "starting" } },
 * ]));
 * ```
 */
export function jsonDiff(from: Json, to: Json): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  diffInto(from, to, "", ops);
  return ops;
}
