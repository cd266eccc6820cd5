import assert from "node:assert/strict";
import { LogLine } from "../../schema/agent.ts";
import { LogBuffer } from "./log_buffer.ts";

Deno.test("LogBuffer numbers lines and stamps them with the clock", () => {
  let now = Date.UTC(2026, 0, 2, 3, 4, 5);
  const logs = new LogBuffer({ now: () => now++ });
  logs.push("stdout", "one");
  logs.push("stderr", "two");
  const lines = logs.read().map((l) => LogLine.parse(l));
  assert.deepEqual(lines, [
    { seq: 1, time: "2026-01-02T03:04:05.000Z", stream: "stdout", line: "one" },
    { seq: 2, time: "2026-01-02T03:04:05.001Z", stream: "stderr", line: "two" },
  ]);
  assert.equal(logs.lastSeq, 2);
});

Deno.test("LogBuffer drops the oldest lines beyond maxLines", () => {
  const logs = new LogBuffer({ maxLines: 3 });
  for (let i = 1; i <= 2000; i++) logs.push("stdout", `l${i}`);
  assert.deepEqual(logs.read().map((l) => l.line), ["l1998", "l1999", "l2000"]);
  assert.deepEqual([logs.size, logs.lastSeq], [3, 2000]);
});

Deno.test("LogBuffer drops the oldest lines beyond maxBytes, counting UTF-8 bytes", () => {
  const logs = new LogBuffer({ maxBytes: 10 });
  logs.push("stdout", "aaaa");
  logs.push("stdout", "éé"); // 4 bytes
  logs.push("stdout", "bbb");
  assert.deepEqual(logs.read().map((l) => l.line), ["éé", "bbb"]);
  assert.equal(logs.bytes, 7);
  logs.push("stdout", "x".repeat(50)); // alone over the bound: kept as the only line
  assert.deepEqual([logs.size, logs.bytes], [1, 50]);
});

Deno.test("LogBuffer.read(): since and tail", () => {
  const logs = new LogBuffer();
  for (let i = 1; i <= 10; i++) logs.push("stdout", `l${i}`);
  assert.deepEqual(logs.read({ since: 7 }).map((l) => l.seq), [8, 9, 10]);
  assert.deepEqual(logs.read({ tail: 2 }).map((l) => l.seq), [9, 10]);
  assert.deepEqual(logs.read({ since: 3, tail: 2 }).map((l) => l.seq), [9, 10]);
  assert.deepEqual(logs.read({ tail: 0 }), []);
  assert.deepEqual(logs.read({ since: 10 }), []);
});

Deno.test("LogBuffer.subscribe() follows new lines until unsubscribed; a throwing listener is isolated", () => {
  const logs = new LogBuffer();
  const seen: number[] = [];
  logs.subscribe(() => {
    throw new Error("broken listener");
  });
  const stop = logs.subscribe((l) => seen.push(l.seq));
  assert.equal(logs.subscribers, 2);
  logs.push("stdout", "a");
  logs.push("stdout", "b");
  stop();
  logs.push("stdout", "c");
  assert.deepEqual(seen, [1, 2]);
  assert.equal(logs.subscribers, 1);
});
