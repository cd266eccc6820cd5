import assert from "node:assert/strict";
import { AgentHealth, NetCheckResult } from "../../schema/agent.ts";
import { ErrorBody, VolantError } from "../../schema/error.ts";
import { KESTREL_VERSION } from "../version.ts";
import type { AgentInfo } from "./health.ts";
import { createRouter } from "./router.ts";
import { apiRoutes } from "./routes.ts";
import { startApi } from "./server.ts";

const INFO: AgentInfo = {
  name: "web",
  hostname: "web-1",
  status: "ok",
  ip: "10.1.2.10",
  mac: "52:54:00:12:34:56",
};

/** kestrel's API on a random localhost port, stopped after `fn`. */
async function withApi(fn: (base: string) => Promise<void>, uptimeMs = 4321): Promise<void> {
  const api = startApi(createRouter(apiRoutes(INFO, { uptime: () => Promise.resolve(uptimeMs) })), {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    assert.equal(api.hostname, "127.0.0.1");
    assert.ok(api.port > 0);
    await fn(`http://127.0.0.1:${api.port}`);
  } finally {
    await api.stop();
  }
}

const postJson = (url: string, body: string) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });

Deno.test("API: GET /healthz answers AgentHealth from the boot info and the clock", async () => {
  await withApi(async (base) => {
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    assert.deepEqual(AgentHealth.parse(await res.json()), {
      status: "ok",
      name: "web",
      hostname: "web-1",
      kestrel_version: KESTREL_VERSION,
      uptime_ms: 4321,
      ip: "10.1.2.10",
      mac: "52:54:00:12:34:56",
    });
  });
});

Deno.test("API: unknown routes are 404 JSON, wrong methods 405", async () => {
  await withApi(async (base) => {
    const missing = await fetch(`${base}/v2/nothing`);
    assert.equal(missing.status, 404);
    const body = ErrorBody.parse(await missing.json());
    assert.equal(body.code, "not_found");
    assert.match(body.message, /No route GET \/v2\/nothing; kestrel serves GET \/healthz/);
    const wrong = await fetch(`${base}/v1/net/check`);
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "POST");
    await wrong.body?.cancel();
  });
});

Deno.test("API: POST /v1/net/check rejects a bad body with 400 naming the field", async () => {
  await withApi(async (base) => {
    const cases: Array<[string, RegExp]> = [
      ["", /body is missing/],
      ["{", /not valid JSON/],
      ["{}", /^Invalid input: url: required \(string\)$/],
      ['{"url":"ftp://x/"}', /^Invalid input: url: must be an http:\/\/ URL$/],
      [
        '{"url":"http://x/","timeout_ms":60000}',
        /^Invalid input: timeout_ms: must be at most 30000$/,
      ],
      ['{"url":"http://x/","method":"PUT"}', /^Invalid input: method: unknown field$/],
    ];
    for (const [body, message] of cases) {
      const res = await postJson(`${base}/v1/net/check`, body);
      assert.equal(res.status, 400, body);
      const error = ErrorBody.parse(await res.json());
      assert.equal(error.code, "invalid_argument");
      assert.match(error.message, message, body);
    }
  });
});

Deno.test("API: POST /v1/net/check fetches another server and reports it", async () => {
  let seen = "";
  const target = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen = `${req.method} ${new URL(req.url).pathname}`;
    return new Response("target says hi", { headers: { "x-test": "1" } });
  });
  try {
    await withApi(async (base) => {
      const url = `http://127.0.0.1:${target.addr.port}/probe`;
      const res = await postJson(`${base}/v1/net/check`, JSON.stringify({ url, timeout_ms: 5000 }));
      assert.equal(res.status, 200);
      const result = NetCheckResult.parse(await res.json());
      assert.deepEqual({ ...result, ms: 0 }, {
        ok: true,
        status: 200,
        body: "target says hi",
        error: null,
        ms: 0,
      });
      assert.equal(seen, "GET /probe");

      // The API checking itself, and a port nobody listens on.
      const self = NetCheckResult.parse(
        await (await postJson(`${base}/v1/net/check`, JSON.stringify({ url: `${base}/healthz` })))
          .json(),
      );
      assert.equal(AgentHealth.parse(JSON.parse(self.body!)).name, "web");
    });
  } finally {
    await target.shutdown();
  }
});

Deno.test("startApi(): stop() closes the port; a taken port is a network_error", async () => {
  const api = startApi(() => new Response("x"), { hostname: "127.0.0.1", port: 0 });
  assert.throws(
    () => startApi(() => new Response("y"), { hostname: "127.0.0.1", port: api.port }),
    (err: VolantError) =>
      err.code === "network_error" &&
      err.message.startsWith(`cannot serve the API on 127.0.0.1:${api.port}: `),
  );
  assert.equal(await (await fetch(`http://127.0.0.1:${api.port}/`)).text(), "x");
  await api.stop();
  await api.stop(); // idempotent
  await assert.rejects(() => Deno.connect({ hostname: "127.0.0.1", port: api.port }));
});
