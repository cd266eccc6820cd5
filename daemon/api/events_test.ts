import { deepEqual, equal, match, ok } from "node:assert/strict";
import { type NewEvent, StreamError, VmEvent, VolantEvent } from "../../schema/event.ts";
import { REPLAY_PAGE, SUBSCRIBER_QUEUE_BYTES } from "./event_stream.ts";
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

/** One server-sent event as sent: its fields (comments dropped). */
interface Block {
  event?: string;
  id?: string;
  data?: string;
}

/** The blocks of an event stream, as they arrive. */
async function* blocks(res: Response): AsyncGenerator<Block> {
  let buffered = "";
  for await (const text of res.body!.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    let end: number;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const block: Block = {};
      for (const line of buffered.slice(0, end).split("\n")) {
        const m = /^(event|id|data): ?(.*)$/.exec(line);
        if (m) block[m[1] as keyof Block] = m[2]!;
      }
      buffered = buffered.slice(end + 2);
      if (Object.keys(block).length > 0) yield block;
    }
  }
}

/** A workload event of VM `name`, about `size` bytes of JSON. */
function workloadEvent(name: string, size = 200): NewEvent {
  return {
    type: "vm.workload",
    name,
    change: "unhealthy",
    at: new Date().toISOString(),
    workload: {
      state: "running",
      healthy: false,
      restarts: 0,
      checked_at: new Date().toISOString(),
      error: "x".repeat(Math.max(0, size - 200)),
    },
  };
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
    const ids = seen.map((e) => e.id);
    deepEqual(ids, [...ids].sort((a, b) => a - b), "durable ids, increasing");
    // Each one is in the log, as sent.
    const logged = daemon.store.events.after(0, 100, { vm: "web" });
    deepEqual(logged, seen);
  } finally {
    abort.abort();
    await env.dispose();
  }
});

Deno.test("a stream without Last-Event-ID starts at the newest id, and ends when the daemon stops", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    for (let i = 0; i < 3; i++) daemon.store.events.append(workloadEvent("web"));
    const res = await app.request("/api/v1/events");
    const reader = blocks(res);
    deepEqual((await reader.next()).value, { id: "3" }, "no replay; where the client stands");
    daemon.store.events.append(workloadEvent("web"));
    const next = (await reader.next()).value!;
    equal(next.id, "4");
    equal(next.event, "vm.workload");
    equal(VolantEvent.parse(JSON.parse(next.data!)).id, 4);
    await daemon.service.close();
    equal((await reader.next()).done, true, "closing the service ends the stream");
    equal(daemon.service.events.listenerCount(), 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("replay then live: events recorded during the replay arrive once, in order, no gap", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  const abort = new AbortController();
  try {
    const log = daemon.store.events;
    // Large events: the client's queue holds a few dozen, so the replay pauses and resumes.
    const size = 5_000;
    for (let i = 0; i < 3 * REPLAY_PAGE + 50; i++) log.append(workloadEvent(`vm${i % 7}`, size));
    let reads = 0;
    const replay = daemon.service.events.replay.bind(daemon.service.events);
    daemon.service.events.replay = (after, limit, filter) => {
      reads++;
      return replay(after, limit, filter);
    };
    const res = await app.request("/api/v1/events", {
      headers: { "last-event-id": "100" },
      signal: abort.signal,
    });
    equal(res.status, 200);
    const seen: number[] = [];
    let final = 0;
    const reading = (async () => {
      for await (const block of blocks(res)) {
        if (block.data === undefined) continue;
        const event = VolantEvent.parse(JSON.parse(block.data));
        equal(block.id, String(event.id), "the SSE id is the durable id");
        seen.push(event.id);
        // Changes keep happening while the client catches up, then while it follows.
        if (log.bounds().latest < 1200) {
          log.append(workloadEvent("web", size));
          log.append(workloadEvent("db", size));
        } else if (final === 0) {
          final = log.bounds().latest + 50;
          queueMicrotask(() => {
            for (let i = 0; i < 50; i++) log.append(workloadEvent("late"));
          });
        }
        if (final !== 0 && event.id === final) return;
      }
    })();
    reading.catch(() => {});
    await withDeadline(
      reading,
      DEADLINE_MS,
      () => `stuck after ${seen.at(-1)}`,
      () => abort.abort(),
    );
    const expected = Array.from({ length: final - 100 }, (_, i) => 101 + i);
    deepEqual(seen, expected, "every event after 100 exactly once, in order");
    // 250 events to catch up with at first are 3 pages: the rest were recorded while replaying.
    ok(reads > 6, `the replay read what was recorded meanwhile (${reads} reads)`);
  } finally {
    abort.abort();
    await env.dispose();
  }
});

Deno.test("a replay larger than the queue is read from the log only as fast as the client reads", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  const abort = new AbortController();
  try {
    const log = daemon.store.events;
    const size = 1_000;
    for (let i = 0; i < 3_000; i++) log.append(workloadEvent("web", size));
    let read = 0;
    const replay = daemon.service.events.replay.bind(daemon.service.events);
    daemon.service.events.replay = (after, limit, filter) => {
      const page = replay(after, limit, filter);
      read += page.length;
      return page;
    };
    const res = await app.request("/api/v1/events?since=0", { signal: abort.signal });
    for (let i = 0; i < 500 && read === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    const bound = Math.ceil(SUBSCRIBER_QUEUE_BYTES / size) + 2 * REPLAY_PAGE;
    ok(read > 0 && read <= bound, `${read} events read for a client that reads nothing`);
    // More changes while it does not read: they wait in the log, not in its queue.
    for (let i = 0; i < 4_000; i++) log.append(workloadEvent("web", size));
    ok(read <= bound, `${read} events read after 4000 more`);
    equal(daemon.service.events.listenerCount(), 1, "a replaying client is paused, not dropped");
    const seen: number[] = [];
    for await (const data of sseData(res)) {
      const event = VolantEvent.parse(JSON.parse(data));
      seen.push(event.id);
      if (event.id === 7_000) log.append(workloadEvent("live"));
      if (event.id === 7_001) break;
    }
    deepEqual(seen, Array.from({ length: 7_001 }, (_, i) => i + 1));
  } finally {
    abort.abort();
    await env.dispose();
  }
});

Deno.test("a client still draining its replay when a live event comes is not taken for a slow one", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  const abort = new AbortController();
  try {
    const log = daemon.store.events;
    // Two full pages and a short one: more than its queue holds.
    const count = 2 * REPLAY_PAGE + REPLAY_PAGE / 2;
    const size = Math.ceil((SUBSCRIBER_QUEUE_BYTES * 1.2) / count);
    for (let i = 0; i < count; i++) log.append(workloadEvent("web", size));
    let read = 0;
    const replay = daemon.service.events.replay.bind(daemon.service.events);
    daemon.service.events.replay = (after, limit, filter) => {
      const page = replay(after, limit, filter);
      read += page.length;
      return page;
    };
    const res = await app.request("/api/v1/events?since=0", { signal: abort.signal });
    for (let i = 0; i < 500 && read < count; i++) await new Promise((r) => setTimeout(r, 10));
    equal(read, count, "the whole log is in its queue");
    log.append(workloadEvent("live", size));
    equal(daemon.service.events.listenerCount(), 1, "not dropped");
    const seen: number[] = [];
    for await (const data of sseData(res)) {
      const event = VolantEvent.parse(JSON.parse(data));
      seen.push(event.id);
      if (event.id === count + 1) break;
    }
    deepEqual(seen, Array.from({ length: count + 1 }, (_, i) => i + 1));
  } finally {
    abort.abort();
    await env.dispose();
  }
});

Deno.test("a live subscriber that does not read is dropped with a final stream.error, not buffered", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    daemon.store.events.append(workloadEvent("web"));
    // It replays first (one event), then follows.
    const res = await app.request("/api/v1/events?since=0");
    equal(res.status, 200);
    const reader = blocks(res);
    equal((await reader.next()).value!.id, "1");
    equal(daemon.service.events.listenerCount(), 1);
    // Nobody reads while a few MiB of events are recorded.
    for (let i = 0; i < 4_000; i++) daemon.store.events.append(workloadEvent("web", 1_000));
    equal(daemon.service.events.listenerCount(), 0, "the slow subscriber was dropped");
    let bytes = 0;
    let last: Block | undefined;
    for await (const block of reader) {
      bytes += block.data?.length ?? 0;
      last = block;
    }
    const end = StreamError.parse(JSON.parse(last!.data!));
    equal(end.code, "slow_consumer");
    match(end.message, /Last-Event-ID: \d+/);
    ok(bytes < SUBSCRIBER_QUEUE_BYTES * 2, `${bytes} bytes were queued for it`);
  } finally {
    await env.dispose();
  }
});

Deno.test("Last-Event-ID or ?since= that is no id is a 400 naming it", async () => {
  const env = await makeTestEnv();
  const { app } = testApp(env);
  try {
    const bad = await app.request("/api/v1/events", { headers: { "last-event-id": "12abc" } });
    equal(bad.status, 400);
    const body = await bad.json();
    equal(body.code, "invalid_argument");
    match(body.message, /^Last-Event-ID: expected an event id \(a whole number\), got "12abc"/);
    equal(body.details.field, "Last-Event-ID");
    const since = await app.request("/api/v1/events?since=-1");
    equal(since.status, 400);
    match((await since.json()).message, /query\.since: expected an event id/);
    // The header wins over the query (an EventSource reconnecting keeps its URL).
    const abort = new AbortController();
    const ok200 = await app.request("/api/v1/events?since=x1", {
      headers: { "last-event-id": "0" },
      signal: abort.signal,
    });
    equal(ok200.status, 400, "a bad query is refused even with a header");
    await ok200.body?.cancel();
    abort.abort();
  } finally {
    await env.dispose();
  }
});

Deno.test("an id older than retention, or newer than any event, ends the stream with a clear error", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    const log = daemon.store.events;
    for (let i = 0; i < 10; i++) log.append(workloadEvent("web"));
    deepEqual(log.prune("2000-01-01T00:00:00.000Z", 3), { removed: 7, prunedThrough: 7 });
    const all = async (headers: Record<string, string>, path = "/api/v1/events") => {
      const res = await app.request(path, { headers });
      equal(res.status, 200);
      const out: Block[] = [];
      const abort = setTimeout(() => res.body?.cancel(), 2_000);
      try {
        for await (const block of blocks(res)) {
          out.push(block);
          if (block.event === "stream.error" || block.id === "10") break;
        }
      } finally {
        clearTimeout(abort);
      }
      return out;
    };
    const expired = await all({ "last-event-id": "5" });
    equal(expired.length, 1);
    equal(expired[0]!.event, "stream.error");
    equal(
      expired[0]!.id,
      "7",
      "a client that reconnects anyway goes on after the gap it was told of",
    );
    const error = StreamError.parse(JSON.parse(expired[0]!.data!));
    equal(error.code, "events_expired");
    equal(error.oldest_id, 8);
    match(error.message, /the oldest still kept is 8/);
    // From the retention's edge, or from 0 (every event kept): no error.
    deepEqual((await all({ "last-event-id": "7" })).map((b) => b.id), ["8", "9", "10"]);
    deepEqual((await all({}, "/api/v1/events?since=0")).map((b) => b.id), ["8", "9", "10"]);
    const unknown = await all({ "last-event-id": "99" });
    const reset = StreamError.parse(JSON.parse(unknown.at(-1)!.data!));
    equal(reset.code, "events_unknown");
    equal(reset.latest_id, 10);
    match(reset.message, /newer than any this volantd recorded \(the newest is 10\)/);
  } finally {
    await env.dispose();
  }
});

Deno.test("a paused replay whose events are pruned meanwhile is told, not silently skipped", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    const log = daemon.store.events;
    for (let i = 0; i < 2_000; i++) log.append(workloadEvent("web", 1_000));
    let read = 0;
    const replay = daemon.service.events.replay.bind(daemon.service.events);
    daemon.service.events.replay = (after, limit, filter) => {
      const page = replay(after, limit, filter);
      read += page.length;
      return page;
    };
    const res = await app.request("/api/v1/events?since=0");
    // Its queue is full: it has been sent some events and waits for the client.
    for (let i = 0; i < 500 && read === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    log.prune("2000-01-01T00:00:00.000Z", 10);
    let last: Block | undefined;
    let count = 0;
    for await (const block of blocks(res)) {
      last = block;
      if (block.event === "vm.workload") count++;
    }
    ok(count < 2_000, `${count} events were sent before the gap`);
    const error = StreamError.parse(JSON.parse(last!.data!));
    equal(error.code, "events_expired");
    equal(error.oldest_id, 1_991);
  } finally {
    await env.dispose();
  }
});

Deno.test("a client that goes away over a real socket is unsubscribed", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  const path = `${env.runtimeDir}/events.sock`;
  const server = Deno.serve(
    { path, onListen() {} },
    (req) => app.fetch(req, { remoteAddr: { transport: "unix", path } }),
  );
  const http = Deno.createHttpClient({ proxy: { transport: "unix", path } });
  try {
    for (const since of [null, "0"]) {
      const abort = new AbortController();
      const res = await fetch(
        `http://volant/api/v1/events${since === null ? "" : `?since=${since}`}`,
        {
          client: http,
          signal: abort.signal,
        },
      );
      equal(res.status, 200);
      const reader = res.body!.getReader();
      await reader.read();
      equal(daemon.service.events.listenerCount(), 1);
      abort.abort();
      await reader.cancel().catch(() => {});
      for (let i = 0; i < 100 && daemon.service.events.listenerCount() > 0; i++) {
        daemon.store.events.append(workloadEvent("web"));
        await new Promise((r) => setTimeout(r, 20));
      }
      equal(daemon.service.events.listenerCount(), 0, `since ${since}: unsubscribed`);
    }
  } finally {
    http.close();
    await server.shutdown();
    await env.dispose();
  }
});
