import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import { restApiError, restJson, unixHttp, vmmErrorText } from "./unix_http.ts";

async function withServer(
  handler: (req: Request) => Response | Promise<Response>,
  fn: (socket: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-http-" });
  const socket = `${dir}/api.sock`;
  const server = Deno.serve({ path: socket, onListen() {} }, handler);
  try {
    await fn(socket);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("unixHttp() sends JSON over a unix socket and reads the answer", async () => {
  const seen: Array<[string, string, string | null, string]> = [];
  await withServer(async (req) => {
    seen.push([
      req.method,
      new URL(req.url).pathname,
      req.headers.get("content-type"),
      await req.text(),
    ]);
    return req.method === "GET"
      ? Response.json({ version: "53.0" })
      : new Response(null, { status: 204 });
  }, async (socket) => {
    deepEqual(
      await unixHttp(socket, { method: "GET", path: "/api/v1/vmm.ping", timeoutMs: 5_000 }),
      {
        status: 200,
        text: '{"version":"53.0"}',
      },
    );
    deepEqual(
      await unixHttp(socket, { method: "PUT", path: "/actions", body: { a: 1 }, timeoutMs: 5_000 }),
      { status: 204, text: "" },
    );
    await unixHttp(socket, {
      method: "PATCH",
      path: "/vm",
      body: { state: "Paused" },
      timeoutMs: 5_000,
    });
  });
  deepEqual(seen, [
    ["GET", "/api/v1/vmm.ping", null, ""],
    ["PUT", "/actions", "application/json", '{"a":1}'],
    ["PATCH", "/vm", "application/json", '{"state":"Paused"}'],
  ]);
});

Deno.test("unixHttp() tells a missing socket, a closed connection and a timeout apart", async () => {
  await rejects(
    () => unixHttp("/nonexistent/volant.sock", { method: "GET", path: "/", timeoutMs: 2_000 }),
    (e: VolantError) => {
      equal(e.code, "vmm_failed");
      equal(e.details?.failure, "unreachable");
      match(e.message, /No answer to GET \/ on \/nonexistent\/volant\.sock: No such file/);
      return true;
    },
  );
  const dir = await Deno.makeTempDir({ prefix: "volant-http-" });
  try {
    const closing = Deno.listen({ transport: "unix", path: `${dir}/closing.sock` });
    const silent = Deno.listen({ transport: "unix", path: `${dir}/silent.sock` });
    const held: Deno.Conn[] = [];
    (async () => {
      for await (const conn of closing) conn.close();
    })();
    (async () => {
      for await (const conn of silent) held.push(conn);
    })();
    await rejects(
      () => unixHttp(`${dir}/closing.sock`, { method: "GET", path: "/", timeoutMs: 2_000 }),
      (e: VolantError) => e.code === "vmm_failed" && e.details?.failure === "closed",
    );
    const started = Date.now();
    await rejects(
      () => unixHttp(`${dir}/silent.sock`, { method: "GET", path: "/", timeoutMs: 300 }),
      (e: VolantError) => {
        equal(e.code, "timeout");
        match(e.message, /No answer to GET \/ on .*silent\.sock within 300 ms/);
        return true;
      },
    );
    ok(Date.now() - started < 5_000, "the deadline is kept");
    closing.close();
    silent.close();
    for (const conn of held) conn.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vmmErrorText() and restApiError() keep the VMM's own words", () => {
  equal(
    vmmErrorText('["Error from API","The VM could not boot","No such file"]'),
    "Error from API: The VM could not boot: No such file",
  );
  equal(
    vmmErrorText('{"fault_message":"The requested operation is not supported"}'),
    "The requested operation is not supported",
  );
  equal(vmmErrorText("plain text\n"), "plain text");
  equal(vmmErrorText(""), "(empty body)");
  equal(vmmErrorText('{"other":1}'), '{"other":1}');
  const codes = [
    [400, "invalid_argument"],
    [404, "invalid_state"],
    [405, "invalid_state"],
    [409, "already_exists"],
    [429, "vmm_failed"],
    [500, "vmm_failed"],
  ] as const;
  for (const [status, code] of codes) {
    const err = restApiError("Cloud Hypervisor", { method: "PUT", path: "/api/v1/vm.boot" }, {
      status,
      text: '["Error from API","boom"]',
    });
    equal(err.code, code, String(status));
    equal(
      err.message,
      `Cloud Hypervisor refused PUT /api/v1/vm.boot (HTTP ${status}): Error from API: boom`,
    );
    equal(err.details?.vmm, "Error from API: boom");
  }
});

Deno.test("restJson() parses 2xx answers and throws restApiError() for the others", async () => {
  await withServer((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/info") return Response.json({ state: "Running" });
    if (path === "/empty") return new Response(null, { status: 204 });
    return Response.json({ fault_message: "Invalid request" }, { status: 400 });
  }, async (socket) => {
    deepEqual(
      await restJson("Firecracker", socket, { method: "GET", path: "/info", timeoutMs: 5_000 }),
      {
        state: "Running",
      },
    );
    equal(
      await restJson("Firecracker", socket, { method: "PUT", path: "/empty", timeoutMs: 5_000 }),
      undefined,
    );
    await rejects(
      () =>
        restJson("Firecracker", socket, {
          method: "PUT",
          path: "/bad",
          body: {},
          timeoutMs: 5_000,
        }),
      (e: VolantError) => {
        equal(e.code, "invalid_argument");
        equal(e.message, "Firecracker refused PUT /bad (HTTP 400): Invalid request");
        deepEqual(e.details, { method: "PUT", path: "/bad", status: 400, vmm: "Invalid request" });
        return true;
      },
    );
  });
});
