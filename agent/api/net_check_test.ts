import assert from "node:assert/strict";
import { NetCheckRequest, NetCheckResult } from "../../schema/agent.ts";
import { NET_CHECK_BODY_BYTES, runNetCheck } from "./net_check.ts";

/** A local HTTP server for the checks to reach; stopped after `fn`. */
async function withTarget(
  fn: (base: string) => Promise<void>,
): Promise<void> {
  const big = "é".repeat(3000); // 6000 bytes, 2 bytes per character
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/ok") return new Response("hello from the target");
    if (path === "/big") return new Response(big);
    if (path === "/missing") return new Response("no such thing", { status: 404 });
    if (path === "/moved") return new Response(null, { status: 302, headers: { location: "/ok" } });
    if (path === "/slow") {
      await new Promise((r) => setTimeout(r, 1500));
      return new Response("late");
    }
    return new Response("?", { status: 500 });
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}

const check = (url: string, timeout_ms = 3000) => runNetCheck({ url, timeout_ms });

Deno.test("NetCheckRequest: an http URL, a bounded timeout with a default", () => {
  assert.deepEqual(NetCheckRequest.parse({ url: "http://10.0.0.2:8080/healthz" }), {
    url: "http://10.0.0.2:8080/healthz",
    timeout_ms: 3000,
  });
  for (
    const bad of [
      {},
      { url: "https://10.0.0.2/" },
      { url: "http://" },
      { url: "10.0.0.2" },
      { url: "http://x/", timeout_ms: 0 },
      { url: "http://x/", timeout_ms: 30_001 },
      { url: "http://x/", timeout_ms: 1.5 },
      { url: "http://x/", method: "POST" },
    ]
  ) {
    assert.equal(NetCheckRequest.safeParse(bad).success, false, JSON.stringify(bad));
  }
});

Deno.test("runNetCheck() reports a 2xx answer with its body", async () => {
  await withTarget(async (base) => {
    const r = NetCheckResult.parse(await check(`${base}/ok`));
    assert.equal(r.ok, true);
    assert.equal(r.status, 200);
    assert.equal(r.body, "hello from the target");
    assert.equal(r.error, null);
    assert.ok(r.ms >= 0);
  });
});

Deno.test("runNetCheck() keeps the first 4 KiB of the body, never half a character", async () => {
  await withTarget(async (base) => {
    const r = await check(`${base}/big`);
    assert.equal(r.ok, true);
    assert.equal(r.body, "é".repeat(NET_CHECK_BODY_BYTES / 2));
    assert.equal(new TextEncoder().encode(r.body!).length, NET_CHECK_BODY_BYTES);
  });
});

Deno.test("runNetCheck(): a non-2xx answer is not ok but reachable; redirects are not followed", async () => {
  await withTarget(async (base) => {
    const missing = await check(`${base}/missing`);
    assert.deepEqual([missing.ok, missing.status, missing.body, missing.error], [
      false,
      404,
      "no such thing",
      null,
    ]);
    const moved = await check(`${base}/moved`);
    assert.deepEqual([moved.ok, moved.status], [false, 302]);
  });
});

Deno.test("runNetCheck(): a refused connection and a timeout are errors, not throws", async () => {
  // A port that was just free: bind, note it, close.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const refused = await check(`http://127.0.0.1:${port}/`);
  assert.equal(refused.ok, false);
  assert.equal(refused.status, null);
  assert.match(refused.error ?? "", /refused|connect/i);

  await withTarget(async (base) => {
    const slow = await check(`${base}/slow`, 200);
    assert.equal(slow.ok, false);
    assert.equal(slow.status, null);
    assert.equal(slow.error, "timed out after 200 ms waiting for an answer");
    assert.ok(slow.ms >= 190 && slow.ms < 1500, `${slow.ms} ms`);
  });
});
