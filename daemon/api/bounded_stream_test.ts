import { equal, ok } from "node:assert/strict";
import { boundedStream } from "./bounded_stream.ts";

Deno.test("boundedStream() is full past its bound, and has room again once the client reads", async () => {
  const stream = boundedStream({ queueBytes: 4 });
  await stream.room();
  stream.enqueue("abcdef");
  ok(stream.full);
  let roomy = false;
  const room = stream.room().then(() => roomy = true);
  await new Promise((r) => setTimeout(r, 10));
  equal(roomy, false, "no room while nobody reads");
  const reader = stream.body.getReader();
  equal(new TextDecoder().decode((await reader.read()).value), "abcdef");
  await room;
  ok(!stream.full);
  stream.end("!");
  equal(new TextDecoder().decode((await reader.read()).value), "!");
  ok((await reader.read()).done);
});

Deno.test("boundedStream() ends once, when a signal aborts or the client cancels", async () => {
  const abort = new AbortController();
  let ends = 0;
  const stream = boundedStream({ queueBytes: 64, signals: [abort.signal], onEnd: () => ends++ });
  stream.enqueue("x");
  abort.abort();
  await stream.done;
  ok(stream.ended);
  stream.enqueue("ignored");
  stream.end("ignored too");
  equal(await new Response(stream.body).text(), "x");
  equal(ends, 1);

  const cancelled = boundedStream({ queueBytes: 64, onEnd: () => ends++ });
  await cancelled.body.cancel();
  await cancelled.done;
  await cancelled.room();
  equal(ends, 2);
  ok(boundedStream({ queueBytes: 64, signals: [AbortSignal.abort()] }).ended);
});
