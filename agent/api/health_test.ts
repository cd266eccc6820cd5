import assert from "node:assert/strict";
import { AgentHealth, AgentHealthWithWorkload, type WorkloadStatus } from "../../schema/agent.ts";
import { KESTREL_VERSION } from "../version.ts";
import { buildHealth, healthRoute, readUptimeMs } from "./health.ts";

Deno.test("buildHealth() is a valid AgentHealth carrying the info and the uptime", () => {
  const info = {
    name: "web",
    hostname: "volant",
    status: "degraded" as const,
    ip: null,
    mac: null,
  };
  const body = AgentHealthWithWorkload.parse(buildHealth(info, 987));
  assert.deepEqual(body, {
    status: "degraded",
    name: "web",
    hostname: "volant",
    kestrel_version: KESTREL_VERSION,
    uptime_ms: 987,
    ip: null,
    mac: null,
    workload: null,
  });
  // The daemon's AgentHealth (without `workload`) still reads it.
  assert.equal(AgentHealth.parse(body).uptime_ms, 987);
});

function workload(state: WorkloadStatus["state"], healthy: boolean): WorkloadStatus {
  return {
    name: "app",
    version: "1.2.0",
    state,
    healthy,
    health: {
      kind: "http",
      status: healthy ? "healthy" : "unhealthy",
      failures: healthy ? 0 : 3,
      successes: healthy ? 1 : 0,
      last_check: "2026-01-01T00:00:00.000Z",
      last_error: healthy ? null : "GET http://127.0.0.1:80/health answered 500",
    },
    pid: state === "running" ? 42 : null,
    restarts: 2,
    last_exit: null,
    started_at: "2026-01-01T00:00:00.000Z",
    since: "2026-01-01T00:00:00.000Z",
    next_start_at: null,
    last_error: null,
  };
}

Deno.test("buildHealth(): ok only when the boot is fine and the workload is healthy", () => {
  const info = { name: "web", hostname: "web", status: "ok" as const, ip: null, mac: null };
  const good = AgentHealthWithWorkload.parse(buildHealth(info, 1, workload("running", true)));
  assert.equal(good.status, "ok");
  assert.deepEqual(good.workload, workload("running", true));
  assert.equal(buildHealth(info, 1, workload("running", false)).status, "degraded");
  assert.equal(buildHealth(info, 1, workload("backoff", false)).status, "degraded");
  const bootProblem = { ...info, status: "degraded" as const };
  assert.equal(buildHealth(bootProblem, 1, workload("running", true)).status, "degraded");
});

Deno.test("healthRoute() reads the workload's status on every request", async () => {
  let current = workload("running", true);
  const route = healthRoute(
    { name: "a", hostname: "a", status: "ok", ip: null, mac: null },
    () => Promise.resolve(1),
    () => current,
  );
  const req = new Request("http://kestrel/healthz");
  const first = await (await route.handle(req, new URL(req.url))).json();
  current = workload("backoff", false);
  const second = await (await route.handle(req, new URL(req.url))).json();
  assert.deepEqual([first.status, first.workload.state], ["ok", "running"]);
  assert.deepEqual([second.status, second.workload.state], ["degraded", "backoff"]);
});

Deno.test("healthRoute() reads the clock on every request", async () => {
  let now = 100;
  const route = healthRoute(
    { name: "a", hostname: "a", status: "ok", ip: "10.0.0.2", mac: "02:00:00:00:00:01" },
    () => Promise.resolve(now += 50),
  );
  assert.deepEqual([route.method, route.path], ["GET", "/healthz"]);
  const req = new Request("http://kestrel/healthz");
  const first = await (await route.handle(req, new URL(req.url))).json();
  const second = await (await route.handle(req, new URL(req.url))).json();
  assert.deepEqual([first.uptime_ms, second.uptime_ms], [150, 200]);
  assert.equal(second.ip, "10.0.0.2");
});

Deno.test("readUptimeMs() reads this machine's /proc/uptime", async () => {
  const a = await readUptimeMs();
  const text = await Deno.readTextFile("/proc/uptime");
  const b = await readUptimeMs();
  const direct = Math.round(Number(text.split(" ")[0]) * 1000);
  assert.ok(a <= direct + 10 && direct <= b + 10, `${a} ${direct} ${b}`);
});
