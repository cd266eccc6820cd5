import { deepEqual, equal, throws } from "node:assert/strict";
import type { NewEvent, VolantEvent } from "../../schema/mod.ts";
import { openStore } from "./mod.ts";

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-events-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const workload = { state: "running", healthy: true, restarts: 0, checked_at: "", error: null };

/** A small event about VM `name` at time `at`. */
function ev(name: string, at = new Date().toISOString()): NewEvent {
  return { type: "vm.workload", name, change: "healthy", at, workload };
}

Deno.test("events: ids increase; heard once committed, in order; a rollback keeps and says nothing", () =>
  withDir((dir) => {
    const store = openStore(`${dir}/volant.db`);
    try {
      const heard: number[] = [];
      store.events.subscribe((e) => heard.push(e.id));
      equal(store.events.append(ev("a")).id, 1, "outside a transaction: committed, heard at once");
      deepEqual(heard, [1]);
      store.transaction(() => {
        store.events.append(ev("b"));
        deepEqual(heard, [1], "not heard before the commit");
        store.transaction(() => store.events.append(ev("c")));
        deepEqual(heard, [1], "a savepoint's release is no commit");
        throws(() =>
          store.transaction(() => {
            store.events.append(ev("rolled-back"));
            throw new Error("inner");
          })
        );
      });
      deepEqual(heard, [1, 2, 3], "the inner rollback dropped its event only");
      throws(() =>
        store.transaction(() => {
          store.events.append(ev("d"));
          throw new Error("outer");
        })
      );
      deepEqual(heard, [1, 2, 3]);
      const kept = store.events.after(0, 10);
      deepEqual(kept.map((e) => e.name), ["a", "b", "c"]);
      // A rolled-back id was never committed: ids of committed events stay contiguous.
      equal(store.events.append(ev("e")).id, 4);
      deepEqual(store.events.bounds(), { oldest: 1, latest: 4, prunedThrough: 0 });
    } finally {
      store.close();
    }
  }));

Deno.test("events: a listener that records an event while hearing one does not reorder them", () =>
  withDir((dir) => {
    const store = openStore(`${dir}/volant.db`);
    try {
      const first: number[] = [];
      const second: number[] = [];
      store.events.subscribe((e) => {
        first.push(e.id);
        if (e.name === "a") store.events.append(ev("from-listener"));
      });
      store.events.subscribe((e) => second.push(e.id));
      store.events.append(ev("a"));
      deepEqual(first, [1, 2]);
      deepEqual(second, [1, 2], "every listener hears 1 before 2");
    } finally {
      store.close();
    }
  }));

Deno.test("events: after() pages in id order and filters one VM's vm.* events", () =>
  withDir((dir) => {
    const store = openStore(`${dir}/volant.db`);
    try {
      for (let i = 0; i < 25; i++) store.events.append(ev(i % 2 === 0 ? "web" : "db"));
      const plugin: NewEvent = {
        type: "plugin.enabled",
        name: "web",
        at: new Date().toISOString(),
        plugin: {
          name: "web",
          version: "1",
          runtime: "web",
          description: null,
          enabled: true,
          init: "kestrel",
          signature: { status: "unsigned", key_id: null },
          source: null,
          installed_at: "",
          updated_at: "",
          artifacts: [],
          actions: [],
          used_by: [],
        },
      };
      store.events.append(plugin);
      const pages: VolantEvent[][] = [];
      for (let after = 0;;) {
        const page = store.events.after(after, 10);
        if (page.length === 0) break;
        pages.push(page);
        after = page.at(-1)!.id;
      }
      deepEqual(pages.map((p) => p.length), [10, 10, 6]);
      deepEqual(pages.flat().map((e) => e.id), Array.from({ length: 26 }, (_, i) => i + 1));
      const web = store.events.after(0, 100, { vm: "web" });
      equal(web.length, 13, "the plugin named web is no VM event");
      equal(web.every((e) => e.name === "web" && e.type === "vm.workload"), true);
      deepEqual(store.events.after(20, 100, { vm: "db" }).map((e) => e.id), [22, 24]);
      deepEqual(store.events.after(26, 10), []);
      const last = store.events.after(25, 1)[0]!;
      deepEqual(last, { id: 26, ...plugin }, "stored as recorded, with its id");
    } finally {
      store.close();
    }
  }));

Deno.test("events: pruning by count and by age removes a prefix; ids are never reused", () =>
  withDir((dir) => {
    const path = `${dir}/volant.db`;
    let store = openStore(path);
    try {
      const old = "2020-01-01T00:00:00.000Z";
      for (let i = 0; i < 5; i++) store.events.append(ev("old", old));
      for (let i = 0; i < 10; i++) store.events.append(ev("new", "2030-01-01T00:00:00.000Z"));
      // By age: the five from 2020 go; the young ones stay whatever the count.
      deepEqual(store.events.prune("2025-01-01T00:00:00.000Z", 1000), {
        removed: 5,
        prunedThrough: 5,
      });
      // By count: the newest 4 stay.
      deepEqual(store.events.prune("2000-01-01T00:00:00.000Z", 4), {
        removed: 6,
        prunedThrough: 11,
      });
      deepEqual(store.events.bounds(), { oldest: 12, latest: 15, prunedThrough: 11 });
      deepEqual(store.events.prune("2000-01-01T00:00:00.000Z", 4), {
        removed: 0,
        prunedThrough: 11,
      });
      // An old event recorded after young ones (a clock set back) takes no young one with it.
      store.events.append(ev("late", old));
      deepEqual(store.events.prune("2025-01-01T00:00:00.000Z", 1000).removed, 0);
      // Everything goes: the next id is still a new one, also after a restart.
      store.events.prune("2099-01-01T00:00:00.000Z", 0);
      deepEqual(store.events.bounds(), { oldest: null, latest: 16, prunedThrough: 16 });
      store.close();
      store = openStore(path);
      equal(store.events.append(ev("after-restart")).id, 17);
      deepEqual(store.events.bounds(), { oldest: 17, latest: 17, prunedThrough: 16 });
    } finally {
      store.close();
    }
  }));
