import { deepEqual, equal, ok } from "node:assert/strict";
import { ArtifactCache, type ArtifactProgress } from "./mod.ts";
import {
  checksumOf,
  names,
  patternBytes,
  rejectsWith,
  serve,
  slowBody,
  withTempDir,
} from "./_testing.ts";

const DATA = patternBytes(3 * 1024 * 1024 + 123, 7);
const SUM = checksumOf(DATA);

async function assertNothingLeft(cache: ArtifactCache): Promise<void> {
  deepEqual(await names(`${cache.root}/tmp`), []);
  deepEqual(await names(`${cache.root}/sha256`), []);
}

Deno.test("fetchArtifact() downloads over http with progress events and stores a read-only blob", async () => {
  const server = serve(() => new Response(DATA));
  try {
    await withTempDir(async (dir) => {
      const cache = new ArtifactCache(dir);
      const events: ArtifactProgress[] = [];
      const a = await cache.fetchArtifact(`${server.base}/web.img`, SUM, {
        onProgress: (p) => events.push(p),
      });
      equal(a.cached, false);
      equal(a.size, DATA.length);
      equal(a.path, `${dir}/artifacts/sha256/${SUM.slice(7)}`);
      deepEqual(await Deno.readFile(a.path), DATA);
      equal((await Deno.stat(a.path)).mode! & 0o777, 0o444);
      deepEqual(await names(`${cache.root}/sha256`), [a.hex, `${a.hex}.fp`]);
      deepEqual(await names(`${cache.root}/tmp`), []);
      deepEqual(events[0], { received: 0, total: DATA.length });
      deepEqual(events.at(-1), { received: DATA.length, total: DATA.length });
      ok(events.length > 2, `only ${events.length} progress events`);
      for (let i = 1; i < events.length; i++) ok(events[i]!.received > events[i - 1]!.received);
    });
  } finally {
    await server.close();
  }
});

Deno.test("fetchArtifact() reports total null when the server sends no Content-Length", async () => {
  const server = serve(() => new Response(slowBody(DATA, 256 * 1024, 0)));
  try {
    await withTempDir(async (dir) => {
      const cache = new ArtifactCache(dir);
      const events: ArtifactProgress[] = [];
      const a = await cache.fetchArtifact(`${server.base}/x`, SUM, {
        onProgress: (p) => events.push(p),
      });
      deepEqual(await Deno.readFile(a.path), DATA);
      ok(events.every((e) => e.total === null));
      equal(events.at(-1)!.received, DATA.length);
    });
  } finally {
    await server.close();
  }
});

for (const status of [404, 500]) {
  Deno.test(`fetchArtifact() fails with artifact_unavailable on a ${status} answer`, async () => {
    const server = serve(() => new Response("nope", { status }));
    try {
      await withTempDir(async (dir) => {
        const cache = new ArtifactCache(dir);
        const url = `${server.base}/missing.img`;
        const e = await rejectsWith(
          cache.fetchArtifact(url, SUM),
          "artifact_unavailable",
          url,
          `${status}`,
        );
        equal(e.details?.["status"], status);
        await assertNothingLeft(cache);
      });
    } finally {
      await server.close();
    }
  });
}

Deno.test("fetchArtifact() fails with artifact_unavailable naming the cause when the connection is refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await withTempDir(async (dir) => {
    const cache = new ArtifactCache(dir);
    const url = `http://127.0.0.1:${port}/a.img`;
    await rejectsWith(cache.fetchArtifact(url, SUM), "artifact_unavailable", url, /refused/i);
    await assertNothingLeft(cache);
  });
});

Deno.test("fetchArtifact() fails and leaves nothing when the server dies mid-body", async () => {
  const half = DATA.subarray(0, 1024 * 1024);
  const server = serve(() => {
    let sent = false;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent) return controller.error(new Error("server went away"));
          sent = true;
          controller.enqueue(half.slice());
        },
      }),
    );
  });
  try {
    await withTempDir(async (dir) => {
      const cache = new ArtifactCache(dir);
      const url = `${server.base}/cut.img`;
      await rejectsWith(cache.fetchArtifact(url, SUM), "artifact_unavailable", url);
      await assertNothingLeft(cache);
    });
  } finally {
    await server.close();
  }
});

Deno.test("fetchArtifact() detects a body shorter than its Content-Length", async () => {
  // A raw socket: announce 1 MiB, send 1000 bytes, close.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(65536));
    const head = "HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\nconnection: close\r\n\r\n";
    await conn.write(new TextEncoder().encode(head));
    await conn.write(DATA.subarray(0, 1000));
    conn.close();
  })();
  try {
    await withTempDir(async (dir) => {
      const cache = new ArtifactCache(dir);
      const url = `http://127.0.0.1:${listener.addr.port}/short.img`;
      await rejectsWith(cache.fetchArtifact(url, SUM), "artifact_unavailable", url, /1000|1048576/);
      await assertNothingLeft(cache);
    });
  } finally {
    await served;
    listener.close();
  }
});

Deno.test("fetchArtifact() fails with timeout when the download stalls", async () => {
  let release = () => {};
  const stalled = new Promise<void>((r) => release = r);
  const server = serve(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          controller.enqueue(DATA.slice(0, 4096));
          await stalled;
          controller.close();
        },
      }),
    )
  );
  try {
    await withTempDir(async (dir) => {
      const cache = new ArtifactCache(dir);
      const p = cache.fetchArtifact(`${server.base}/slow`, SUM, { idleTimeoutMs: 300 });
      await rejectsWith(p, "timeout", "stalled", "4096 bytes");
      await assertNothingLeft(cache);
    });
  } finally {
    release();
    await server.close();
  }
});

Deno.test("fetchArtifact() stops an http download when its signal aborts", async () => {
  const server = serve(() => new Response(slowBody(DATA, 64 * 1024, 10)));
  try {
    await withTempDir(async (dir) => {
      const cache = new ArtifactCache(dir);
      const controller = new AbortController();
      const reason = new Error("daemon shutting down");
      let caught: unknown;
      await cache.fetchArtifact(`${server.base}/big`, SUM, {
        signal: controller.signal,
        onProgress: ({ received }) => received >= 128 * 1024 && controller.abort(reason),
      }).catch((e) => caught = e);
      equal(caught, reason);
      await assertNothingLeft(cache);
    });
  } finally {
    await server.close();
  }
});

Deno.test("fetchArtifact() releases the response when the first progress event throws", async () => {
  let cancelled = false;
  const server = serve(() => new Response(slowBody(DATA, 64 * 1024, 10, () => cancelled = true)));
  try {
    await withTempDir(async (dir) => {
      const cache = new ArtifactCache(dir);
      let message = "";
      await cache.fetchArtifact(`${server.base}/a`, SUM, {
        onProgress: () => {
          throw new Error("listener broke");
        },
      }).catch((e) => message = e.message);
      equal(message, "listener broke");
      await assertNothingLeft(cache);
      for (let i = 0; i < 100 && !cancelled; i++) await new Promise((r) => setTimeout(r, 50));
      equal(cancelled, true, "the server never saw the client go away");
    });
  } finally {
    await server.close();
  }
});

Deno.test("fetchArtifact() rejects a checksum mismatch naming url, expected and actual", async () => {
  const server = serve(() => new Response(DATA));
  try {
    await withTempDir(async (dir) => {
      const cache = new ArtifactCache(dir);
      const wrong = checksumOf(new TextEncoder().encode("something else"));
      const url = `${server.base}/web.img`;
      const e = await rejectsWith(
        cache.fetchArtifact(url, wrong),
        "checksum_mismatch",
        url,
        `expected ${wrong}`,
        `got ${SUM}`,
      );
      equal(e.details?.["actual"], SUM);
      await assertNothingLeft(cache);
    });
  } finally {
    await server.close();
  }
});

Deno.test("fetchArtifact() serves a cached blob without contacting the source", async () => {
  const server = serve(() => new Response(DATA));
  try {
    await withTempDir(async (dir) => {
      const cache = new ArtifactCache(dir);
      const url = `${server.base}/web.img`;
      await cache.fetchArtifact(url, SUM);
      equal(server.requests, 1);
      const events: ArtifactProgress[] = [];
      const again = await new ArtifactCache(dir).fetchArtifact(url, SUM, {
        onProgress: (p) => events.push(p),
      });
      equal(again.cached, true);
      equal(server.requests, 1);
      deepEqual(events, []);
      deepEqual(await Deno.readFile(again.path), DATA);
    });
  } finally {
    await server.close();
  }
});

Deno.test("fetchArtifact() survives concurrent fetches of the same checksum", async () => {
  // Every answer waits until all three requests arrived, so the downloads overlap.
  let arrived = 0;
  let allArrived = () => {};
  const barrier = new Promise<void>((r) => allArrived = r);
  const server = serve(async () => {
    if (++arrived === 3) allArrived();
    await barrier;
    return new Response(slowBody(DATA, 512 * 1024, 5));
  });
  try {
    await withTempDir(async (dir) => {
      // Separate instances on one root behave like separate processes.
      const caches = [new ArtifactCache(dir), new ArtifactCache(dir), new ArtifactCache(dir)];
      const results = await Promise.all(
        caches.map((c, i) => c.fetchArtifact(`${server.base}/w${i}`, SUM)),
      );
      equal(server.requests, 3);
      equal(server.maxInFlight, 3);
      ok(results.every((r) => r.cached === false && r.size === DATA.length));
      deepEqual(await Deno.readFile(results[0]!.path), DATA);
      deepEqual(await names(`${caches[0]!.root}/tmp`), []);
      deepEqual(await names(`${caches[0]!.root}/sha256`), [SUM.slice(7), `${SUM.slice(7)}.fp`]);
      equal((await caches[1]!.verifyArtifact(SUM)).size, DATA.length);
    });
  } finally {
    await server.close();
  }
});

Deno.test("fetchArtifact() rejects a bad url or checksum before any I/O", async () => {
  await withTempDir(async (dir) => {
    const cache = new ArtifactCache(dir);
    await rejectsWith(cache.fetchArtifact("ftp://x/y", SUM), "invalid_argument", "url");
    await rejectsWith(cache.fetchArtifact("relative/p", SUM), "invalid_argument", "url");
    await rejectsWith(cache.fetchArtifact("/a", "md5:abc"), "invalid_argument", "checksum");
    deepEqual(await names(cache.root), []);
  });
});
