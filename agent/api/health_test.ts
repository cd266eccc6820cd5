import assert from "node:assert/strict";
import { AgentHealth } from "../../schema/agent.ts";
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
  const body = AgentHealth.parse(buildHealth(info, 987));
  assert.deepEqual(body, {
    status: "degraded",
    name: "web",
    hostname: "volant",
    kestrel_version: KESTREL_VERSION,
    uptime_ms: 987,
    ip: null,
    mac: null,
  });
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
