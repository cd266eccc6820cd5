import assert from "node:assert/strict";
import type { WorkloadHealth } from "../../schema/agent.ts";
import { HealthCheck } from "../../schema/manifest.ts";
import { BUSYBOX, cannotRun, freePort, makeRoot, waitUntil } from "./testing.ts";
import {
  execProbe,
  HealthMonitor,
  httpProbe,
  probeFor,
  type ProbeResult,
  tcpProbe,
} from "./health.ts";

const skip = cannotRun();
/** Why these tests are skipped here, for their names (empty when they run). */
const SKIPPED = skip === false ? "" : ` (skipped: ${skip})`;

/** A monitor whose probe answers from `script` (then keeps the last answer), on a fake clock. */
function scripted(check: Partial<HealthCheck>, script: boolean[], clock = { now: 0 }) {
  const parsed = HealthCheck.parse({ kind: "tcp", interval_ms: 100, ...check });
  const seen: WorkloadHealth["status"][] = [];
  let i = 0;
  const probe = (): Promise<ProbeResult> => {
    const ok = script[Math.min(i++, script.length - 1)] ?? true;
    clock.now += 100;
    return Promise.resolve(ok ? { ok } : { ok, error: `probe ${i} failed` });
  };
  const monitor = new HealthMonitor(parsed, probe, {
    now: () => clock.now,
    onChange: (h) => seen.push(h.status),
  });
  return { monitor, seen, probes: () => i };
}

Deno.test("HealthMonitor: thresholds decide healthy and unhealthy", async () => {
  const { monitor, seen, probes } = scripted(
    { healthy_threshold: 2, unhealthy_threshold: 3, start_period_ms: 0, interval_ms: 100 },
    [true, true, false, false, true, false, false, false, true, true],
  );
  monitor.start();
  try {
    await waitUntil("ten probes", () => probes() >= 10, 10_000);
    await waitUntil("the verdicts", () => seen.length >= 3, 5000);
    assert.deepEqual(seen.slice(0, 3), ["healthy", "unhealthy", "healthy"]);
  } finally {
    monitor.stop();
  }
  assert.equal(monitor.state.status, "unknown", "stop() resets the verdict");
});

Deno.test("HealthMonitor: failures in the start period do not count", async () => {
  const clock = { now: 0 };
  const { monitor, seen, probes } = scripted(
    { unhealthy_threshold: 2, start_period_ms: 450, interval_ms: 100 },
    [false, false, false, false, false, false, false],
    clock,
  );
  monitor.start();
  try {
    await waitUntil("the unhealthy verdict", () => seen.includes("unhealthy"), 10_000);
    // Probes at t=100..400 fall in the start period; t=500 and t=600 are the two that count.
    assert.equal(probes(), 6);
    assert.equal(monitor.state.failures, 2);
    assert.equal(monitor.state.last_error, "probe 6 failed");
  } finally {
    monitor.stop();
  }
});

Deno.test("HealthMonitor without a check says none and never probes", async () => {
  let probed = 0;
  const monitor = new HealthMonitor(undefined, () => Promise.resolve({ ok: !!++probed }));
  monitor.start();
  await new Promise((r) => setTimeout(r, 50));
  monitor.stop();
  assert.deepEqual([monitor.state.kind, monitor.state.status, probed], ["none", "none", 0]);
});

Deno.test("httpProbe(): 2xx and 3xx pass; 4xx, 5xx, refused and slow answers fail", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/slow") await new Promise((r) => setTimeout(r, 1000));
    const status = Number(path.slice(1)) || 200;
    return new Response(status === 302 ? null : "x", {
      status,
      headers: status === 302 ? { location: "/elsewhere" } : {},
    });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    assert.deepEqual(await httpProbe(`${base}/200`, 1000)(), { ok: true });
    assert.deepEqual(await httpProbe(`${base}/302`, 1000)(), { ok: true });
    assert.deepEqual(await httpProbe(`${base}/404`, 1000)(), {
      ok: false,
      error: `GET ${base}/404 answered 404`,
    });
    assert.equal((await httpProbe(`${base}/503`, 1000)()).ok, false);
    assert.deepEqual(await httpProbe(`${base}/slow`, 100)(), {
      ok: false,
      error: `GET ${base}/slow timed out after 100 ms`,
    });
  } finally {
    await server.shutdown();
  }
  const refused = await httpProbe(`http://127.0.0.1:${freePort()}/`, 1000)();
  assert.equal(refused.ok, false);
  assert.match(refused.error ?? "", /refused/i);
});

Deno.test("tcpProbe(): a listening port passes, a closed one fails", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepting = (async () => {
    for await (const conn of listener) conn.close();
  })();
  try {
    assert.deepEqual(await tcpProbe(port, 1000)(), { ok: true });
  } finally {
    listener.close();
    await accepting.catch(() => {});
  }
  const closed = await tcpProbe(freePort(), 1000)();
  assert.equal(closed.ok, false);
  assert.match(closed.error ?? "", /^connecting to 127\.0\.0\.1:\d+: .*refused/i);
});

Deno.test({
  name:
    "execProbe(): runs in the workload's root; exit 0 passes, others fail, slow ones are killed" +
    SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const root = await makeRoot();
    const place = { root, busybox: BUSYBOX };
    try {
      await Deno.writeTextFile(`${root}/srv/ready`, "");
      const inRoot = execProbe(["/bin/sh", "-c", "test -f /srv/ready"], { env: {} }, place, 2000);
      assert.deepEqual(await inRoot(), { ok: true });
      await Deno.remove(`${root}/srv/ready`);
      const gone = await inRoot();
      assert.equal(gone.ok, false);
      assert.match(gone.error ?? "", /test -f \/srv\/ready exited 1/);
      const said = await execProbe(
        ["/bin/sh", "-c", "echo not ready >&2; exit 2"],
        {
          env: {},
        },
        place,
        2000,
      )();
      assert.deepEqual(said, {
        ok: false,
        error: "/bin/sh -c echo not ready >&2; exit 2 exited 2: not ready",
      });
      const started = performance.now();
      const slow = await execProbe(["/bin/sleep", "30"], { env: {} }, place, 200)();
      assert.deepEqual(slow, { ok: false, error: "/bin/sleep 30 timed out after 200 ms" });
      assert.ok(performance.now() - started < 20_000, "the slow probe was not killed");
      const bad = await execProbe(["/bin/nope"], { env: {} }, place, 200)();
      assert.match(bad.error ?? "", /^cannot run \/bin\/nope: workload\.entrypoint\[0\]/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("probeFor(): http joins base_url and endpoint, tcp defaults to base_url's port", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    return new Response(null, { status: new URL(req.url).pathname === "/health" ? 204 : 500 });
  });
  const base = `http://127.0.0.1:${server.addr.port}/`;
  try {
    const http = HealthCheck.parse({ kind: "http", endpoint: "/health" });
    assert.deepEqual(await probeFor(http, base, { env: {} }, { root: "/" })(), { ok: true });
    const tcp = HealthCheck.parse({ kind: "tcp" });
    assert.deepEqual(await probeFor(tcp, base, { env: {} }, { root: "/" })(), { ok: true });
    const other = HealthCheck.parse({ kind: "tcp", port: freePort() });
    assert.equal((await probeFor(other, base, { env: {} }, { root: "/" })()).ok, false);
  } finally {
    await server.shutdown();
  }
});
