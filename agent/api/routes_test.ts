import assert from "node:assert/strict";
import { AgentHealthWithWorkload, LogLine, WorkloadStatus } from "../../schema/agent.ts";
import { ErrorBody } from "../../schema/error.ts";
import { Action } from "../../schema/manifest.ts";
import { cannotRun, startHttpd } from "../workload/testing.ts";
import { createRouter } from "./router.ts";
import { apiRoutes } from "./routes.ts";
import { startApi } from "./server.ts";

const info = { name: "vm", hostname: "vm", status: "ok" as const, ip: null, mac: null };
const uptime = () => Promise.resolve(1000);

Deno.test("apiRoutes() without a workload: /healthz says workload null, /v1/* is not proxied", async () => {
  const api = startApi(createRouter(apiRoutes(info, { uptime })), {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const base = `http://127.0.0.1:${api.port}`;
    const health = AgentHealthWithWorkload.parse(await (await fetch(`${base}/healthz`)).json());
    assert.deepEqual([health.status, health.workload], ["ok", null]);
    const other = await fetch(`${base}/v1/anything`);
    assert.equal(other.status, 404);
    assert.match(ErrorBody.parse(await other.json()).message, /^No route GET \/v1\/anything/);
  } finally {
    await api.stop();
  }
});

Deno.test({
  name: "apiRoutes() with a workload: healthz, kestrel's own /v1 routes first, the rest proxied" +
    (cannotRun() === false ? "" : ` (skipped: ${cannotRun()})`),
  ignore: cannotRun() !== false,
  fn: async () => {
    const workload = await startHttpd({
      hello: Action.parse({ method: "GET", path: "/index.html" }),
    });
    const api = startApi(createRouter(apiRoutes(info, { uptime, workload: workload.sup })), {
      hostname: "127.0.0.1",
      port: 0,
    });
    const base = `http://127.0.0.1:${api.port}`;
    try {
      const health = AgentHealthWithWorkload.parse(await (await fetch(`${base}/healthz`)).json());
      assert.equal(health.status, "ok");
      assert.deepEqual(
        [health.workload?.name, health.workload?.state, health.workload?.healthy],
        ["web", "running", true],
      );
      const status = WorkloadStatus.parse(await (await fetch(`${base}/v1/workload`)).json());
      assert.equal(status.pid, health.workload?.pid);
      const logs = await (await fetch(`${base}/v1/logs`)).text();
      assert.ok(
        LogLine.parse(JSON.parse(logs.split("\n")[0] ?? "")).line.startsWith("started pid"),
      );
      const netCheck = await fetch(`${base}/v1/net/check`);
      assert.equal(netCheck.status, 405, "GET on kestrel's own path went to the workload");
      await netCheck.body?.cancel();
      const action = await fetch(`${base}/v1/actions/hello`, { method: "POST" });
      assert.equal(await action.text(), "index\n");
      assert.equal(await (await fetch(`${base}/v1/ok.html`)).text(), "ok\n");
      await workload.sup.stop(500);
      const stopped = AgentHealthWithWorkload.parse(await (await fetch(`${base}/healthz`)).json());
      assert.deepEqual([stopped.status, stopped.workload?.state], ["degraded", "stopped"]);
    } finally {
      await api.stop();
      await workload.close();
    }
  },
});
