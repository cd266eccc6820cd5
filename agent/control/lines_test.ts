import assert from "node:assert/strict";
import { LineSplitter } from "./lines.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (lines: Uint8Array[]) => lines.map((l) => new TextDecoder().decode(l));

Deno.test("LineSplitter: lines across chunks, several in one, empty ones kept", () => {
  const split = new LineSplitter(10);
  assert.deepEqual(dec(split.push(enc("ab")).lines), []);
  assert.deepEqual(dec(split.push(enc("c\nde\n\nf")).lines), ["abc", "de", ""]);
  assert.deepEqual(dec(split.push(enc("g\n")).lines), ["fg"]);
});

Deno.test("LineSplitter: exactly the limit passes; one byte more drops the whole line", () => {
  const split = new LineSplitter(4);
  assert.deepEqual(dec(split.push(enc("abcd\n")).lines), ["abcd"]);
  const over = split.push(enc("abcde\nok\n"));
  assert.deepEqual([dec(over.lines), over.dropped], [["ok"], 1]);
});

Deno.test("LineSplitter: an overlong line spread over chunks is dropped up to its newline", () => {
  const split = new LineSplitter(4);
  const a = split.push(enc("abc"));
  const b = split.push(enc("defgh")); // over the limit: discarding from here
  const c = split.push(enc("ijklmnop"));
  const d = split.push(enc("q\nrs\n"));
  assert.deepEqual([a.lines, b.lines, c.lines, a.dropped + b.dropped + c.dropped], [[], [], [], 0]);
  assert.deepEqual([dec(d.lines), d.dropped], [["rs"], 1]);
});

Deno.test("LineSplitter: lines are copies, safe when the input buffer is reused", () => {
  const split = new LineSplitter(10);
  const buffer = enc("one\ntw");
  const first = split.push(buffer).lines;
  buffer.set(enc("XXXXXX"));
  const second = split.push(enc("o\n")).lines;
  assert.deepEqual([...dec(first), ...dec(second)], ["one", "two"]);
});
