import { deepEqual, equal, match, ok } from "node:assert/strict";
import { makeTestEnv } from "../testing.ts";
import { reconcile } from "./reconcile.ts";

Deno.test("a restarted daemon adopts live VMMs and marks dead ones crashed", async () => {
  const env = await makeTestEnv();
  try {
    const first = env.open();
    const alive = await first.service.create({ name: "alive" });
    const dead = await first.service.create({ name: "dead" });
    await first.service.wait("alive", "running", 5_000);
    await first.service.wait("dead", "running", 5_000);
    first.driver.setBehavior({ readyDelayMs: 300 });
    const booting = await first.service.create({ name: "booting" });
    await first.service.create({ name: "idle" });
    await first.service.stop("idle");
    await first.close(); // VMs keep running
    equal(env.registry.get(alive.pid!)?.alive, true, "closing the daemon must not stop VMs");

    env.registry.kill(dead.pid!);
    const second = env.open();
    const report = await reconcile(second.service);
    deepEqual(report.adopted.sort(), ["alive", "booting"]);
    deepEqual(report.crashed, ["dead"]);
    deepEqual(report.stopped, []);

    const deadVm = second.service.get("dead");
    equal(deadVm.state, "crashed");
    equal(deadVm.pid, null);
    match(deadVm.last_error ?? "", /exited while volantd was not running/);
    equal(second.service.get("alive").pid, alive.pid);
    equal(second.service.get("idle").state, "stopped");

    // The adopted starting VM finishes booting under the new daemon.
    const ready = await second.service.wait("booting", "running", 5_000);
    equal(ready.pid, booting.pid);
    ok(ready.boot_ms !== null && ready.boot_ms >= 250, `boot_ms ${ready.boot_ms}`);

    // Exit watchers work on adopted VMMs.
    env.registry.kill(alive.pid!);
    equal((await second.service.wait("alive", "crashed", 5_000)).pid, null);

    // And the new daemon can stop an adopted VMM.
    equal((await second.service.stop("booting")).state, "stopped");
    equal(env.registry.alive().length, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("interrupted transitions are settled on start", async () => {
  const env = await makeTestEnv();
  try {
    const first = env.open();
    await first.service.create({ name: "mid-stop" });
    await first.service.wait("mid-stop", "running", 5_000);
    const stuck = await first.service.create({ name: "mid-create" });
    await first.close();
    // Simulate a daemon that died mid-stop and mid-create.
    const s = env.open();
    s.store.vms.update("mid-stop", { state: "stopping" });
    s.store.vms.update("mid-create", { state: "pending" });
    s.store.vms.insert({
      ...s.store.vms.get("mid-create")!,
      name: "no-process",
      state: "starting",
      handle: null,
    });
    const report = await reconcile(s.service);
    deepEqual(report.stopped, ["mid-stop"]);
    deepEqual(report.crashed.sort(), ["mid-create", "no-process"]);
    equal(s.service.get("mid-stop").state, "stopped");
    equal(s.service.get("mid-create").state, "crashed");
    match(s.service.get("mid-create").last_error ?? "", /being created/);
    match(s.service.get("no-process").last_error ?? "", /found no VMM process/);
    equal(env.registry.get(stuck.pid!)?.alive, false, "the half-created VMM must be stopped");
    equal(env.registry.alive().length, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("a VMM recorded by another driver is not adopted", async () => {
  const env = await makeTestEnv();
  try {
    const first = env.open();
    await first.service.create({ name: "web" });
    await first.close();
    const second = env.open({ name: "cloud-hypervisor" });
    const report = await reconcile(second.service);
    deepEqual(report.crashed, ["web"]);
  } finally {
    await env.dispose();
  }
});

Deno.test("a guest a killed daemon left paused (snapshot cut short) runs on after the restart", async () => {
  const env = await makeTestEnv();
  try {
    const first = env.open();
    const vm = await first.service.create({ name: "web" });
    await first.service.wait("web", "running", 5_000);
    // What a save does first; then volantd dies before it resumes the guest.
    await first.driver.pause(first.store.vms.get("web")!.handle!);
    equal(env.registry.get(vm.pid!)?.state, "paused");
    await first.close();

    const second = env.open();
    const report = await reconcile(second.service);
    deepEqual(report.adopted, ["web"]);
    equal(env.registry.get(vm.pid!)?.state, "running", "resumed");
    ok(env.logs.some((l) => l.includes("resumed a guest a cut-short snapshot")));
    equal(second.service.get("web").state, "running");
  } finally {
    await env.dispose();
  }
});
