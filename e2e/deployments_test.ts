/**
 * Deployments end to end on real VMs: a `volar build` appliance (busybox httpd under kestrel)
 * deployed with 2 replicas; one replica's VMM is killed with SIGKILL and its restart policy
 * (`always`) starts it again in place (same name, same address), the event log showing
 * crashed → starting → running; a rolling update (memory 256 → 192 MiB, max_unavailable 1)
 * replaces both in place, one at a time, at least one healthy at every observation; scale
 * 2 → 1, then 1 → 2 with volantd stopped (SIGTERM) and started again as soon as the new replica
 * exists (both VMMs re-adopted, no duplicate replica); then delete, and nothing is left behind.
 * At most 2 VMs run at once.
 */
import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { DeploymentRecord, VmList, VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, pidAlive, processesMentioning, startDaemon, volarOk } from "./harness.ts";
import { assertClean, until } from "./faults.ts";
import { installHttpd } from "./httpd_appliance.ts";

/** A `vm.state` event as `volar events --json` prints it. */
interface StateEvent {
  id: number;
  type: string;
  name: string;
  from: string | null;
  to: string;
}

/**
 * Runs `volar events --vm <vm> --since <since> --json` until `done(events so far)` holds (or
 * 60 s pass), then ends it by its PID; returns the `vm.state` events it printed.
 */
async function stateEvents(
  daemon: E2eDaemon,
  vm: string,
  since: number,
  done: (events: StateEvent[]) => boolean,
): Promise<StateEvent[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../main.ts", import.meta.url).pathname,
      "volar",
      "--socket",
      daemon.socket,
      "events",
      "--vm",
      vm,
      "--since",
      String(since),
      "--json",
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const events: StateEvent[] = [];
  const timer = setTimeout(() => {
    try {
      Deno.kill(child.pid, "SIGKILL");
    } catch {
      // Exited.
    }
  }, 60_000);
  try {
    let buffer = "";
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    while (!done(events)) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += value;
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) {
        const event = JSON.parse(line) as StateEvent;
        if (event.type === "vm.state" && event.name === vm) events.push(event);
      }
    }
    await reader.cancel().catch(() => {});
  } finally {
    clearTimeout(timer);
    try {
      Deno.kill(child.pid, "SIGKILL");
    } catch {
      // Exited.
    }
    await child.status;
  }
  ok(done(events), `volar events ended early: ${JSON.stringify(events)}`);
  return events;
}

async function vmGet(daemon: E2eDaemon, name: string): Promise<VmRecord> {
  return VmRecord.parse(JSON.parse(await volarOk(daemon, "vms", "get", name, "--json")));
}

async function deployment(daemon: E2eDaemon): Promise<DeploymentRecord> {
  const res = await daemon.api("/api/v1/deployments/web");
  equal(res.status, 200, JSON.stringify(res.body));
  return DeploymentRecord.parse(res.body);
}

Deno.test("a deployment on real VMs: 2 replicas, a killed VMM restarted in place, rolling update, scale across a daemon restart, delete", async () => {
  let daemon: E2eDaemon | undefined;
  try {
    // The first restart waits restart.initial_ms (1 s by default); the reconciler resyncs often.
    daemon = await startDaemon({
      config: ["restart:", "  initial_ms: 500", "deployments:", "  resync_ms: 500"],
    });
    await installHttpd(daemon, "webapp");

    const created = DeploymentRecord.parse(JSON.parse(
      await volarOk(
        daemon,
        "deployments",
        "create",
        "web",
        "--plugin",
        "webapp",
        "--replicas",
        "2",
        "--json",
      ),
    ));
    equal(created.status, "ready");
    equal(created.ready, 2);
    deepEqual(created.members.map((m) => m.name), ["web-1", "web-2"]);
    for (const m of created.members) {
      equal(m.state, "running");
      ok(m.healthy, `${m.name} is healthy`);
      ok(m.ip, `${m.name} has an address`);
    }
    notEqual(created.members[0]!.ip, created.members[1]!.ip);

    const before = await vmGet(daemon, "web-1");
    equal(before.deployment, "web");
    equal(before.restart.policy, "always");
    equal(before.restart.restarts, 0);
    ok(before.pid !== null && await pidAlive(before.pid));
    const web2 = await vmGet(daemon, "web-2");
    // The latest event of web-1 so far (it is running): what follows is the crash.
    const so = await stateEvents(daemon, "web-1", 0, (es) => es.some((e) => e.to === "running"));
    const since = Math.max(...so.map((e) => e.id));

    // SIGKILL to web-1's VMM (a QEMU this test's daemon started).
    Deno.kill(before.pid, "SIGKILL");
    const killedAt = performance.now();
    const after = await until("web-1 running again after its restart", async () => {
      const res = await daemon!.api("/api/v1/vms/web-1");
      if (res.status !== 200) return undefined;
      const vm = VmRecord.parse(res.body);
      return vm.state === "running" && vm.restart.restarts === 1 ? vm : undefined;
    }, 120_000);
    const restartMs = performance.now() - killedAt;
    equal(await pidAlive(before.pid), false);
    const shown = await vmGet(daemon, "web-1");
    equal(shown.state, "running");
    equal(shown.restart.restarts, 1);
    equal(shown.ip, before.ip, "restarted in place: same address");
    equal(shown.deployment, "web");
    notEqual(shown.pid, before.pid);
    equal(after.pid, shown.pid);
    ok(shown.pid !== null && await pidAlive(shown.pid));
    const states = await stateEvents(
      daemon,
      "web-1",
      since,
      (es) => es.some((e) => e.to === "running"),
    );
    deepEqual(states.map((e) => e.to), ["crashed", "starting", "running"]);
    equal(states[0]!.from, "running");
    // web-2 was left alone.
    equal((await vmGet(daemon, "web-2")).pid, web2.pid);
    const ready = await until("the deployment ready again", async () => {
      const d = await deployment(daemon!);
      return d.status === "ready" && d.ready === 2 ? d : undefined;
    }, 120_000);
    equal(ready.members.find((m) => m.name === "web-1")?.restarts, 1);
    console.log(`web-1: SIGKILL → running again in ${Math.round(restartMs)} ms`);

    // Rolling update (max_unavailable 1): each replica replaced in place, one at a time, while
    // the other stays healthy; never more than 2 VMs.
    const ipsBefore = ready.members.map((m) => [m.name, m.ip]);
    const pidsBefore = await Promise.all(
      ready.members.map(async (m) => (await vmGet(daemon!, m.name)).pid),
    );
    const updating = DeploymentRecord.parse(JSON.parse(
      await volarOk(
        daemon,
        "deployments",
        "update",
        "web",
        "--memory",
        "192",
        "--no-wait",
        "--json",
      ),
    ));
    equal(updating.generation, 2);
    equal(updating.template.memory_mb, 192);
    const updateStarted = performance.now();
    let minHealthy = Infinity;
    let maxMembers = 0;
    let observations = 0;
    let inProgress = 0;
    let rolled: DeploymentRecord | undefined;
    const trace: string[] = [];
    const updateDeadline = Date.now() + 240_000;
    while (!rolled) {
      const d = DeploymentRecord.parse(
        JSON.parse(await volarOk(daemon, "deployments", "get", "web", "--json")),
      );
      const healthy = d.members.filter((m) => m.healthy).length;
      observations++;
      minHealthy = Math.min(minHealthy, healthy);
      maxMembers = Math.max(maxMembers, d.members.length);
      trace.push(
        `${d.status} ${
          d.members.map((m) => `${m.name}:g${m.generation}:${m.state}:${m.healthy ? "ok" : "-"}`)
            .join(",")
        }`,
      );
      if (d.status === "ready" && d.updated === 2) rolled = d;
      else {
        inProgress++;
        ok(Date.now() < updateDeadline, `the rolling update did not finish:\n${trace.join("\n")}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    const updateMs = performance.now() - updateStarted;
    ok(minHealthy >= 1, `a replica stayed healthy throughout the update:\n${trace.join("\n")}`);
    ok(maxMembers <= 2, `never more than 2 replicas:\n${trace.join("\n")}`);
    ok(inProgress > 0, "the update was observed in progress");
    equal(rolled.generation, 2);
    equal(rolled.ready, 2);
    deepEqual(rolled.members.map((m) => m.name), ["web-1", "web-2"]);
    deepEqual(rolled.members.map((m) => [m.name, m.ip]), ipsBefore, "replaced in place");
    const updatedVms = [];
    for (const m of rolled.members) {
      equal(m.generation, 2, `${m.name} at generation 2`);
      const vm = await vmGet(daemon, m.name);
      equal(vm.memory_mb, 192, `${m.name} has the new memory`);
      equal(vm.state, "running");
      updatedVms.push(vm);
    }
    const [web1New, web2New] = updatedVms as [VmRecord, VmRecord];
    for (const [i, vm] of updatedVms.entries()) {
      notEqual(vm.pid, pidsBefore[i], `${vm.name} is a new VM`);
      equal(await pidAlive(pidsBefore[i]!), false, `${vm.name}'s old VMM is gone`);
    }
    console.log(
      `rolling update 256 → 192 MiB: ready in ${Math.round(updateMs)} ms, ${observations} ` +
        `observations, at least ${minHealthy} healthy`,
    );

    // Scale 2 → 1: the highest index goes.
    const scaled = DeploymentRecord.parse(
      JSON.parse(await volarOk(daemon, "deployments", "scale", "web", "1", "--json")),
    );
    equal(scaled.replicas, 1);
    const one = await until("web-2 deleted", async () => {
      const vms = VmList.parse((await daemon!.api("/api/v1/vms")).body).vms;
      return vms.length === 1 ? vms : undefined;
    }, 60_000);
    deepEqual(one.map((v) => v.name), ["web-1"]);
    equal(one[0]!.pid, web1New.pid, "web-1 kept running");
    equal(await pidAlive(web2New.pid!), false, "web-2's VMM is gone");

    // Scale 1 → 2 with a daemon restart in the middle: volantd stops (SIGTERM) as soon as web-2
    // exists and starts again over the same state; it re-adopts both VMMs and finishes the
    // scale-up without a duplicate.
    const logsBefore = daemon.logs().length;
    const scalingUp = DeploymentRecord.parse(
      JSON.parse(await volarOk(daemon, "deployments", "scale", "web", "2", "--no-wait", "--json")),
    );
    equal(scalingUp.replicas, 2);
    const scaleStarted = performance.now();
    const early = await until("web-2 created", async () => {
      const res = await daemon!.api("/api/v1/vms/web-2");
      return res.status === 200 ? VmRecord.parse(res.body) : undefined;
    }, 60_000);
    const mid = await deployment(daemon);
    notEqual(mid.status, "ready", "stopped in the middle of the scale-up");
    equal(await daemon.stop(), 0, "volantd exits cleanly on SIGTERM mid scale-up");
    ok(await pidAlive(web1New.pid!), "web-1's VMM outlives the daemon");
    await daemon.start();
    const scaledUp = await until("the deployment ready after the restart", async () => {
      const d = await deployment(daemon!);
      return d.status === "ready" && d.ready === 2 ? d : undefined;
    }, 120_000);
    const scaleMs = performance.now() - scaleStarted;
    deepEqual(scaledUp.members.map((m) => m.name), ["web-1", "web-2"]);
    deepEqual(
      VmList.parse((await daemon.api("/api/v1/vms")).body).vms.map((v) => v.name),
      ["web-1", "web-2"],
      "exactly web-1 and web-2",
    );
    for (const m of scaledUp.members) equal(m.generation, 2, `${m.name} at generation 2`);
    const web1After = await vmGet(daemon, "web-1");
    const web2After = await vmGet(daemon, "web-2");
    equal(web1After.pid, web1New.pid, "web-1's VMM re-adopted");
    equal(web1After.ip, web1New.ip);
    equal(web2After.memory_mb, 192, "web-2 from the updated template");
    if (early.pid !== null) equal(web2After.pid, early.pid, "web-2's VMM re-adopted");
    for (const name of ["web-1", "web-2"]) {
      deepEqual(
        (await processesMentioning(`${daemon.dir}/run/vms/${name}/`)).length,
        1,
        `one VMM of ${name}`,
      );
    }
    // What the daemon did since the scale (its JSON log lines, across the restart).
    const logged = daemon.logs().slice(logsBefore).flatMap((line) => {
      try {
        return [JSON.parse(line) as { msg?: string; vm?: string; state?: string }];
      } catch {
        return [];
      }
    });
    const createdVms = logged.filter((e) => e.msg === "vm created").map((e) => e.vm);
    ok(
      createdVms.length >= 1 && createdVms.every((vm) => vm === "web-2"),
      `only web-2 was created by the scale-up: ${JSON.stringify(createdVms)}`,
    );
    const adopted = new Map(
      logged.filter((e) => e.msg === "vm adopted").map((e) => [e.vm, e.state]),
    );
    equal(adopted.get("web-1"), "running", "web-1 adopted by the restarted daemon");
    console.log(
      `scale 1 → 2 across a daemon restart (web-2 ${early.state} at the stop, ` +
        `${adopted.has("web-2") ? `adopted ${adopted.get("web-2")}` : "not adopted"}, ` +
        `created ${createdVms.length}×): ready in ${Math.round(scaleMs)} ms`,
    );

    await volarOk(daemon, "deployments", "delete", "web");
    await until("the deployment and its replicas gone", async () => {
      const d = await daemon!.api("/api/v1/deployments/web");
      const vms = VmList.parse((await daemon!.api("/api/v1/vms")).body).vms;
      return d.status === 404 && vms.length === 0 ? true : undefined;
    }, 60_000);
    const listed = JSON.parse(await volarOk(daemon, "deployments", "list", "--json"));
    deepEqual(listed.deployments, []);
    deepEqual(VmList.parse(JSON.parse(await volarOk(daemon, "vms", "list", "--json"))).vms, []);
    deepEqual(await processesMentioning(`${daemon.dir}/run/vms`), [], "no VMM process remains");
    await assertClean(daemon, "after the deployment was deleted");
  } finally {
    await daemon?.dispose();
  }
});
