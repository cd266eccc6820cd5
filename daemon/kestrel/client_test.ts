import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { type AgentHealth, ErrorBody, VolantError } from "../../schema/mod.ts";
import {
  isKestrelRefusal,
  KESTREL_LIMITS,
  kestrelHealth,
  type KestrelLimits,
  kestrelRequest,
} from "./client.ts";
import type { KestrelTarget } from "./target.ts";
import { AgentSecret } from "./secret.ts";

const SECRET = AgentSecret.generate();

const HEALTH: AgentHealth = {
  status: "ok",
  name: "web",
  hostname: "web",
  kestrel_version: "0.1.0",
  uptime_ms: 812,
  ip: "127.0.0.1",
  mac: "02:aa:bb:cc:dd:ee",
};

const SMALL: KestrelLimits = {
  headMs: 2_000,
  totalMs: 5_000,
  maxBytes: 1024,
  bytesPerSecond: null,
};

/** A stand-in kestrel (Deno.serve on localhost) for the duration of `fn`. */
async function withServer(
  handler: (req: Request) => Response | Promise<Response>,
  fn: (target: KestrelTarget) => Promise<void>,
): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  try {
    await fn({ ip: "127.0.0.1", port: server.addr.port, secret: SECRET });
  } finally {
    await server.shutdown();
  }
}

/** A raw TCP stand-in: `answer` writes whatever it wants on each connection. */
async function withRaw(
  answer: (conn: Deno.Conn) => Promise<void>,
  fn: (target: KestrelTarget) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      served.push(
        answer(conn).catch(() => {}).finally(() => {
          try {
            conn.close();
          } catch {
            // Closed by the answer.
          }
        }),
      );
    }
  })();
  try {
    await fn({ ip: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port, secret: SECRET });
  } finally {
    listener.close();
    await accepting.catch(() => {});
    await Promise.all(served);
  }
}

const encoder = new TextEncoder();

async function write(conn: Deno.Conn, text: string | Uint8Array): Promise<void> {
  const bytes = typeof text === "string" ? encoder.encode(text) : text;
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

/** Reads the request head off a raw connection. */
async function readHead(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

function agentError(pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    ok(err instanceof VolantError, String(err));
    equal(err.code, "agent_unreachable");
    match(err.message, pattern);
    return true;
  };
}

Deno.test("kestrel client: sends the VM's secret, the method, path and body, and allow-listed headers only", async () => {
  const seen: Array<{ method: string; url: string; headers: Headers; body: string }> = [];
  await withServer(async (req) => {
    seen.push({
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: await req.text(),
    });
    return Response.json({ ok: true });
  }, async (target) => {
    const res = await kestrelRequest(target, "/v1/actions/reload?x=1", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json",
        authorization: "Bearer the-api-clients-own-token",
        cookie: "session=operator",
        "x-forwarded-for": "10.9.9.9",
        "proxy-authorization": "Basic eDp5",
      },
      body: encoder.encode('{"a":1}'),
    }, SMALL);
    equal(res.status, 200);
    deepEqual(await res.json(), { ok: true });
  });
  equal(seen.length, 1);
  const [req] = seen;
  equal(req!.method, "POST");
  match(req!.url, /^http:\/\/127\.0\.0\.1:\d+\/v1\/actions\/reload\?x=1$/);
  equal(req!.body, '{"a":1}');
  equal(req!.headers.get("authorization"), `Bearer ${SECRET.reveal()}`, "the VM's secret");
  equal(req!.headers.get("content-type"), "application/json");
  equal(req!.headers.get("accept"), "application/json");
  for (const dropped of ["cookie", "x-forwarded-for", "proxy-authorization"]) {
    equal(req!.headers.get(dropped), null, dropped);
  }
});

Deno.test("kestrel client: a 302 is answered as is, never followed, and without its Location", async () => {
  const elsewhere: string[] = [];
  await withServer((req) => {
    elsewhere.push(req.url);
    return new Response("stolen");
  }, async (other) => {
    await withServer(() =>
      new Response(null, {
        status: 302,
        headers: { location: `http://127.0.0.1:${other.port}/steal`, "x-kestrel": "1" },
      }), async (target) => {
      const res = await kestrelRequest(target, "/v1/logs", {}, SMALL);
      equal(res.status, 302);
      equal(res.headers.get("location"), null, "no Location for the API client to follow");
      equal(await res.text(), "");
    });
  });
  deepEqual(elsewhere, [], "the redirect target got no request");
});

Deno.test("kestrel client: only allow-listed response headers reach the API client", async () => {
  await withServer(() =>
    new Response("hi", {
      headers: {
        "content-type": "text/plain; charset=utf-8",
        "cache-control": "no-store",
        etag: '"v1"',
        "last-modified": "Tue, 01 Jul 2025 10:00:00 GMT",
        "set-cookie": "session=guest",
        "access-control-allow-origin": "*",
        "access-control-allow-credentials": "true",
        "www-authenticate": 'Basic realm="app"',
        location: "http://169.254.169.254/",
        "x-powered-by": "evil",
        "strict-transport-security": "max-age=1",
        connection: "keep-alive, x-hop",
        "x-hop": "1",
      },
    }), async (target) => {
    const res = await kestrelRequest(target, "/v1/page", {}, SMALL);
    deepEqual([...res.headers.keys()].sort(), [
      "cache-control",
      "content-length",
      "content-type",
      "etag",
      "last-modified",
    ]);
    equal(await res.text(), "hi");
    ok(!isKestrelRefusal(res));
  });
});

Deno.test("kestrel client: kestrel's own 401 is recognisable; a workload's is not", async () => {
  await withServer(
    (req) =>
      new URL(req.url).pathname === "/healthz"
        ? Response.json({ code: "unauthenticated", message: "no" }, {
          status: 401,
          headers: { "www-authenticate": 'Bearer realm="kestrel"' },
        })
        : new Response("app says no", {
          status: 401,
          headers: { "www-authenticate": 'Basic realm="app"' },
        }),
    async (target) => {
      const own = await kestrelRequest(target, "/healthz", {}, SMALL);
      ok(isKestrelRefusal(own));
      equal(ErrorBody.parse(await own.json()).code, "unauthenticated");
      const app = await kestrelRequest(target, "/v1/x", {}, SMALL);
      equal(app.status, 401);
      ok(!isKestrelRefusal(app));
      equal(app.headers.get("www-authenticate"), null);
      await app.body?.cancel();
    },
  );
});

Deno.test("kestrel client: a body over the bound fails, declared or streamed", async () => {
  await withServer(() => new Response("x".repeat(4096)), async (target) => {
    await rejects(
      kestrelRequest(target, "/v1/big", {}, SMALL),
      agentError(
        /^kestrel at 127\.0\.0\.1:\d+: bad answer: the body is 4096 bytes, more than the 1024 allowed$/,
      ),
    );
  });
  await withServer(() => {
    const chunk = encoder.encode("y".repeat(512));
    let sent = 0;
    return new Response(
      new ReadableStream({
        pull(c) {
          if (sent++ < 8) c.enqueue(chunk);
          else c.close();
        },
      }),
    );
  }, async (target) => {
    const res = await kestrelRequest(target, "/v1/big", {}, SMALL);
    await rejects(res.text(), agentError(/the body is longer than the 1024 bytes allowed/));
  });
  // The /healthz probe reads at most 64 KiB.
  await withServer(() => Response.json({ ...HEALTH, pad: "z".repeat(70_000) }), async (target) => {
    const probe = await kestrelHealth(target, { timeoutMs: 2_000 });
    ok(!probe.ok && /more than the 65536 allowed/.test(probe.reason), JSON.stringify(probe));
  });
});

Deno.test("kestrel client: an oversized or malformed head is refused", async () => {
  await withRaw(async (conn) => {
    await readHead(conn);
    await write(conn, `HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(40_000)}\r\n\r\n`);
  }, async (target) => {
    await rejects(
      kestrelRequest(target, "/healthz", {}, SMALL),
      agentError(/bad answer: the response head is longer than 32768 bytes/),
    );
  });
  await withRaw(async (conn) => {
    await readHead(conn);
    await write(conn, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
  }, async (target) => {
    await rejects(
      kestrelRequest(target, "/healthz", {}, SMALL),
      agentError(/bad answer: not an HTTP\/1\.x status line: "SSH-2\.0-OpenSSH_9\.2"/),
    );
  });
});

Deno.test("kestrel client: silence before the head and a body that drags on are bounded", async () => {
  await withRaw(async (conn) => {
    await readHead(conn);
    await new Promise((r) => setTimeout(r, 1_000));
  }, async (target) => {
    const began = performance.now();
    await rejects(
      kestrelRequest(target, "/healthz", {}, { ...SMALL, headMs: 150 }),
      agentError(/^kestrel at 127\.0\.0\.1:\d+: no answer within 150 ms$/),
    );
    ok(performance.now() - began < 900);
  });
  await withRaw(async (conn) => {
    await readHead(conn);
    await write(conn, "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc");
    await new Promise((r) => setTimeout(r, 1_000));
  }, async (target) => {
    const res = await kestrelRequest(target, "/v1/slow", {}, { ...SMALL, totalMs: 200 });
    equal(res.status, 200);
    await rejects(res.text(), agentError(/not done within 200 ms$/));
  });
});

Deno.test("kestrel client: a stream (logs -f) passes each piece on as it comes, chunked", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  await withServer(() =>
    new Response(
      new ReadableStream({
        async start(c) {
          c.enqueue(encoder.encode('{"seq":1}\n'));
          await held;
          c.enqueue(encoder.encode('{"seq":2}\n'));
          c.close();
        },
      }),
      { headers: { "content-type": "application/x-ndjson" } },
    ), async (target) => {
    const res = await kestrelRequest(target, "/v1/logs?follow=1", {}, KESTREL_LIMITS.stream);
    equal(res.headers.get("content-type"), "application/x-ndjson");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) text += (await reader.read()).value ?? "";
    equal(text, '{"seq":1}\n', "the first line arrived while the second was held");
    release();
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      text += next.value;
    }
    equal(text, '{"seq":1}\n{"seq":2}\n');
  });
});

Deno.test("kestrel client: a stream is held to its average rate", async () => {
  await withServer(() => new Response("r".repeat(300_000)), async (target) => {
    const began = performance.now();
    const res = await kestrelRequest(target, "/v1/logs?follow=1", {}, {
      ...KESTREL_LIMITS.stream,
      bytesPerSecond: 150_000,
    });
    equal((await res.text()).length, 300_000);
    const took = performance.now() - began;
    ok(took >= 900, `300 kB at 150 kB/s (the first second's worth at once) took ${took} ms`);
  });
});

Deno.test("kestrel client: the caller's signal ends a stream", async () => {
  await withServer(() =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(encoder.encode("first\n"));
        },
      }),
    ), async (target) => {
    const abort = new AbortController();
    const res = await kestrelRequest(target, "/v1/logs?follow=1", {
      signal: abort.signal,
    }, KESTREL_LIMITS.stream);
    const reader = res.body!.getReader();
    equal(new TextDecoder().decode((await reader.read()).value), "first\n");
    abort.abort();
    await rejects(reader.read(), agentError(/aborted$/));
  });
});

Deno.test("kestrelHealth: a 200 AgentHealth, plain or chunked; every failure is a reason", async () => {
  const paths: string[] = [];
  await withServer((req) => {
    paths.push(new URL(req.url).pathname);
    return Response.json(HEALTH);
  }, async (target) => {
    deepEqual(await kestrelHealth(target, { timeoutMs: 2_000 }), { ok: true, health: HEALTH });
  });
  deepEqual(paths, ["/healthz"]);
  await withServer(() => {
    const body = encoder.encode(JSON.stringify(HEALTH));
    return new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(body.subarray(0, 10));
          c.enqueue(body.subarray(10));
          c.close();
        },
      }),
    );
  }, async (target) => {
    deepEqual(await kestrelHealth(target, { timeoutMs: 2_000 }), { ok: true, health: HEALTH });
  });
  const cases: Array<[() => Response, string]> = [
    [() => new Response("busy", { status: 503 }), "HTTP 503"],
    [() => new Response("<html>"), "the body is not JSON"],
    [() => Response.json({ hello: 1 }), "the body is not an AgentHealth"],
    [
      () =>
        Response.json({}, {
          status: 401,
          headers: { "www-authenticate": 'Bearer realm="kestrel"' },
        }),
      "HTTP 401: kestrel refused the VM's secret",
    ],
  ];
  for (const [answer, reason] of cases) {
    await withServer(answer, async (target) => {
      deepEqual(await kestrelHealth(target, { timeoutMs: 2_000 }), { ok: false, reason });
    });
  }
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (free.addr as Deno.NetAddr).port;
  free.close();
  deepEqual(await kestrelHealth({ ip: "127.0.0.1", port, secret: SECRET }, { timeoutMs: 2_000 }), {
    ok: false,
    reason: "connection refused",
  });
  await withRaw(async (conn) => {
    await readHead(conn);
    await new Promise((r) => setTimeout(r, 500));
  }, async (target) => {
    deepEqual(await kestrelHealth(target, { timeoutMs: 150 }), {
      ok: false,
      reason: "no answer within 150 ms",
    });
  });
  const abort = new AbortController();
  abort.abort();
  deepEqual(
    await kestrelHealth({ ip: "127.0.0.1", port, secret: SECRET }, {
      timeoutMs: 2_000,
      signal: abort.signal,
    }),
    { ok: false, reason: "aborted" },
  );
});

Deno.test("kestrel client: a VM booted before secrets gets no Authorization header", async () => {
  const seen: Array<string | null> = [];
  await withServer((req) => {
    seen.push(req.headers.get("authorization"));
    return Response.json(HEALTH);
  }, async (target) => {
    ok((await kestrelHealth({ ...target, secret: null }, { timeoutMs: 2_000 })).ok);
  });
  deepEqual(seen, [null]);
});
