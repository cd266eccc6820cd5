/**
 * Event fan-out benchmark (issue 16): what making events durable costs when 50 subscribers
 * follow them, with the fake driver (no VM boots), measured in one run with the baselines
 * interleaved:
 *
 * - Through `GET /api/v1/events` over a unix socket: 50 SSE clients are connected (each parses
 *   every event's JSON); a realistic `vm.state` event (the VM's full record) is recorded in the
 *   SQLite event log — one transaction, commit, then heard by the 50 streams — and the time until
 *   all 50 clients have it is taken. Baseline: the same event handed to the same 50 streams by
 *   the in-memory emitter alone (no store), as before events were durable.
 * - In process: the same event recorded (transaction + commit) and heard by 50 listeners, against
 *   the in-memory emitter calling the same 50 listeners.
 * - Replay: a client resuming from id 0 with 10 000 events in the log, read in pages.
 *
 * @module
 */
import { makeTestEnv, testApp } from "../daemon/testing.ts";
import type { NewEvent, VolantEvent } from "../schema/mod.ts";
import { median } from "./boot_bench.ts";

/** What the event benchmark measured. */
export interface EventsBenchResult {
  /** Subscribers each event reaches. */
  subscribers: number;
  /** Recorded in the log → all SSE clients received it, ms per event. */
  sseDurableMs: number[];
  /** Handed to the in-memory emitter → all SSE clients received it, ms per event. */
  sseMemoryMs: number[];
  /** Recorded in the log → all in-process listeners heard it, µs per event (median of 200). */
  durableUs: number[];
  /** In-memory emitter → all in-process listeners, µs per event (median of 200). */
  memoryUs: number[];
  /** Events replayed to one client resuming from 0 (10 000 in the log): events per second. */
  replayPerSec: number;
  /** Bytes of one event's JSON. */
  eventBytes: number;
}

const SUBSCRIBERS = 50;

/** Reads one SSE client's stream, telling `onId` each event id it completes. */
async function readClient(res: Response, onId: (id: number) => void): Promise<void> {
  let buffered = "";
  try {
    for await (const text of res.body!.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      let end: number;
      while ((end = buffered.indexOf("\n\n")) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = block.split("\n").find((l) => l.startsWith("data: "));
        if (data) onId((JSON.parse(data.slice(6)) as VolantEvent).id);
      }
    }
  } catch {
    // Aborted at the end of the run.
  }
}

/** Runs the benchmark: `rounds` events per side through SSE, interleaved. */
export async function runEventsBench(rounds: number): Promise<EventsBenchResult> {
  const env = await makeTestEnv({ readyMs: 5_000 });
  const { app, daemon } = testApp(env);
  const socket = `${env.runtimeDir}/bench.sock`;
  const server = Deno.serve(
    { path: socket, onListen() {} },
    (req) => app.fetch(req, { remoteAddr: { transport: "unix", path: socket } }),
  );
  const http = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  const abort = new AbortController();
  try {
    await daemon.service.create({ name: "web" });
    const vm = await daemon.service.wait("web", "running", 5_000);
    const event = (): NewEvent => ({
      type: "vm.state",
      name: "web",
      from: "running",
      to: "running",
      at: new Date().toISOString(),
      vm,
    });
    const eventBytes = JSON.stringify(event()).length + 12;

    // 50 SSE clients; a waiter per id counts them.
    const waiters = new Map<number, { left: number; done: () => void }>();
    const arrived = (id: number) => {
      const w = waiters.get(id);
      if (w && --w.left === 0) {
        waiters.delete(id);
        w.done();
      }
    };
    const readers: Promise<void>[] = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const res = await fetch("http://volant/api/v1/events", {
        client: http,
        signal: abort.signal,
      });
      readers.push(readClient(res, arrived));
    }
    while (daemon.service.events.listenerCount() < SUBSCRIBERS) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const all = (id: number) => {
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.set(id, { left: SUBSCRIBERS, done: resolve });
      return promise;
    };
    const durable = async () => {
      const started = performance.now();
      const id = daemon.store.events.bounds().latest + 1;
      const got = all(id);
      daemon.store.events.append(event());
      await got;
      return performance.now() - started;
    };
    let emitted = 0;
    const memory = async () => {
      const started = performance.now();
      // Between the log's ids, increasing: the streams take it as new, and the next recorded too.
      const id = daemon.store.events.bounds().latest + ++emitted / (emitted + 1);
      const got = all(id);
      daemon.service.events.emit({ ...event(), id } as VolantEvent);
      await got;
      return performance.now() - started;
    };
    for (let i = 0; i < 10; i++) await (i % 2 ? durable() : memory()); // warm-up
    const sseDurableMs: number[] = [];
    const sseMemoryMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) {
        sseDurableMs.push(await durable());
        sseMemoryMs.push(await memory());
      } else {
        sseMemoryMs.push(await memory());
        sseDurableMs.push(await durable());
      }
    }
    abort.abort();
    await Promise.all(readers);

    // In process: 50 listeners, the emit itself.
    for (let i = 0; i < 5 && daemon.service.events.listenerCount() > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    let heard = 0;
    const offs = Array.from(
      { length: SUBSCRIBERS },
      () => daemon.service.events.subscribe(() => void heard++),
    );
    const durableUs: number[] = [];
    const memoryUs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const d: number[] = [];
      const m: number[] = [];
      for (let i = 0; i < 200; i++) {
        const e = event();
        let t = performance.now();
        daemon.store.transaction(() => daemon.service.events.record(e));
        d.push((performance.now() - t) * 1000);
        t = performance.now();
        daemon.service.events.emit({ ...e, id: 0.5 } as VolantEvent);
        m.push((performance.now() - t) * 1000);
      }
      durableUs.push(median(d));
      memoryUs.push(median(m));
    }
    for (const off of offs) off();
    if (heard !== rounds * 200 * 2 * SUBSCRIBERS) throw new Error(`listeners heard ${heard}`);

    // Replay: 10 000 events after id 0 (the log already holds the rounds above).
    const logged = daemon.store.events.bounds().latest;
    for (let i = logged; i < 10_000; i++) daemon.store.events.append(event());
    const total = daemon.store.events.bounds().latest;
    const replayAbort = new AbortController();
    const started = performance.now();
    const res = await fetch("http://volant/api/v1/events?since=0", {
      client: http,
      signal: replayAbort.signal,
    });
    await readClient(res, (id) => {
      if (id === total) replayAbort.abort();
    });
    const replayPerSec = total / ((performance.now() - started) / 1000);
    return {
      subscribers: SUBSCRIBERS,
      sseDurableMs,
      sseMemoryMs,
      durableUs,
      memoryUs,
      replayPerSec,
      eventBytes,
    };
  } finally {
    abort.abort();
    http.close();
    await server.shutdown();
    await env.dispose();
  }
}

if (import.meta.main) {
  const r = await runEventsBench(20);
  console.log(
    `SSE durable ${median(r.sseDurableMs).toFixed(2)} ms, memory ${
      median(r.sseMemoryMs).toFixed(2)
    } ms; in-process ${median(r.durableUs).toFixed(1)} µs vs ${
      median(r.memoryUs).toFixed(1)
    } µs; replay ${Math.round(r.replayPerSec)}/s`,
  );
}
