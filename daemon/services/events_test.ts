import { deepEqual, equal, match } from "node:assert/strict";
import { caught, makeTestEnv } from "../testing.ts";

Deno.test("a VM's state and its event commit together: no event, no change", async () => {
  const env = await makeTestEnv();
  const d = env.open({ behavior: { readyDelayMs: 5 } });
  try {
    await d.service.create({ name: "web" });
    await d.service.wait("web", "running", 5_000);
    const before = d.store.events.bounds().latest;
    const record = d.service.events.record.bind(d.service.events);
    d.service.events.record = () => {
      throw new Error("disk full");
    };
    const err = await caught(() => d.service.stop("web"));
    match(err.message, /disk full/);
    equal(d.service.get("web").state, "running", "the state change rolled back with its event");
    equal(d.store.events.bounds().latest, before);
    d.service.events.record = record;
    await d.service.stop("web");
    const logged = d.store.events.after(before, 10);
    deepEqual(
      logged.map((e) => e.type === "vm.state" ? `${e.from}→${e.to}` : e.type),
      ["running→stopping", "stopping→stopped"],
    );
    const last = logged.at(-1)!;
    equal(last.type === "vm.state" && last.vm.state, "stopped");
  } finally {
    await env.dispose();
  }
});

Deno.test("the event log outlives the daemon: a new one over the same state has every event", async () => {
  const env = await makeTestEnv();
  try {
    const first = env.open({ behavior: { readyDelayMs: 5 } });
    await first.service.create({ name: "web" });
    await first.service.wait("web", "running", 5_000);
    await first.service.delete("web");
    const said = first.store.events.after(0, 100);
    await first.close();
    const second = env.open();
    deepEqual(second.store.events.after(0, 100), said);
    deepEqual(said.map((e) => e.type === "vm.state" ? e.to : e.type), [
      "pending",
      "starting",
      "running",
      "stopping",
      "stopped",
      "vm.deleted",
    ]);
  } finally {
    await env.dispose();
  }
});
