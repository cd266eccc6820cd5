import assert from "node:assert/strict";
import {
  alive,
  cannotRun,
  events,
  freePort,
  waitForStatus,
  waitUntil,
  withSupervisor,
} from "./testing.ts";

const skip = cannotRun();
/** Why these tests are skipped here, for their names (empty when they run). */
const SKIPPED = skip === false ? "" : ` (skipped: ${skip})`;
const FAST = { initial_ms: 20, multiplier: 2, max_ms: 1000 };

Deno.test({
  name:
    "Supervisor: http health turns unhealthy after the threshold and healthy again; no restart" +
    SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const port = freePort();
    await withSupervisor({
      workload: {
        entrypoint: ["/bin/httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", "/www"],
        base_url: `http://127.0.0.1:${port}`,
      },
      health_check: {
        kind: "http",
        endpoint: "/ok.html",
        interval_ms: 100,
        timeout_ms: 1000,
        healthy_threshold: 1,
        unhealthy_threshold: 2,
        start_period_ms: 0,
      },
    }, async (sup, root) => {
      const up = await sup.start();
      assert.equal(up.healthy, false, "healthy before any probe passed");
      const healthy = await waitForStatus(sup, "healthy", (s) => s.healthy);
      assert.equal(healthy.health.status, "healthy");
      await Deno.remove(`${root}/www/ok.html`);
      const sick = await waitForStatus(sup, "unhealthy", (s) => s.health.status === "unhealthy");
      assert.equal(sick.healthy, false);
      assert.ok(sick.health.failures >= 2);
      assert.match(sick.health.last_error ?? "", /answered 404/);
      assert.deepEqual([sick.state, sick.pid, sick.restarts], ["running", up.pid, 0]);
      await Deno.writeTextFile(`${root}/www/ok.html`, "ok\n");
      const back = await waitForStatus(sup, "healthy again", (s) => s.healthy);
      assert.deepEqual([back.pid, back.restarts], [up.pid, 0]);
      const said = events(sup);
      const unhealthyAt = said.findIndex((e) => e.startsWith("unhealthy: GET"));
      assert.ok(unhealthyAt > 0 && said.indexOf("healthy", unhealthyAt) > unhealthyAt);
    });
  },
});

Deno.test({
  name: "Supervisor: restartOnUnhealthy restarts a workload whose check keeps failing" + SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withSupervisor({
      workload: { entrypoint: ["/bin/sleep", "600"], base_url: `http://127.0.0.1:${freePort()}` },
      restart: { policy: "on-failure", backoff: FAST },
      health_check: {
        kind: "tcp",
        interval_ms: 100,
        timeout_ms: 200,
        unhealthy_threshold: 1,
        start_period_ms: 0,
      },
    }, async (sup) => {
      const up = await sup.start();
      const again = await waitForStatus(sup, "a restart", (s) => s.restarts >= 1);
      assert.equal(again.last_exit?.signal, "SIGTERM");
      assert.ok(up.pid !== null && !alive(up.pid));
      assert.ok(events(sup).some((e) => e.includes("because it is unhealthy")));
    }, { restartOnUnhealthy: true }),
});

Deno.test({
  name: "Supervisor: output is echoed line by line with the plugin's prefix" + SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const written: string[] = [];
    const sink = {
      write: (d: Uint8Array) => {
        written.push(new TextDecoder().decode(d));
        return Promise.resolve(d.byteLength);
      },
    };
    await withSupervisor({
      name: "web",
      workload: { entrypoint: ["/bin/sh", "-c", "echo out; echo err >&2"], base_url: "http://x:1" },
      restart: { policy: "never" },
    }, async (sup) => {
      await sup.start();
      await waitForStatus(sup, "exited", (s) => s.state === "exited");
      await waitUntil("the echo", () => written.join("").split("\n").length >= 3);
      const lines = written.join("").split("\n").filter((l) => l !== "").sort();
      assert.deepEqual(lines, ["[web:err] err", "[web] out"]);
      const streams = sup.logs.read().filter((l) => l.stream !== "kestrel").map((l) => l.stream);
      assert.deepEqual(streams.sort(), ["stderr", "stdout"]);
    }, { echo: sink });
  },
});
