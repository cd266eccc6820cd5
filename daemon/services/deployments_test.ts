import { deepEqual, equal, match, ok } from "node:assert/strict";
import { writeCpio } from "../../kernels/cpio.ts";
import type { FakeBehavior } from "../../hypervisor/fake/mod.ts";
import type { VolantEvent } from "../../schema/mod.ts";
import { caught, makeTestEnv, type TestDaemon, type TestEnv } from "../testing.ts";
import { reconcile } from "./reconcile.ts";
import { currentEndpoints } from "./_policy.ts";

/** A healthy workload as the fake kestrel reports it. */
function workload(healthy = true): Record<string, unknown> {
  const now = new Date().toISOString();
  return {
    name: "web",
    version: "1.0.0",
    state: "running",
    healthy,
    health: { status: healthy ? "healthy" : "unhealthy", last_error: healthy ? null : "503" },
    pid: 42,
    restarts: 0,
    last_exit: null,
    started_at: now,
    since: now,
    next_start_at: null,
    last_error: null,
  };
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function installWeb(env: TestEnv, daemon: TestDaemon): Promise<void> {
  const archive = writeCpio([
    { type: "file", path: "hello", data: new TextEncoder().encode("hi\n"), mode: 0o644 },
  ]);
  await Deno.writeFile(`${env.root}/web.cpio`, archive);
  await daemon.plugins.install({
    manifest: {
      name: "web",
      version: "1.0.0",
      initramfs: { url: `${env.root}/web.cpio`, checksum: `sha256:${await sha256(archive)}` },
      resources: { cpu_cores: 1, memory_mb: 128 },
      workload: { entrypoint: ["/bin/httpd"], base_url: "http://127.0.0.1:80" },
    },
    allow_unsigned: true,
  });
}

async function setup(
  behavior: Partial<FakeBehavior> = {},
): Promise<{ env: TestEnv; daemon: TestDaemon }> {
  const env = await makeTestEnv({ workloadPollMs: 30 });
  const daemon = env.open({ behavior: { workload: workload(), ...behavior } });
  await installWeb(env, daemon);
  daemon.start();
  return { env, daemon };
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const names = (d: TestDaemon) => d.service.list().map((vm) => vm.name);

Deno.test("deployments: replicas come up, a killed VMM is restarted in place, events show it", async () => {
  const { env, daemon } = await setup();
  try {
    const created = await daemon.deployments.create({ name: "web", plugin: "web", replicas: 2 });
    equal(created.replicas, 2);
    const ready = await daemon.deployments.wait("web", 10_000);
    equal(ready.status, "ready");
    deepEqual(ready.members.map((m) => m.name), ["web-1", "web-2"]);
    deepEqual(names(daemon), ["web-1", "web-2"]);
    const before = daemon.service.get("web-1");
    equal(before.deployment, "web");
    equal(before.restart.policy, "always");
    const since = daemon.service.events.bounds().latest;

    env.registry.kill(before.pid!);
    await until("web-1 restarted", () => {
      const vm = daemon.service.get("web-1");
      return vm.state === "running" && vm.restart.restarts === 1;
    });
    const after = daemon.service.get("web-1");
    equal(after.ip, before.ip, "the replacement keeps its address");
    ok(after.pid !== before.pid);
    const states = daemon.service.events.replay(since, 100)
      .filter((e): e is Extract<VolantEvent, { type: "vm.state" }> =>
        e.type === "vm.state" && e.name === "web-1"
      )
      .map((e) => e.to);
    deepEqual(states.slice(0, 3), ["crashed", "starting", "running"]);
    equal((await daemon.deployments.wait("web", 5_000)).status, "ready");
    deepEqual(names(daemon), ["web-1", "web-2"], "no replica was duplicated");
  } finally {
    await env.dispose();
  }
});

Deno.test("deployments: scale 2 → 1 → 2 and 50 replicas against the fake driver", async () => {
  const { env, daemon } = await setup({ readyDelayMs: 1 });
  try {
    await daemon.deployments.create({ name: "web", plugin: "web", replicas: 2 });
    await daemon.deployments.wait("web", 10_000);
    daemon.deployments.scale("web", { replicas: 1 });
    await until("scaled to 1", () => names(daemon).join() === "web-1");
    daemon.deployments.scale("web", { replicas: 2 });
    equal((await daemon.deployments.wait("web", 10_000)).ready, 2);
    deepEqual(names(daemon), ["web-1", "web-2"]);

    daemon.deployments.scale("web", { replicas: 50 });
    const fifty = await daemon.deployments.wait("web", 60_000);
    equal(fifty.ready, 50);
    equal(new Set(fifty.members.map((m) => m.ip)).size, 50, "each replica its own lease");
    daemon.deployments.scale("web", { replicas: 3 });
    await until("scaled to 3", () => names(daemon).length === 3, 30_000);
    deepEqual(names(daemon), ["web-1", "web-2", "web-3"], "the highest indices went");
    const gone = await daemon.deployments.delete("web", 30_000);
    equal(gone.name, "web");
    deepEqual(names(daemon), []);
    deepEqual(daemon.store.leases.list(), [], "every lease is free");
    equal(daemon.deployments.list().length, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("deployments: a rolling update keeps a replica healthy at every observation", async () => {
  const { env, daemon } = await setup({ readyDelayMs: 30 });
  try {
    await daemon.deployments.create({ name: "web", plugin: "web", replicas: 2 });
    await daemon.deployments.wait("web", 10_000);
    const ips = daemon.deployments.get("web").members.map((m) => m.ip);
    let lowest = Infinity;
    const off = daemon.service.events.subscribe(() => {
      const healthy = daemon.deployments.get("web").members.filter((m) => m.healthy).length;
      lowest = Math.min(lowest, healthy);
    });
    const updated = await daemon.deployments.update("web", { memory_mb: 192 });
    equal(updated.generation, 2);
    await until("updated", () => {
      const d = daemon.deployments.get("web");
      return d.status === "ready" && d.updated === 2;
    });
    off();
    ok(lowest >= 1, `at least one replica stayed healthy (lowest seen: ${lowest})`);
    const d = daemon.deployments.get("web");
    deepEqual(d.members.map((m) => m.generation), [2, 2]);
    deepEqual(d.members.map((m) => m.ip), ips, "replaced in place, addresses kept");
    deepEqual(daemon.service.list().map((vm) => vm.memory_mb), [192, 192]);
    const replaced = daemon.service.events.replay(0, 1000)
      .filter((e) => e.type === "deployment.replica" && e.change === "replaced");
    equal(replaced.length, 2);
  } finally {
    await env.dispose();
  }
});

Deno.test("deployments: a daemon restart in the middle of a scale-up ends with exactly the desired replicas", async () => {
  const env = await makeTestEnv({ workloadPollMs: 30 });
  try {
    const first = env.open({ behavior: { workload: workload(), readyDelayMs: 5 } });
    await installWeb(env, first);
    first.start();
    await first.deployments.create({ name: "web", plugin: "web", replicas: 1 });
    await first.deployments.wait("web", 10_000);
    first.deployments.scale("web", { replicas: 6 });
    await until("the scale-up began", () => first.service.count() >= 3);
    await first.close();

    const second = env.open({ behavior: { workload: workload(), readyDelayMs: 5 } });
    await reconcile(second.service);
    second.start();
    const d = await second.deployments.wait("web", 20_000);
    equal(d.ready, 6);
    deepEqual(names(second), ["web-1", "web-2", "web-3", "web-4", "web-5", "web-6"]);
  } finally {
    await env.dispose();
  }
});

Deno.test("deployments: a crash-looping replica is shown and wait says so", async () => {
  const { env, daemon } = await setup({ readyDelayMs: 1 });
  try {
    daemon.driver.setBehavior((spec) => ({
      workload: workload(),
      readyDelayMs: 1,
      crashAfterMs: spec.id === "web-2" ? 20 : null,
      neverReady: spec.id === "web-2",
    }));
    await daemon.deployments.create({ name: "web", plugin: "web", replicas: 2 });
    const err = await caught(() => daemon.deployments.wait("web", 20_000));
    equal(err.code, "invalid_state");
    match(err.message, /web-2 crash-loops/);
    const d = daemon.deployments.get("web");
    equal(d.status, "crash_loop");
    ok(d.members.find((m) => m.name === "web-2")!.crash_loop);
    ok(!d.members.find((m) => m.name === "web-1")!.crash_loop);
  } finally {
    await env.dispose();
  }
});

Deno.test("deployments: an unhealthy replica is restarted in place after the threshold", async () => {
  const { env, daemon } = await setup({ readyDelayMs: 1 });
  try {
    await daemon.deployments.create({ name: "web", plugin: "web", replicas: 1 });
    await daemon.deployments.wait("web", 10_000);
    const pid = daemon.service.get("web-1").pid!;
    const proc = env.registry.alive().find((p) => p.pid === pid)!;
    proc.behavior.workload = workload(false);
    await until("restarted", () => {
      const vm = daemon.service.get("web-1");
      return vm.pid !== pid && vm.state === "running";
    });
    ok(
      daemon.service.events.replay(0, 1000).some((e) =>
        e.type === "deployment.replica" && e.change === "restarted" && e.replica === "web-1"
      ),
    );
  } finally {
    await env.dispose();
  }
});

Deno.test("deployments: bad input names the field and leaves nothing behind", async () => {
  const { env, daemon } = await setup();
  try {
    const d = daemon.deployments;
    const cases: [unknown, RegExp][] = [
      [{ name: "web", plugin: "web", replicas: -1 }, /replicas: must be 0 or more/],
      [{ name: "web", plugin: "web", replicas: 101 }, /replicas: at most 100/],
      [{ name: "Web", plugin: "web", replicas: 1 }, /name: must be 1-57/],
      [{ name: "web", replicas: 1 }, /plugin: give a plugin or an image/],
      [{ name: "web", plugin: "web", replicas: 1, publish: [] }, /publish/],
    ];
    for (const [body, message] of cases) {
      const err = await caught(() => d.create(body));
      equal(err.code, "invalid_argument", String(message));
      match(err.message, message);
    }
    equal(
      (await caught(() => d.create({ name: "web", plugin: "nope", replicas: 1 }))).code,
      "not_found",
    );
    equal(
      (await caught(() => Promise.resolve().then(() => d.scale("nope", { replicas: 1 })))).code,
      "not_found",
    );
    equal((await caught(() => d.update("nope", { memory_mb: 256 }))).code, "not_found");

    // A VM holding a replica's name.
    await daemon.service.create({ name: "api-2" });
    const clash = await caught(() => d.create({ name: "api", plugin: "web", replicas: 2 }));
    equal(clash.code, "already_exists");
    match(clash.message, /api-2 is a VM outside deployment api/);
    equal(d.list().length, 0, "nothing half-created");

    await d.create({ name: "web", plugin: "web", replicas: 1 });
    const reserved = await caught(() => daemon.service.create({ name: "web-7" }));
    equal(reserved.code, "already_exists");
    match(reserved.message, /replica name of deployment web/);
    const empty = await caught(() => d.update("web", {}));
    equal(empty.code, "invalid_argument");
    equal(
      (await caught(() => d.create({ name: "web", plugin: "web", replicas: 1 }))).code,
      "already_exists",
    );
  } finally {
    await env.dispose();
  }
});

Deno.test("restart policy: on-failure restarts a VM keeping its address, then gives up", async () => {
  const { env, daemon } = await setup({ workload: null, readyDelayMs: 1 });
  try {
    await daemon.service.create({ name: "solo", restart: "on-failure" });
    await daemon.service.wait("solo", "running", 5_000);
    const ip = daemon.service.get("solo").ip;
    daemon.driver.setBehavior({ readyDelayMs: 1, crashAfterMs: 10 });
    env.registry.kill(daemon.service.get("solo").pid!);
    await until("gave up", () => daemon.service.get("solo").restart.status === "gave_up");
    const vm = daemon.service.get("solo");
    equal(vm.state, "crashed");
    equal(vm.ip, ip, "the address stayed with it");
    equal(vm.restart.restarts, 3, "restart.max_retries (3 in tests) restarts, then no more");
    equal(daemon.restarter.pending().length, 0);

    // never: stays crashed.
    daemon.driver.setBehavior({ readyDelayMs: 1 });
    await daemon.service.create({ name: "plain" });
    await daemon.service.wait("plain", "running", 5_000);
    env.registry.kill(daemon.service.get("plain").pid!);
    await until("crashed", () => daemon.service.get("plain").state === "crashed");
    await new Promise((r) => setTimeout(r, 100));
    equal(daemon.service.get("plain").state, "crashed");
    equal(daemon.service.get("plain").restart.restarts, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("network policy: allow_from deployment:<name> lets every replica in, now and later", async () => {
  const { env, daemon } = await setup({ readyDelayMs: 1 });
  try {
    await daemon.deployments.create({ name: "web", plugin: "web", replicas: 2 });
    await daemon.deployments.wait("web", 10_000);
    daemon.driver.setBehavior({ readyDelayMs: 1, workload: workload() });
    const bad = await caught(() =>
      daemon.service.create({ name: "db", network_policy: { allow_from: ["deployment:ghost"] } })
    );
    equal(bad.code, "invalid_argument");
    match(bad.message, /network_policy\.allow_from\[0\]: deployment ghost does not exist/);
    const db = await daemon.service.create({
      name: "db",
      network_policy: { allow_from: ["deployment:web"] },
    });
    deepEqual(db.network_policy.allow_from, ["deployment:web"]);
    const allowed = () =>
      currentEndpoints(daemon.service.runtime).find((e) => e.owner === "db")!.allowFrom.toSorted();
    const ips = () => daemon.deployments.get("web").members.map((m) => m.ip!).sort();
    deepEqual(allowed(), ips());
    daemon.deployments.scale("web", { replicas: 3 });
    await daemon.deployments.wait("web", 10_000);
    equal(ips().length, 3);
    deepEqual(allowed(), ips(), "the new replica is let in too");
  } finally {
    await env.dispose();
  }
});

Deno.test("kill -9 leftovers: a delete cut short goes on at the next start; a crash nobody restarted is restarted", async () => {
  const env = await makeTestEnv({ workloadPollMs: 30 });
  try {
    const first = env.open({ behavior: { workload: workload(), readyDelayMs: 5 } });
    await installWeb(env, first);
    first.start();
    await first.deployments.create({ name: "web", plugin: "web", replicas: 2 });
    await first.deployments.wait("web", 10_000);
    await first.service.create({ name: "solo", restart: "always" });
    await first.service.wait("solo", "running", 5_000);
    // What a daemon killed right after the delete's first transaction leaves: the row marked.
    first.store.deployments.update("web", { deleting: true });
    // And a VMM that died while no restarter ran.
    first.restarter.close();
    env.registry.kill(first.service.get("solo").pid!);
    await until("crashed", () => first.service.get("solo").state === "crashed");
    await first.close();

    const second = env.open({ behavior: { workload: workload(), readyDelayMs: 5 } });
    await reconcile(second.service);
    second.start();
    await until("the delete finished", () => second.deployments.list().length === 0);
    deepEqual(names(second), ["solo"], "the replicas went with it");
    await until("solo restarted", () => second.service.get("solo").state === "running");
    equal(second.service.get("solo").restart.restarts, 1);
  } finally {
    await env.dispose();
  }
});
