import assert from "node:assert/strict";
import { WorkloadStatus } from "../../schema/agent.ts";
import { cannotRun, startHttpd } from "../workload/testing.ts";
import { createRouter } from "./router.ts";
import { startApi } from "./server.ts";
import { workloadRoutes } from "./workload.ts";

Deno.test({
  name: "GET /v1/workload is the status; POST /v1/workload/restart replaces the process" +
    (cannotRun() === false ? "" : ` (skipped: ${cannotRun()})`),
  ignore: cannotRun() !== false,
  fn: async () => {
    const workload = await startHttpd();
    const api = startApi(createRouter(workloadRoutes(workload.sup)), {
      hostname: "127.0.0.1",
      port: 0,
    });
    const base = `http://127.0.0.1:${api.port}`;
    try {
      const before = WorkloadStatus.parse(await (await fetch(`${base}/v1/workload`)).json());
      assert.deepEqual([before.name, before.version, before.state], ["web", "1.0.0", "running"]);
      assert.equal(before.pid, workload.sup.status().pid);
      const res = await fetch(`${base}/v1/workload/restart`, { method: "POST" });
      assert.equal(res.status, 200);
      const after = WorkloadStatus.parse(await res.json());
      assert.equal(after.state, "running");
      assert.notEqual(after.pid, before.pid);
      assert.equal(after.last_exit?.signal, "SIGTERM");
      const wrong = await fetch(`${base}/v1/workload/restart`);
      assert.equal(wrong.status, 405);
      await wrong.body?.cancel();
    } finally {
      await api.stop();
      await workload.close();
    }
  },
});
