/**
 * Deployments end to end on real VMs: a `volar build` appliance (busybox httpd under kestrel)
 * deployed with 2 replicas; one replica's VMM is killed with SIGKILL and its restart policy
 * (`always`) starts it again in place (same name, same address), the event log showing
 * crashed → starting → running; then scale 2 → 1 and delete, and nothing is left behind.
 * At most 2 VMs run at once.
 */
import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { DeploymentRecord, VmList, VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, pidAlive, processesMentioning, startDaemon } from "./harness.ts";
import { assertClean, until } from "./faults.ts";
import { httpdApplianceConfig } from "./httpd_appliance.ts";

async function volarOk(daemon: E2eDaemon, ...args: string[]): Promise<string> {
  const r = await daemon.volar(...args);
  equal(r.code, 0, `volar ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** Builds and installs the httpd appliance `name` (kestrel supervises httpd, HTTP health). */
async function installHttpd(daemon: E2eDaemon, name: string): Promise<void> {
  const work = `${daemon.dir}/app`;
  await Deno.mkdir(`${work}/www`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${work}/busybox`);
  await Deno.chmod(`${work}/busybox`, 0o755);
  await Deno.writeTextFile(`${work}/www/index.html`, `served by ${name}\n`);
  await Deno.writeTextFile(`${work}/${name}.toml`, httpdApplianceConfig(name, "kestrel"));
  const built = JSON.parse(
    await volarOk(daemon, "build", "-c", `${work}/${name}.toml`, "-o", `${work}/out`, "--json"),
  );
  await volarOk(daemon, "plugins", "install", "--manifest", built.manifest, "--allow-unsigned");
}

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

Deno.test("a deployment on real VMs: 2 replicas, a killed VMM restarted in place, scale, delete", async () => {
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

    const scaled = DeploymentRecord.parse(
      JSON.parse(await volarOk(daemon, "deployments", "scale", "web", "1", "--json")),
    );
    equal(scaled.replicas, 1);
    const one = await until("web-2 deleted", async () => {
      const vms = VmList.parse((await daemon!.api("/api/v1/vms")).body).vms;
      return vms.length === 1 ? vms : undefined;
    }, 60_000);
    deepEqual(one.map((v) => v.name), ["web-1"]);
    equal(one[0]!.pid, shown.pid, "web-1 kept running");
    equal(await pidAlive(web2.pid!), false, "web-2's VMM is gone");

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
