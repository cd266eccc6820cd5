import { equal, match, ok } from "node:assert/strict";
import { ErrorBody } from "../../schema/mod.ts";
import { makeTestEnv, testApp, VIA_UNIX } from "../testing.ts";
import { DEFAULT_MAX_BODY_BYTES } from "./app.ts";

// A client controls a request's size: volantd refuses what is larger than the route accepts
// with 413 as soon as it knows, and never buffers it.

/** A body of `total` bytes made on demand (a JSON string that never ends). */
function endless(total: number): ReadableStream<Uint8Array> {
  const piece = new TextEncoder().encode("x".repeat(64 * 1024));
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent === 0) controller.enqueue(new TextEncoder().encode('{"name":"'));
      if (sent >= total) return controller.close();
      controller.enqueue(piece);
      sent += piece.length;
    },
  });
}

Deno.test("a 3 GiB request body gets 413 without the daemon's memory growing", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    const before = Deno.memoryUsage().rss;
    const res = await app.request("http://volant/api/v1/vms", {
      method: "POST",
      headers: { "content-type": "application/json", host: "volantd" },
      body: endless(3 * 1024 ** 3),
      // @ts-ignore: duplex is required for a streamed request body
      duplex: "half",
    }, VIA_UNIX);
    equal(res.status, 413);
    const body = ErrorBody.parse(await res.json());
    equal(body.code, "payload_too_large");
    match(body.message, new RegExp(`larger than ${DEFAULT_MAX_BODY_BYTES} bytes`));
    const grown = Deno.memoryUsage().rss - before;
    ok(grown < 64 * 1024 * 1024, `RSS grew by ${grown} bytes`);
    equal(daemon.service.list().length, 0, "nothing created");

    // A declared Content-Length over the limit is refused before a byte is read.
    const declared = await app.request("http://volant/api/v1/vms", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": String(3 * 1024 ** 3),
        host: "volantd",
      },
      body: endless(3 * 1024 ** 3),
      // @ts-ignore: duplex is required for a streamed request body
      duplex: "half",
    }, VIA_UNIX);
    equal(declared.status, 413);
    await declared.body?.cancel();
  } finally {
    await env.dispose();
  }
});

Deno.test("a body within the limit is read as before", async () => {
  const env = await makeTestEnv();
  const { app } = testApp(env);
  try {
    const res = await app.request("http://volant/api/v1/vms", {
      method: "POST",
      headers: { "content-type": "application/json", host: "volantd" },
      body: JSON.stringify({ name: "small" }),
    }, VIA_UNIX);
    equal(res.status, 201, await res.clone().text());
    await res.body?.cancel();
  } finally {
    await env.dispose();
  }
});
