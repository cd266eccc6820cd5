import { deepEqual, equal, ok } from "node:assert/strict";
import { parseConfig } from "../config.ts";
import { createLogger } from "../log.ts";
import { openStore } from "../store/mod.ts";
import type { NewEvent } from "../../schema/mod.ts";
import { pruneEvents, startEventRetention } from "./event_retention.ts";

const workload = { state: "running", healthy: true, restarts: 0, checked_at: "", error: null };
const ev = (at: string): NewEvent => ({
  type: "vm.workload",
  name: "web",
  change: "healthy",
  at,
  workload,
});

Deno.test("events.retention_days and events.max_rows default to 7 days and 100 000 events", () => {
  const config = parseConfig({}, () => undefined);
  deepEqual(config.events, { retention_days: 7, max_rows: 100_000, prune_interval_ms: 600_000 });
  const bad = (() => {
    try {
      parseConfig({ events: { max_rows: 5 } }, () => undefined);
    } catch (err) {
      return (err as Error).message;
    }
  })();
  ok(bad?.includes("events.max_rows"), bad);
});

Deno.test("retention prunes by age and by count at start and then periodically", async () => {
  const store = openStore(":memory:");
  const logs: string[] = [];
  const now = new Date("2030-01-10T00:00:00.000Z");
  try {
    store.events.append(ev("2030-01-01T00:00:00.000Z")); // 9 days old: goes at start
    for (let i = 0; i < 3; i++) store.events.append(ev("2030-01-09T00:00:00.000Z"));
    const retention = startEventRetention({
      log: store.events,
      retentionDays: 7,
      maxRows: 100,
      everyMs: 50,
      logger: createLogger({ sink: (l) => logs.push(l) }),
      now: () => now,
    });
    try {
      deepEqual(store.events.bounds(), { oldest: 2, latest: 4, prunedThrough: 1 });
      const line = JSON.parse(logs.find((l) => l.includes("events pruned"))!);
      equal(line.removed, 1);
      // Past max_rows: the periodic run keeps the newest 100.
      for (let i = 0; i < 150; i++) store.events.append(ev("2030-01-09T12:00:00.000Z"));
      for (let i = 0; i < 100 && store.events.bounds().oldest !== 55; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      deepEqual(store.events.bounds(), { oldest: 55, latest: 154, prunedThrough: 54 });
    } finally {
      retention.stop();
    }
    // Fractions of a day work too.
    deepEqual(
      pruneEvents(store.events, { retentionDays: 0.25, maxRows: 1000 }, now),
      { removed: 100, prunedThrough: 154 },
    );
  } finally {
    store.close();
  }
});
