import { deepEqual, equal } from "node:assert/strict";
import { VmEvent } from "../../schema/event.ts";
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
