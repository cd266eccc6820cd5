import { deepEqual, equal, ok } from "node:assert/strict";
import { StreamError, VmEvent } from "../../schema/event.ts";
import { SUBSCRIBER_QUEUE_BYTES } from "./events.ts";
import { sseData } from "../../cli/commands/events.ts";
import { makeTestEnv, testApp } from "../testing.ts";

/** How long the test waits for the whole event sequence before it fails (instead of hanging). */
const DEADLINE_MS = 15_000;

/** `promise`, or a rejection naming `what` after `ms` (when `onTimeout` runs first). */
async function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  what: () => string,
  onTimeout: () => void,
): Promise<T> {
  let id: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    id = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what()} within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(id);
  }
}

Deno.test("GET /api/v1/events streams a VM's states as server-sent events, filtered by VM", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  const abort = new AbortController();
  try {
    const res = await app.request("/api/v1/events?vm=web", { signal: abort.signal });
    equal(res.status, 200);
    equal(res.headers.get("content-type"), "text/event-stream");
    const seen: VmEvent[] = [];
    const reading = (async () => {
      for await (const data of sseData(res)) {
        const event = VmEvent.parse(JSON.parse(data));
        seen.push(event);
        if (event.type === "vm.deleted") return;
      }
    })();
    // Failing after the deadline aborts the request, which ends the stream.
    reading.catch(() => {});
    await daemon.service.create({ name: "other" });
    await daemon.service.create({ name: "web" });
    await daemon.service.wait("web", "running", 5000);
    await daemon.service.delete("web");
    await withDeadline(
      reading,
      DEADLINE_MS,
      () => `no vm.deleted event for web (saw: ${seen.map((e) => e.type).join(", ") || "none"})`,
      () => abort.abort(),
    );
    deepEqual(
      seen.map((e) => e.type === "vm.state" ? `${e.from}→${e.to}` : e.type),
      [
        "null→pending",
        "pending→starting",
        "starting→running",
        "running→stopping",
        "stopping→stopped",
        "vm.deleted",
      ],
    );
    equal(seen.every((e) => e.name === "web"), true, "?vm=web keeps only web's events");
  } finally {
    abort.abort();
    await env.dispose();
  }
});

Deno.test("a subscriber that does not read is dropped with a final stream.error, not buffered", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    const res = await app.request("/api/v1/events");
    equal(res.status, 200);
    equal(daemon.service.events.listenerCount(), 1);
    // Nobody reads while a few MiB of events are emitted.
    const created = await daemon.service.create({ name: "web" });
    const vm = created;
    for (let i = 0; i < 4_000; i++) {
      daemon.service.events.emit({
        type: "vm.state",
        name: "web",
        from: "running",
        to: "running",
        at: new Date().toISOString(),
        vm,
      });
    }
    equal(daemon.service.events.listenerCount(), 0, "the slow subscriber was dropped");
    let bytes = 0;
    let last = "";
    for await (const data of sseData(res)) {
      bytes += data.length;
      last = data;
    }
    const end = StreamError.parse(JSON.parse(last));
    equal(end.code, "slow_consumer");
    ok(bytes < SUBSCRIBER_QUEUE_BYTES * 2, `${bytes} bytes were queued for it`);
  } finally {
    await env.dispose();
  }
});
