import assert from "node:assert/strict";
import { CONTROL_MAX_LINE, IdentityReply } from "../../schema/guest_control.ts";
import { answerLine, EOF_RETRY_MS, serveControl, type ServeControlOptions } from "./channel.ts";
import { applyIdentity } from "./identity.ts";
import { memoryPort } from "./memory_port.ts";
import { fakeDeps, identity } from "./testing.ts";

/**
 * Serves a memory port with the real applyIdentity on fake steps; `stop()` ends it. The host
 * end is connected first unless `connected` is false.
 */
function serve(options: ServeControlOptions & { readSize?: number; connected?: boolean } = {}) {
  const { port, host } = memoryPort(options.readSize);
  if (options.connected !== false) host.connect();
  const fake = fakeDeps();
  const logs: string[] = [];
  const abort = new AbortController();
  const done = serveControl(port, (msg) => applyIdentity(msg, fake.deps), {
    signal: abort.signal,
    log: (l) => void logs.push(l),
    ...options,
  });
  return {
    host,
    fake,
    logs,
    /** The next reply, checked against the schema the daemon uses. */
    reply: async () => IdentityReply.parse(JSON.parse(await host.nextLine())),
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

Deno.test("serveControl(): a good identity is applied and answered on one line", async () => {
  const s = serve();
  s.host.send(`${JSON.stringify(identity(1))}\n`);
  const reply = await s.reply();
  assert.equal(reply.kind, "identity_applied");
  assert.equal(reply.generation, 1);
  assert.deepEqual(reply.kind === "identity_applied" && reply.steps, [
    "entropy",
    "clock",
    "hostname",
    "network",
    "api",
  ]);
  assert.equal(s.fake.info.ip, "10.1.2.11");
  await s.stop();
  assert.equal(s.host.written().split("\n").length, 2, "one line, newline-terminated");
  assert.equal(s.host.overlapped, false, "never wrote while reading");
});

Deno.test("serveControl(): invalid JSON is answered identity_failed, generation 0, and serving goes on", async () => {
  const s = serve();
  s.host.send('{"kind":"identity","agent":{"secret":"SeCrEt"}, oops\n');
  const reply = await s.reply();
  assert.equal(reply.kind, "identity_failed");
  assert.equal(reply.generation, 0);
  const error = reply.kind === "identity_failed" ? reply.error : "";
  assert.match(error, /^invalid JSON: /);
  assert.ok(!error.includes("SeCrEt"), `the line is not quoted back: ${error}`);
  s.host.send(`${JSON.stringify(identity(4))}\n`);
  assert.equal((await s.reply()).kind, "identity_applied");
  await s.stop();
});

Deno.test("serveControl(): a schema error names each field, with the message's generation", async () => {
  const s = serve();
  const { hostname: _, ...noHostname } = identity(7);
  const bad = {
    ...noHostname,
    network: { ip: 10, prefix: 24 },
    entropy: "short",
    extra: true,
  };
  s.host.send(`${JSON.stringify(bad)}\n`);
  const reply = await s.reply();
  assert.equal(reply.kind, "identity_failed");
  assert.equal(reply.generation, 7);
  const error = reply.kind === "identity_failed" ? reply.error : "";
  assert.match(error, /^invalid identity message: /);
  for (
    const part of [
      "hostname: missing",
      "network.ip: expected string",
      "entropy: has the wrong format",
      "extra: unknown field",
    ]
  ) {
    assert.ok(error.includes(part), `${part} in ${error}`);
  }
  s.host.send(`${JSON.stringify({ kind: "ping", generation: "x" })}\n`);
  const other = await s.reply();
  assert.equal(other.generation, 0, "an unreadable generation is 0");
  assert.match(other.kind === "identity_failed" ? other.error : "", /kind: must be "identity"/);
  assert.deepEqual(s.fake.calls, [], "nothing was applied");
  await s.stop();
});

Deno.test("serveControl(): a line over the limit is dropped whole and unanswered", async () => {
  const s = serve({ readSize: 1000 });
  const huge = `{"kind":"identity","name":"${"x".repeat(CONTROL_MAX_LINE)}"}`;
  s.host.send(`${huge}\n${JSON.stringify(identity(2))}\n`);
  const reply = await s.reply();
  assert.equal(reply.kind, "identity_applied");
  assert.equal(reply.generation, 2);
  await s.stop();
  assert.equal(s.host.written().split("\n").length, 2, "only the good line was answered");
  assert.deepEqual(s.logs.filter((l) => l.includes("discarded")), [
    `control port: discarded 1 line(s) over ${CONTROL_MAX_LINE} bytes, unanswered`,
  ]);
});

Deno.test("serveControl(): a stale generation is refused; lines sent together get one reply each, in order", async () => {
  const s = serve();
  s.host.send(
    `${JSON.stringify(identity(3))}\n\n${JSON.stringify(identity(3))}\n${
      JSON.stringify(identity(2))
    }\n`,
  );
  const replies = [await s.reply(), await s.reply(), await s.reply()];
  assert.deepEqual(replies.map((r) => [r.kind, r.generation]), [
    ["identity_applied", 3],
    ["identity_failed", 3],
    ["identity_failed", 2],
  ]);
  for (const r of replies.slice(1)) {
    assert.match(r.kind === "identity_failed" ? r.error : "", /^stale generation/);
  }
  await s.stop();
  assert.equal(s.host.written().split("\n").length, 4, "the blank line is not answered");
  assert.equal(s.host.overlapped, false);
});

Deno.test("serveControl(): end of file (no host yet) waits and reads again, then serves", async () => {
  const sleeps: number[] = [];
  let connect: () => void = () => {};
  const s = serve({
    connected: false,
    sleep: (ms) => {
      sleeps.push(ms);
      if (sleeps.length === 3) connect();
      return Promise.resolve();
    },
  });
  connect = () => {
    s.host.send(`${JSON.stringify(identity(1))}\n`);
  };
  assert.equal((await s.reply()).kind, "identity_applied");
  assert.deepEqual(sleeps, [EOF_RETRY_MS, EOF_RETRY_MS, EOF_RETRY_MS]);
  assert.equal(s.host.eofs, 3);
  await s.stop();
});

Deno.test("serveControl(): stops at once on abort, while a read waits or while it sleeps", async () => {
  const reading = serve(); // connected and idle: the read waits
  await new Promise((r) => setTimeout(r, 10));
  await reading.stop();

  // Not connected: end of file, then a long sleep.
  const sleeping = serve({ eofRetryMs: 60_000, connected: false });
  await new Promise((r) => setTimeout(r, 10));
  const started = performance.now();
  await sleeping.stop();
  assert.ok(performance.now() - started < 1000, "the sleep was cut short");
  assert.equal(sleeping.host.eofs, 1);
});

Deno.test("serveControl(): a read error is logged and ends the loop", async () => {
  const logs: string[] = [];
  await serveControl(
    {
      read: () => Promise.reject(new Error("EIO")),
      write: () => assert.fail("nothing to write"),
    },
    () => assert.fail("no message"),
    { log: (l) => void logs.push(l) },
  );
  assert.deepEqual(logs, [
    "control port: read failed: EIO; no further identity can be applied",
  ]);
});

Deno.test("answerLine(): a throwing handler is answered identity_failed with the message's generation", async () => {
  const line = new TextEncoder().encode(JSON.stringify(identity(9)));
  const reply = await answerLine(line, () => Promise.reject(new Error("boom")));
  assert.deepEqual(reply, { kind: "identity_failed", generation: 9, error: "boom" });
  assert.equal(await answerLine(new TextEncoder().encode("  \r"), () => assert.fail()), undefined);
  const long = await answerLine(line, () => Promise.reject(new Error("e".repeat(5000))));
  assert.equal(IdentityReply.parse(long).kind, "identity_failed", "the error is capped");
});
