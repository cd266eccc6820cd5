import { deepEqual, equal, match, ok } from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ERROR_STATUS, ErrorBody, TokenCreated, TokenList, VmList } from "../../schema/mod.ts";
import { makeTestEnv, testApp, VIA_TCP, VIA_UNIX } from "../testing.ts";
import { checkTcpListener, isLoopbackHost, listenerOf } from "./access.ts";

type App = ReturnType<typeof testApp>["app"];
type Via = typeof VIA_TCP | typeof VIA_UNIX | undefined;

/** A request to the in-process app as if it came in on `via` (TCP, the unix socket, in process). */
function call(
  app: App,
  via: Via,
  path: string,
  init: RequestInit & { headers?: Record<string, string> } = {},
): Promise<Response> {
  const host = via === VIA_TCP ? "127.0.0.1:7777" : via === VIA_UNIX ? "volantd" : "localhost";
  // As on the wire: a body comes with its length.
  const length = typeof init.body === "string"
    ? new TextEncoder().encode(init.body).length
    : init.body instanceof Blob
    ? init.body.size
    : undefined;
  const headers = {
    host,
    ...(length === undefined ? {} : { "content-length": String(length) }),
    ...init.headers,
  };
  return Promise.resolve(
    app.fetch(new Request(`http://${host}${path}`, { ...init, headers }), via),
  );
}

function json(body: unknown, headers: Record<string, string> = {}) {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  };
}

async function expectError(res: Response, code: keyof typeof ERROR_STATUS): Promise<ErrorBody> {
  const body = ErrorBody.parse(await res.json());
  equal(body.code, code, body.message);
  equal(res.status, ERROR_STATUS[code]);
  return body;
}

async function vmNames(app: App): Promise<string[]> {
  const list = await (await call(app, VIA_UNIX, "/api/v1/vms")).json() as VmList;
  return list.vms.map((v) => v.name);
}

async function mint(app: App, name: string, scope: "read" | "admin"): Promise<string> {
  const res = await call(app, VIA_UNIX, "/api/v1/tokens", json({ name, scope }));
  equal(res.status, 201);
  return TokenCreated.parse(await res.json()).token;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

Deno.test("listeners, loopback names and the api.tcp start check", () => {
  equal(listenerOf(VIA_TCP), "tcp");
  equal(listenerOf(VIA_UNIX), "unix");
  equal(listenerOf(undefined), "local");
  for (const h of ["localhost", "app.localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"]) {
    ok(isLoopbackHost(h), h);
  }
  for (const h of ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "localhost.evil.example", "volant"]) {
    ok(!isLoopbackHost(h), h);
  }
  equal(checkTcpListener({ tcp: null, tcp_insecure: false }, 0), null);
  equal(checkTcpListener({ tcp: "127.0.0.1:7777", tcp_insecure: false }, 0), null);
  match(checkTcpListener({ tcp: "[::1]:7777", tcp_insecure: true }, 0)!, /api\.tcp_insecure/);
  equal(checkTcpListener({ tcp: "10.0.0.5:7777", tcp_insecure: false }, 1), null);
  const refusal = (tcp: string, insecure: boolean, tokens: number) => {
    try {
      checkTcpListener({ tcp, tcp_insecure: insecure }, tokens);
    } catch (err) {
      return (err as Error).message;
    }
    return "";
  };
  match(
    refusal("0.0.0.0:7777", false, 0),
    /^api\.tcp 0\.0\.0\.0:7777 is not a loopback .*tokens create/,
  );
  match(refusal("10.0.0.5:7777", true, 3), /^api\.tcp_insecure is allowed only with a loopback/);
});

Deno.test("TCP: no, malformed, wrong and revoked tokens get 401; read tokens only read", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    const none = await call(app, VIA_TCP, "/api/v1/vms");
    equal(none.headers.get("www-authenticate"), 'Bearer realm="volantd"');
    match((await expectError(none, "unauthenticated")).message, /needs a bearer token/);
    const basic = await call(app, VIA_TCP, "/api/v1/vms", {
      headers: { authorization: "Basic dTpw" },
    });
    match((await expectError(basic, "unauthenticated")).message, /not a bearer token/);
    const malformed = await call(app, VIA_TCP, "/healthz", { headers: bearer("letmein") });
    match((await expectError(malformed, "unauthenticated")).message, /malformed/);

    const admin = await mint(app, "ops", "admin");
    const reader = await mint(app, "dash", "read");
    const [, id, secret] = /^volant_([0-9a-f]{12})_(.+)$/.exec(admin)!;
    const wrong = `volant_${id}_${secret!.slice(1)}${secret!.startsWith("A") ? "B" : "A"}`;
    const bad = await call(app, VIA_TCP, "/api/v1/vms", { headers: bearer(wrong) });
    match((await expectError(bad, "unauthenticated")).message, /not valid/);
    const unknown = await call(app, VIA_TCP, "/api/v1/vms", {
      headers: bearer(`volant_000000000000_${secret}`),
    });
    await expectError(unknown, "unauthenticated");

    // The token is stored hashed: neither it nor its secret is in the database.
    const db = await Deno.readFile(env.dbPath);
    const text = new TextDecoder("latin1").decode(db);
    ok(!text.includes(secret!), "the secret is not stored");

    equal((await call(app, VIA_TCP, "/api/v1/vms", { headers: bearer(reader) })).status, 200);
    const refused = await call(app, VIA_TCP, "/api/v1/vms", json({ name: "web" }, bearer(reader)));
    match(
      (await expectError(refused, "forbidden")).message,
      /token dash \([0-9a-f]{12}\) is read-only: POST \/api\/v1\/vms needs an admin token/,
    );
    deepEqual(await vmNames(app), [], "a refused create leaves no VM");
    // The console (a root shell) and the agent proxy's mutating methods need admin too.
    await expectError(
      await call(app, VIA_TCP, "/api/v1/vms/web/console", { headers: bearer(reader) }),
      "forbidden",
    );
    await expectError(
      await call(app, VIA_TCP, "/api/v1/vms/web/agent/v1/restart", {
        method: "POST",
        headers: bearer(reader),
      }),
      "forbidden",
    );
    // Past the checks, a GET through the proxy reaches the VM lookup.
    await expectError(
      await call(app, VIA_TCP, "/api/v1/vms/web/agent/v1/status", { headers: bearer(reader) }),
      "not_found",
    );

    const created = await call(app, VIA_TCP, "/api/v1/vms", json({ name: "web" }, bearer(admin)));
    equal(created.status, 201);
    deepEqual(await vmNames(app), ["web"]);

    // Token management: the unix socket only, whatever the token.
    await expectError(
      await call(app, VIA_TCP, "/api/v1/tokens", json({ name: "more" }, bearer(admin))),
      "forbidden",
    );
    await expectError(
      await call(app, VIA_TCP, "/api/v1/tokens", { headers: bearer(admin) }),
      "forbidden",
    );
    const revoked = await call(app, VIA_UNIX, "/api/v1/tokens/ops", { method: "DELETE" });
    equal(revoked.status, 200);
    const after = await call(app, VIA_TCP, "/api/v1/vms", { headers: bearer(admin) });
    match((await expectError(after, "unauthenticated")).message, /ops .* was revoked/);
    const listed = TokenList.parse(await (await call(app, VIA_UNIX, "/api/v1/tokens")).json());
    deepEqual(listed.tokens.map((t) => [t.name, t.scope]), [["dash", "read"]]);
    ok(listed.tokens[0]!.last_used_at !== null, "last use recorded");
    ok(!JSON.stringify(listed).includes("volant_"), "no token in the list");
    const all = TokenList.parse(await (await call(app, VIA_UNIX, "/api/v1/tokens?all=1")).json());
    equal(all.tokens.length, 2);
    // A revoked name can be used again.
    await mint(app, "ops", "read");

    const logs = env.logs.join("\n");
    ok(!logs.includes(secret!) && !logs.includes(reader), "tokens never reach the log");
    equal(daemon.service.count(), 1);
  } finally {
    await env.dispose();
  }
});

Deno.test("TCP with api.tcp_insecure needs no token", async () => {
  const env = await makeTestEnv();
  const { app } = testApp(env, { tcpInsecure: true });
  try {
    equal((await call(app, VIA_TCP, "/api/v1/vms", json({ name: "web" }))).status, 201);
  } finally {
    await env.dispose();
  }
});

Deno.test("every listener: a foreign Host or a cross-site Origin is refused, nothing created", async () => {
  const env = await makeTestEnv();
  const { app } = testApp(env, { allowedHosts: ["volant.example.internal"] });
  try {
    // The issue's reproduction: text/plain JSON with a foreign Origin, on the unix socket.
    const csrf = await call(app, VIA_UNIX, "/api/v1/vms", {
      method: "POST",
      headers: { "content-type": "text/plain", origin: "http://evil.example" },
      body: JSON.stringify({ name: "csrf1" }),
    });
    match(
      (await expectError(csrf, "forbidden")).message,
      /Cross-site request refused: Origin http:\/\/evil\.example is not this API's \(volantd\)/,
    );
    for (const via of [VIA_UNIX, VIA_TCP, undefined]) {
      const host = await call(
        app,
        via,
        "/api/v1/vms",
        json({ name: "web" }, {
          host: "evil.example:7777",
        }),
      );
      match(
        (await expectError(host, "forbidden")).message,
        /Host "evil\.example:7777" is not a name .*api\.allowed_hosts/,
      );
      for (const origin of ["http://evil.example", "null", "http://127.0.0.1:3000"]) {
        const res = await call(app, via, "/api/v1/vms", json({ name: "web" }, { origin }));
        await expectError(res, "forbidden");
      }
      const site = await call(app, via, "/api/v1/vms/web/stop", {
        method: "POST",
        headers: { "sec-fetch-site": "cross-site" },
      });
      match((await expectError(site, "forbidden")).message, /Sec-Fetch-Site is cross-site/);
    }
    // volar's and curl's names on the unix socket; never over TCP.
    await expectError(
      await call(app, VIA_TCP, "/healthz", { headers: { host: "volantd" } }),
      "forbidden",
    );
    deepEqual(await vmNames(app), []);

    // Allowed: loopback names, api.allowed_hosts, a same-origin Origin.
    equal((await call(app, VIA_UNIX, "/healthz", { headers: { host: "localhost" } })).status, 200);
    equal(
      (await call(app, VIA_UNIX, "/healthz", { headers: { host: "volant.example.internal:7" } }))
        .status,
      200,
    );
    const same = await call(
      app,
      VIA_UNIX,
      "/api/v1/vms",
      json({ name: "web" }, {
        host: "127.0.0.1:7777",
        origin: "http://127.0.0.1:7777",
        "sec-fetch-site": "same-origin",
      }),
    );
    equal(same.status, 201);
  } finally {
    await env.dispose();
  }
});

Deno.test("bodies must be application/json (415), unless a route names other types", async () => {
  const env = await makeTestEnv();
  const { app } = testApp(env);
  try {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]) {
      const res = await call(app, VIA_UNIX, "/api/v1/vms", {
        method: "POST",
        headers: { "content-type": type },
        body: JSON.stringify({ name: "web" }),
      });
      match(
        (await expectError(res, "unsupported_media_type")).message,
        new RegExp(`POST /api/v1/vms takes a body of application/json, not ${type}`),
      );
    }
    // No Content-Type at all (a Blob body), and a route that takes no body.
    const blob = await call(app, VIA_UNIX, "/api/v1/vms", {
      method: "POST",
      body: new Blob([JSON.stringify({ name: "web" })]),
    });
    match((await expectError(blob, "unsupported_media_type")).message, /without a Content-Type/);
    await expectError(
      await call(app, VIA_UNIX, "/api/v1/vms/web/stop", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "x",
      }),
      "unsupported_media_type",
    );
    deepEqual(await vmNames(app), [], "nothing half-created");
    const utf8 = await call(app, VIA_UNIX, "/api/v1/vms", {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({ name: "web" }),
    });
    equal(utf8.status, 201);
    // The agent proxy passes bodies through: any declared type but the form and text ones.
    await expectError(
      await call(app, VIA_UNIX, "/api/v1/vms/nope/agent/v1/x", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "x",
      }),
      "unsupported_media_type",
    );
    await expectError(
      await call(app, VIA_UNIX, "/api/v1/vms/nope/agent/v1/x", {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: "x",
      }),
      "not_found",
    );
  } finally {
    await env.dispose();
  }
});

/** The official MCP client against the in-process app, as if over `via`. */
async function mcpClient(app: App, via: Via, headers: Record<string, string>) {
  const client = new Client({ name: "volant-test", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL("http://127.0.0.1:7777/mcp"), {
    requestInit: { headers },
    fetch: (url: string | URL, init?: RequestInit) => {
      const req = new Request(url, init);
      const h = new Headers(req.headers);
      if (!h.has("host")) h.set("host", new URL(url).host);
      return Promise.resolve(app.fetch(new Request(req, { headers: h }), via));
    },
  });
  await client.connect(transport);
  return client;
}

Deno.test("/mcp: Host, Origin and Content-Type checked; read tokens call read-only tools only", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    const reader = await mint(app, "agent", "read");
    const admin = await mint(app, "ops", "admin");
    const refusals: [Via, Record<string, string>, RegExp][] = [
      [VIA_TCP, {}, /"unauthenticated".*needs a bearer token/],
      [VIA_TCP, bearer("volant_000000000000_" + "x".repeat(43)), /"unauthenticated"/],
      [VIA_UNIX, { origin: "http://evil.example" }, /"forbidden".*Cross-site request refused/],
      [VIA_TCP, { ...bearer(admin), origin: "http://evil.example" }, /"forbidden"/],
      [VIA_UNIX, { host: "evil.example" }, /"forbidden".*Host/],
    ];
    for (const [via, headers, error] of refusals) {
      let message = "";
      try {
        await (await mcpClient(app, via, headers)).close();
      } catch (err) {
        message = String(err);
      }
      match(message, error, `${JSON.stringify(headers)}: ${message}`);
    }
    const plain = await call(app, VIA_UNIX, "/mcp", {
      method: "POST",
      headers: { "content-type": "text/plain", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    await expectError(plain, "unsupported_media_type");

    const client = await mcpClient(app, VIA_TCP, bearer(reader));
    try {
      const tools = (await client.listTools()).tools.map((t: { name: string }) => t.name);
      ok(tools.includes("vm_create") && tools.includes("vm_list"));
      ok(!tools.some((t: string) => /token|registr/.test(t)), "no token or registry tools");
      const list = await client.callTool({ name: "vm_list", arguments: {} });
      equal(list.isError, undefined);
      const create = await client.callTool({ name: "vm_create", arguments: { name: "web" } });
      equal(create.isError, true);
      const text = (create.content as { text: string }[])[0]!.text;
      match(text, /^forbidden: The token agent \([0-9a-f]{12}\) is read-only: the tool vm_create/);
      equal(daemon.service.count(), 0);
    } finally {
      await client.close();
    }
    const adminClient = await mcpClient(app, VIA_TCP, bearer(admin));
    try {
      const create = await adminClient.callTool({ name: "vm_create", arguments: { name: "web" } });
      equal(create.isError, undefined);
      equal(daemon.service.count(), 1);
    } finally {
      await adminClient.close();
    }
  } finally {
    await env.dispose();
  }
});

/** Each call, made with a read token over TCP, is refused naming its method and path. */
async function refusedToReaders(
  app: Parameters<typeof call>[0],
  reader: string,
  calls: ReadonlyArray<readonly [string, string, unknown]>,
): Promise<void> {
  for (const [method, path, body] of calls) {
    const init = body === undefined
      ? { method, headers: bearer(reader) }
      : { ...json(body, bearer(reader)), method };
    match(
      (await expectError(await call(app, VIA_TCP, path, init), "forbidden")).message,
      new RegExp(`read-only: ${method} ${path.replaceAll("/", "\\/")} needs an admin token`),
    );
  }
}

Deno.test("TCP: read tokens list, get and wait for deployments and read VM stats, but change nothing", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    const reader = await mint(app, "dash", "read");
    equal(
      (await call(app, VIA_TCP, "/api/v1/deployments", { headers: bearer(reader) })).status,
      200,
    );
    await refusedToReaders(app, reader, [
      ["POST", "/api/v1/deployments", { name: "web", plugin: "web", replicas: 1 }],
      ["POST", "/api/v1/deployments/web/scale", { replicas: 2 }],
      ["PATCH", "/api/v1/deployments/web", { memory_mb: 256 }],
      ["DELETE", "/api/v1/deployments/web", undefined],
    ]);
    equal(daemon.store.deployments.list().length, 0, "nothing was created");
    // Past the checks, reads reach their lookups.
    await expectError(
      await call(app, VIA_TCP, "/api/v1/deployments/web", { headers: bearer(reader) }),
      "not_found",
    );
    await expectError(
      await call(app, VIA_TCP, "/api/v1/vms/web/stats", { headers: bearer(reader) }),
      "not_found",
    );
  } finally {
    await env.dispose();
  }
});

Deno.test("TCP: read tokens list and show snapshots, but cannot take, restore, clone or delete one", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    await daemon.service.create({ name: "web" });
    await daemon.service.wait("web", "running", 5_000);
    const reader = await mint(app, "dash", "read");
    equal(
      (await call(app, VIA_TCP, "/api/v1/snapshots", { headers: bearer(reader) })).status,
      200,
    );
    await refusedToReaders(app, reader, [
      ["POST", "/api/v1/vms/web/snapshots", { snapshot: "s1" }],
      ["POST", "/api/v1/vms/web/restore", { from: "s1", force: true }],
      ["POST", "/api/v1/vms/web/clone", { clone: "web2" }],
      ["POST", "/api/v1/vms", { name: "web3", from_snapshot: "s1" }],
      ["DELETE", "/api/v1/snapshots/s1", undefined],
    ]);
    equal((await daemon.service.snapshots.list()).length, 0, "nothing was taken");
    equal(daemon.service.list().length, 1, "nothing was cloned");
    equal((await daemon.service.get("web")).state, "running", "nothing was restored");
    await expectError(
      await call(app, VIA_TCP, "/api/v1/snapshots/s1", { headers: bearer(reader) }),
      "not_found",
    );
  } finally {
    await env.dispose();
  }
});
