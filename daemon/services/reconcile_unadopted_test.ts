import { deepEqual, equal, match } from "node:assert/strict";
import { makeTestEnv } from "../testing.ts";
import { reconcile } from "./reconcile.ts";

Deno.test("a recorded VMM whose API never answers is ended by the next daemon, not left running", async () => {
  const env = await makeTestEnv();
  try {
    const first = env.open();
    // Its process lives but its API never answers (as a VMM still starting when volantd died).
    first.driver.setBehavior({ unresponsive: true });
    const creating = await first.service.create({ name: "creating" });
    const booting = await first.service.create({ name: "booting" });
    await first.service.wait("booting", "running", 5_000);
    await first.close();
    // A daemon killed inside `create`: the pid was recorded at spawn, the VM still pending.
    const s = env.open();
    s.store.vms.update("creating", { state: "pending" });
    const report = await reconcile(s.service);
    deepEqual(report.killed.sort(), ["booting", "creating"]);
    deepEqual(report.adopted, []);
    deepEqual(report.crashed.sort(), ["booting", "creating"]);
    equal(env.registry.get(creating.pid!)?.alive, false, "the pending VM's VMM is ended");
    equal(env.registry.get(booting.pid!)?.alive, false, "an unadoptable running VMM is ended");
    equal(env.registry.alive().length, 0);
    match(s.service.get("creating").last_error ?? "", /being created/);
    // Everything it held is free again: its tap, its lease; it starts anew.
    equal(s.service.get("booting").tap, null);
    equal(s.service.get("booting").ip, null);
    s.driver.setBehavior({});
    equal((await s.service.start("booting")).state, "starting");
  } finally {
    await env.dispose();
  }
});
