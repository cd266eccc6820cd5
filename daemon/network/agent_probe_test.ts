import { deepEqual, equal, match, ok } from "node:assert/strict";
import type { AgentHealth } from "../../schema/mod.ts";
import { parseHttpResponse, probeAgent } from "./agent_probe.ts";

const HEALTH: AgentHealth = {
  status: "ok",
  name: "web",
  hostname: "web",
  kestrel_version: "0.1.0",
  uptime_ms: 812,
  ip: "127.0.0.1",
  mac: "02:aa:bb:cc:dd:ee",
};

async function withServer(
  handler: (req: Request) => Response | Promise<Response>,
  fn: (port: number) => Promise<void>,
): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  try {
    await fn(server.addr.port);
  } finally {
    await server.shutdown();
  }
}

Deno.test("probeAgent: a 200 with an AgentHealth body, plain or chunked", async () => {
  const paths: string[] = [];
  await withServer((req) => {
    paths.push(new URL(req.url).pathname);
    return Response.json(HEALTH);
  }, async (port) => {
    const probe = await probeAgent("127.0.0.1", { port, timeoutMs: 2_000 });
    deepEqual(probe, { ok: true, health: HEALTH });
  });
  deepEqual(paths, ["/healthz"]);
  await withServer(() => {
    const body = new TextEncoder().encode(JSON.stringify(HEALTH));
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(body.subarray(0, 10));
        c.enqueue(body.subarray(10));
        c.close();
      },
    });
    return new Response(stream, { headers: { "content-type": "application/json" } });
  }, async (port) => {
    const probe = await probeAgent("127.0.0.1", { port, timeoutMs: 2_000 });
    ok(probe.ok, JSON.stringify(probe));
  });
});

Deno.test("probeAgent: errors, wrong bodies and silence are reasons, not exceptions", async () => {
  await withServer(() => new Response("busy", { status: 503 }), async (port) => {
    deepEqual(await probeAgent("127.0.0.1", { port, timeoutMs: 2_000 }), {
      ok: false,
      reason: "HTTP 503",
    });
  });
  await withServer(() => new Response("<html>"), async (port) => {
    deepEqual(await probeAgent("127.0.0.1", { port, timeoutMs: 2_000 }), {
      ok: false,
      reason: "the body is not JSON",
    });
  });
  await withServer(() => Response.json({ status: "ok" }), async (port) => {
    deepEqual(await probeAgent("127.0.0.1", { port, timeoutMs: 2_000 }), {
      ok: false,
      reason: "the body is not an AgentHealth",
    });
  });
  // A port nobody listens on.
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const freePort = closed.addr.port;
  closed.close();
  deepEqual(await probeAgent("127.0.0.1", { port: freePort, timeoutMs: 2_000 }), {
    ok: false,
    reason: "connection refused",
  });
  // A listener that accepts and never answers: the deadline ends the probe.
  const mute = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of mute) held.push(conn);
    } catch {
      // Closed.
    }
  })();
  try {
    const began = performance.now();
    const probe = await probeAgent("127.0.0.1", { port: mute.addr.port, timeoutMs: 150 });
    const took = performance.now() - began;
    deepEqual(probe, { ok: false, reason: "no answer within 150 ms" });
    ok(took >= 140, `took ${took} ms`);
  } finally {
    mute.close();
    for (const c of held) c.close();
    await accepting;
  }
  const aborted = new AbortController();
  aborted.abort();
  const probe = await probeAgent("127.0.0.1", {
    port: freePort,
    timeoutMs: 2_000,
    signal: aborted.signal,
  });
  deepEqual(probe, { ok: false, reason: "aborted" });
});

Deno.test("parseHttpResponse: status, content-length, chunked, incomplete", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  deepEqual(parseHttpResponse(enc("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}junk")), {
    status: 200,
    body: "{}",
  });
  deepEqual(
    parseHttpResponse(
      enc(
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n',
      ),
    ),
    { status: 200, body: '{"a":1}' },
  );
  deepEqual(parseHttpResponse(enc("HTTP/1.0 404 Not Found\r\n\r\nnope")), {
    status: 404,
    body: "nope",
  });
  equal(parseHttpResponse(enc("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}")), undefined);
  equal(parseHttpResponse(enc("SSH-2.0-OpenSSH\r\n\r\n")), undefined);
  match(String(parseHttpResponse(enc("HTTP/1.1 200 OK\r\n"))), /undefined/);
});
