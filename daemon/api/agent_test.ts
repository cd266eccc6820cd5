import { deepEqual, equal, match, ok } from "node:assert/strict";
import { ErrorBody } from "../../schema/mod.ts";
import type { KestrelTarget } from "../kestrel/mod.ts";
import { makeTestEnv, testApp } from "../testing.ts";
import { VERSION } from "../version.ts";
import { createApp } from "./app.ts";

/** A stand-in for a VM's kestrel and a second server a redirect could point at. */
function standIns() {
  const seen: Headers[] = [];
  const elsewhere: string[] = [];
  const other = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    elsewhere.push(req.url);
    return new Response("followed");
  });
  const kestrel = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    seen.push(new Headers(req.headers));
    const path = new URL(req.url).pathname;
    if (path === "/v1/moved") {
      return new Response(null, {
        status: 302,
        headers: { location: `http://127.0.0.1:${other.addr.port}/steal` },
      });
    }
    if (path === "/v1/refuse") {
      return Response.json({ code: "unauthenticated", message: "no" }, {
        status: 401,
        headers: { "www-authenticate": 'Bearer realm="kestrel"' },
      });
    }
    return Response.json({ path }, {
      headers: {
        "set-cookie": "session=guest; Path=/",
        "access-control-allow-origin": "*",
        "access-control-allow-credentials": "true",
        "cache-control": "no-store",
        etag: '"e1"',
        "x-guest": "1",
      },
    });
  });
  return {
    seen,
    elsewhere,
    port: kestrel.addr.port,
    async close() {
      await kestrel.shutdown();
      await other.shutdown();
    },
  };
}

Deno.test("API → kestrel: the VM's secret goes out, caller credentials and guest headers do not, redirects are not followed", async () => {
  const env = await makeTestEnv();
  const daemon = env.open();
  const stand = standIns();
  const targets: KestrelTarget[] = [];
  const app = createApp({
    service: daemon.service,
    plugins: daemon.plugins,
    version: VERSION,
    hypervisor: {
      name: daemon.driver.name,
      version: "fake-1.0",
      kvm: false,
      acceleration: { accel: "tcg", reason: "software emulation", probe: null },
    },
    logger: env.logger,
    kestrelConnect: (target, signal) => {
      targets.push(target);
      return Deno.connect({ hostname: "127.0.0.1", port: stand.port, signal });
    },
  });
  try {
    await daemon.service.create({ name: "web" });
    await daemon.service.wait("web", "running", 5_000);
    const secret = daemon.store.vms.get("web")!.agent_secret!.reveal();

    const res = await app.request("http://localhost/api/v1/vms/web/agent/healthz", {
      headers: { authorization: "Bearer an-api-token", cookie: "op=1", accept: "application/json" },
    });
    equal(res.status, 200);
    deepEqual(await res.json(), { path: "/healthz" });
    for (const header of ["set-cookie", "access-control-allow-origin", "x-guest"]) {
      equal(res.headers.get(header), null, header);
    }
    equal(res.headers.get("etag"), '"e1"');
    equal(res.headers.get("cache-control"), "no-store");
    const [sent] = stand.seen;
    equal(sent!.get("authorization"), `Bearer ${secret}`, "the VM's secret, not the caller's");
    equal(sent!.get("cookie"), null);
    equal(sent!.get("accept"), "application/json");
    deepEqual(
      targets.map((t) => [t.ip, t.port]),
      [[daemon.service.get("web").ip, 12751]],
    );

    const moved = await app.request("http://localhost/api/v1/vms/web/agent/v1/moved");
    equal(moved.status, 302, "the guest's redirect is its answer");
    equal(moved.headers.get("location"), null, "and the API client is not sent on either");
    await moved.body?.cancel();
    deepEqual(stand.elsewhere, [], "nobody followed the redirect");

    const refused = await app.request("http://localhost/api/v1/vms/web/agent/v1/refuse");
    equal(refused.status, 502);
    const body = ErrorBody.parse(await refused.json());
    equal(body.code, "agent_unreachable");
    match(
      body.message,
      /^VM web: kestrel at [\d.]+:12751 refused the daemon's credentials \(HTTP 401\); restart the VM/,
    );

    for (const path of ["/api/v1/vms/web", "/api/v1/vms", "/openapi.json"]) {
      const text = await (await app.request(`http://localhost${path}`)).text();
      ok(!text.includes(secret), path);
      ok(!/agent_secret/.test(text), path);
    }
    ok(!env.logs.join("\n").includes(secret), "the daemon's JSON log");
  } finally {
    await stand.close();
    await env.dispose();
  }
});

Deno.test("GET /api/v1/vms/:name/stats: kestrel's stats validated; a guest answering nonsense is refused", async () => {
  const env = await makeTestEnv();
  let answer: unknown = {
    uptime_ms: 6000,
    memory: {
      total_kb: 223000,
      available_kb: 175000,
      used_kb: 48000,
      free_kb: 150000,
      cached_kb: 20000,
      shmem_kb: 3000,
    },
    kestrel: { rss_kb: 50000, hwm_kb: 61000, anon_kb: 18000, file_kb: 31000, shmem_kb: 1000 },
  };
  const kestrel = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) =>
      new URL(req.url).pathname === "/v1/stats"
        ? Response.json(answer)
        : new Response("no", { status: 404 }),
  );
  const { app, daemon } = testApp(env, {}, {
    kestrelConnect: (_target, signal) =>
      Deno.connect({ hostname: "127.0.0.1", port: kestrel.addr.port, signal }),
  });
  try {
    await daemon.service.create({ name: "web" });
    await daemon.service.wait("web", "running", 5_000);
    const res = await app.request("http://localhost/api/v1/vms/web/stats");
    equal(res.status, 200);
    deepEqual(await res.json(), answer);
    answer = { uptime_ms: "soon", memory: "lots" };
    const bad = await app.request("http://localhost/api/v1/vms/web/stats");
    equal(bad.status, 502);
    const body = ErrorBody.parse(await bad.json());
    equal(body.code, "agent_unreachable");
    match(body.message, /no valid stats/);
    const missing = await app.request("http://localhost/api/v1/vms/ghost/stats");
    equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await kestrel.shutdown();
    await env.dispose();
  }
});
