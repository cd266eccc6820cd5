import assert from "node:assert/strict";
import { LogLine } from "../../schema/agent.ts";
import { ErrorBody } from "../../schema/error.ts";
import {
  BUSYBOX,
  cannotRun,
  makeRoot,
  plugin,
  waitForStatus,
  waitUntil,
} from "../workload/testing.ts";
import { LogBuffer } from "../workload/log_buffer.ts";
import { Supervisor } from "../workload/supervisor.ts";
import { FOLLOW_MAX_BEHIND, logsRoute, parseLogsQuery } from "./logs.ts";
import { createRouter } from "./router.ts";
import { startApi } from "./server.ts";

const skip = cannotRun();
/** Why these tests are skipped here, for their names (empty when they run). */
const SKIPPED = skip === false ? "" : ` (skipped: ${skip})`;

/** Serves `GET /v1/logs` over `logs` on loopback for the duration of `body`. */
async function serving(logs: LogBuffer, body: (base: string) => Promise<void>): Promise<void> {
  const api = startApi(createRouter([logsRoute(logs)]), { hostname: "127.0.0.1", port: 0 });
  try {
    await body(`http://127.0.0.1:${api.port}`);
  } finally {
    await api.stop();
  }
}

/** Reads NDJSON lines from a streaming body as they come. */
function lineReader(body: ReadableStream<Uint8Array>) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return {
    async next(): Promise<LogLine> {
      for (;;) {
        const nl = buffered.indexOf("\n");
        if (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          return LogLine.parse(JSON.parse(line));
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("the stream ended");
        buffered += value;
      }
    },
    cancel: () => reader.cancel(),
  };
}

Deno.test("parseLogsQuery() reads tail, since and follow, and names a bad parameter", () => {
  assert.deepEqual(parseLogsQuery(new URLSearchParams("")), {
    tail: undefined,
    since: undefined,
    follow: false,
  });
  assert.deepEqual(parseLogsQuery(new URLSearchParams("tail=3&since=9&follow=true")), {
    tail: 3,
    since: 9,
    follow: true,
  });
  assert.throws(
    () => parseLogsQuery(new URLSearchParams("tail=-1")),
    /tail="-1" must be a non-negative integer/,
  );
  assert.throws(() => parseLogsQuery(new URLSearchParams("since=x")), /since="x"/);
  assert.throws(
    () => parseLogsQuery(new URLSearchParams("follow=yes")),
    /follow="yes" must be 1 or 0/,
  );
});

Deno.test("GET /v1/logs: NDJSON of the held lines, with tail and since; 400 on a bad query", async () => {
  const logs = new LogBuffer();
  for (let i = 1; i <= 5; i++) logs.push(i % 2 ? "stdout" : "stderr", `line ${i}`);
  await serving(logs, async (base) => {
    const all = await fetch(`${base}/v1/logs`);
    assert.equal(all.headers.get("content-type"), "application/x-ndjson");
    const lines = (await all.text()).trim().split("\n").map((l) => LogLine.parse(JSON.parse(l)));
    assert.deepEqual(lines.map((l) => [l.seq, l.stream, l.line]), [
      [1, "stdout", "line 1"],
      [2, "stderr", "line 2"],
      [3, "stdout", "line 3"],
      [4, "stderr", "line 4"],
      [5, "stdout", "line 5"],
    ]);
    const tail = (await (await fetch(`${base}/v1/logs?tail=2`)).text()).trim().split("\n");
    assert.deepEqual(tail.map((l) => JSON.parse(l).seq), [4, 5]);
    const since = (await (await fetch(`${base}/v1/logs?since=3`)).text()).trim().split("\n");
    assert.deepEqual(since.map((l) => JSON.parse(l).seq), [4, 5]);
    assert.equal(await (await fetch(`${base}/v1/logs?since=5`)).text(), "");
    const bad = await fetch(`${base}/v1/logs?tail=abc`);
    assert.equal(bad.status, 400);
    assert.equal(ErrorBody.parse(await bad.json()).code, "invalid_argument");
  });
});

Deno.test("GET /v1/logs?follow=1 streams new lines; a client that leaves frees its subscription", async () => {
  const logs = new LogBuffer();
  logs.push("stdout", "before 1");
  logs.push("stdout", "before 2");
  await serving(logs, async (base) => {
    const abort = new AbortController();
    const res = await fetch(`${base}/v1/logs?follow=1&tail=1`, { signal: abort.signal });
    assert.equal(res.status, 200);
    const lines = lineReader(res.body ?? assert.fail("no body"));
    assert.equal((await lines.next()).line, "before 2");
    await waitUntil("the subscription", () => logs.subscribers === 1, 5000);
    logs.push("stderr", "after");
    const after = await lines.next();
    assert.deepEqual([after.seq, after.stream, after.line], [3, "stderr", "after"]);
    abort.abort();
    await lines.cancel().catch(() => {});
    await waitUntil("the subscription to end", () => logs.subscribers === 0, 5000);
    logs.push("stdout", "nobody listens");
  });
});

Deno.test({
  name: "GET /v1/logs?follow=1 of a real workload: a line the test causes arrives" + SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const root = await makeRoot();
    // The workload prints (then removes) any file dropped into its /tmp/say.
    const sup = new Supervisor(
      plugin({
        workload: {
          entrypoint: [
            "/bin/sh",
            "-c",
            "echo ready; while :; do if [ -f /tmp/say ]; then cat /tmp/say; rm /tmp/say; fi; sleep 0.05; done",
          ],
          base_url: "http://127.0.0.1:1",
        },
      }),
      { root, busybox: BUSYBOX, echo: false, log: () => {} },
    );
    const api = startApi(createRouter([logsRoute(sup.logs)]), { hostname: "127.0.0.1", port: 0 });
    const abort = new AbortController();
    try {
      await sup.start();
      await waitForStatus(sup, "running", (s) => s.state === "running");
      await waitUntil("ready", () => sup.logs.read().some((l) => l.line === "ready"));
      const res = await fetch(
        `http://127.0.0.1:${api.port}/v1/logs?follow=1&since=${sup.logs.lastSeq}`,
        {
          signal: abort.signal,
        },
      );
      const lines = lineReader(res.body ?? assert.fail("no body"));
      const marker = `hello ${crypto.randomUUID()}`;
      await Deno.writeTextFile(`${root}/tmp/say`, `${marker}\n`);
      let got: LogLine;
      do got = await lines.next(); while (got.line !== marker);
      assert.equal(got.stream, "stdout");
      abort.abort();
      await lines.cancel().catch(() => {});
      await waitUntil("the subscription to end", () => sup.logs.subscribers === 0, 5000);
    } finally {
      abort.abort();
      await api.stop();
      await sup.stop(500);
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("GET /v1/logs?follow=1: a follower too far behind is cut off and its stream ends", async () => {
  const logs = new LogBuffer({ maxLines: 10 });
  const req = new Request("http://kestrel/v1/logs?follow=1");
  const res = await logsRoute(logs).handle(req, new URL(req.url));
  assert.equal(logs.subscribers, 1);
  for (let i = 0; i < FOLLOW_MAX_BEHIND + 5; i++) logs.push("stdout", `l${i}`);
  assert.equal(logs.subscribers, 0, "the lagging follower still subscribed");
  const text = await res.text();
  const seqs = text.trim().split("\n").map((l) => JSON.parse(l).seq);
  assert.equal(seqs[0], 1);
  assert.ok(seqs.length > FOLLOW_MAX_BEHIND && seqs.length < FOLLOW_MAX_BEHIND + 5);
});
