import { deepEqual, equal, match, ok } from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorBody, TokenCreated, TokenList } from "../../schema/mod.ts";
import { rawHttp } from "../../daemon/testing.ts";
import { startDaemon, type TestDaemon, volar } from "../testing.ts";

/** `volar --api <tcp> [--token t] …`. */
function overTcp(daemon: TestDaemon, token: string | null, ...args: string[]) {
  return volar(["--api", daemon.api!, ...(token === null ? [] : ["--token", token]), ...args]);
}

async function vmNames(daemon: TestDaemon): Promise<string[]> {
  const r = await volar(["--socket", daemon.socket, "vms", "list", "--json"]);
  equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { vms: { name: string }[] }).vms.map((v) => v.name);
}

function tcpAddr(daemon: TestDaemon): { hostname: string; port: number } {
  const url = new URL(daemon.api!);
  return { hostname: url.hostname, port: Number(url.port) };
}

function errorOf(body: string): ErrorBody {
  return ErrorBody.parse(JSON.parse(body));
}

Deno.test("volar tokens: create prints the token once; TCP needs it, read-only cannot create, revoked is refused", async () => {
  const daemon = await startDaemon({ tcp: true });
  try {
    const made = await volar(["--socket", daemon.socket, "tokens", "create", "dash"]);
    equal(made.code, 0, made.stderr);
    const reader = made.stdout.trim();
    match(reader, /^volant_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/, "stdout is the token alone");
    match(made.stderr, /token dash \(id [0-9a-f]{12}, scope read\) created: it is shown this once/);
    const json = await volar([
      "--socket",
      daemon.socket,
      "tokens",
      "create",
      "ops",
      "--scope",
      "admin",
      "--json",
    ]);
    equal(json.code, 0, json.stderr);
    const admin = TokenCreated.parse(JSON.parse(json.stdout));
    equal(admin.scope, "admin");
    const badScope = await volar([
      "--socket",
      daemon.socket,
      "tokens",
      "create",
      "x",
      "--scope",
      "root",
    ]);
    equal(badScope.code, 2);
    match(badScope.stderr, /--scope.*root.*read, admin/);

    // No token, a wrong one: 401 with the way out.
    const none = await overTcp(daemon, null, "vms", "list");
    equal(none.code, 1);
    match(none.stderr, /needs a bearer token: send Authorization: Bearer <token> \(volar --token/);
    const wrong = await overTcp(daemon, reader.slice(0, -2) + "xx", "vms", "list", "--json");
    equal(wrong.code, 1);
    equal(errorOf(wrong.stderr).code, "unauthenticated");

    // Read-only: lists, cannot create; nothing is created.
    equal((await overTcp(daemon, reader, "vms", "list")).code, 0);
    const refused = await overTcp(daemon, reader, "vms", "create", "web", "--no-wait");
    equal(refused.code, 1);
    match(
      refused.stderr,
      /token dash \([0-9a-f]{12}\) is read-only: POST \/api\/v1\/vms needs an admin token/,
    );
    deepEqual(await vmNames(daemon), []);
    // …nor open the console (a root shell): volar asks before it upgrades.
    const consoleRefused = await overTcp(daemon, reader, "vms", "console", "web");
    equal(consoleRefused.code, 1);
    match(
      consoleRefused.stderr,
      /read-only: GET \/api\/v1\/vms\/web\/console needs an admin token/,
    );

    // Admin: creates; by VOLANT_TOKEN and by VOLANT_TOKEN_FILE too.
    const created = await overTcp(daemon, admin.token, "vms", "create", "web", "--json");
    equal(created.code, 0, created.stderr);
    await Deno.writeTextFile(`${daemon.dir}/token`, `${admin.token}\n`);
    const envs: Record<string, string>[] = [
      { VOLANT_TOKEN: admin.token },
      { VOLANT_TOKEN_FILE: `${daemon.dir}/token` },
    ];
    for (const env of envs) {
      const r = await volar(["vms", "get", "web"], {
        env: { VOLANT_API_BASE: daemon.api!, ...env },
      });
      equal(r.code, 0, `${JSON.stringify(Object.keys(env))}: ${r.stderr}`);
    }

    // Token management is for the unix socket only.
    const remote = await overTcp(daemon, admin.token, "tokens", "list");
    equal(remote.code, 1);
    match(remote.stderr, /only served on the unix socket/);
    const listed = await volar(["--socket", daemon.socket, "tokens", "list"]);
    equal(listed.code, 0, listed.stderr);
    match(listed.stdout, /^NAME +ID +SCOPE +CREATED +LAST USED$/m);
    match(listed.stdout, /^dash +[0-9a-f]{12} +read +\S+ +\S+Z$/m);
    ok(!listed.stdout.includes("volant_"), "tokens are never listed");

    const revoked = await volar(["--socket", daemon.socket, "tokens", "revoke", "dash"]);
    equal(revoked.code, 0, revoked.stderr);
    match(revoked.stdout, /^revoked token dash \([0-9a-f]{12}\)$/m);
    const after = await overTcp(daemon, reader, "vms", "list");
    equal(after.code, 1);
    match(after.stderr, /dash \([0-9a-f]{12}\) was revoked at/);
    const all = TokenList.parse(
      JSON.parse(
        (await volar(["--socket", daemon.socket, "tokens", "list", "--all", "--json"])).stdout,
      ),
    );
    deepEqual(all.tokens.map((t) => [t.name, t.revoked_at === null]), [
      ["test-admin", true],
      ["dash", false],
      ["ops", true],
    ]);
    const gone = await volar(["--socket", daemon.socket, "tokens", "revoke", "dash"]);
    equal(gone.code, 1);
    match(gone.stderr, /No token named dash/);
    const text = daemon.logs.join("\n");
    ok(!text.includes(reader) && !text.includes(admin.token), "tokens never reach the log");
  } finally {
    await daemon.stop();
  }
});

Deno.test("real listeners: foreign Host, cross-site Origin and text/plain are refused (REST and the console WebSocket)", async () => {
  const daemon = await startDaemon({ tcp: true });
  const tcp = tcpAddr(daemon);
  const unix = { path: daemon.socket };
  const auth = { authorization: `Bearer ${daemon.token}` };
  const json = { "content-type": "application/json" };
  const body = JSON.stringify({ name: "csrf1" });
  try {
    // The reproduction, on the unix socket.
    const csrf = await rawHttp(unix, "POST /api/v1/vms HTTP/1.1", {
      Host: "volant",
      "Content-Type": "text/plain",
      Origin: "http://evil.example",
    }, body);
    equal(csrf.status, 403);
    equal(errorOf(csrf.body).code, "forbidden");
    for (const [target, extra] of [[unix, {}], [tcp, auth]] as const) {
      const host = await rawHttp(target, "POST /api/v1/vms HTTP/1.1", {
        Host: "evil.example:7777",
        ...json,
        ...extra,
      }, body);
      equal(host.status, 403, host.body);
      match(errorOf(host.body).message, /Host "evil\.example:7777" is not a name/);
      const origin = await rawHttp(target, "POST /api/v1/vms HTTP/1.1", {
        Host: "localhost",
        Origin: "http://evil.example",
        ...json,
        ...extra,
      }, body);
      equal(origin.status, 403, origin.body);
      const plain = await rawHttp(target, "POST /api/v1/vms HTTP/1.1", {
        Host: "localhost",
        "Content-Type": "text/plain",
        ...extra,
      }, body);
      equal(plain.status, 415, plain.body);
      equal(errorOf(plain.body).code, "unsupported_media_type");
    }
    deepEqual(await vmNames(daemon), [], "nothing created by the refused requests");

    // The console WebSocket: the same checks, before the upgrade.
    const up = await overTcp(daemon, daemon.token, "vms", "create", "web");
    equal(up.code, 0, up.stderr);
    const upgrade = {
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version": "13",
    };
    const ws = (target: typeof unix | typeof tcp, headers: Record<string, string>) =>
      rawHttp(target, "GET /api/v1/vms/web/console HTTP/1.1", { ...upgrade, ...headers });
    const cases: [typeof unix | typeof tcp, Record<string, string>, number, string][] = [
      [tcp, { Host: `127.0.0.1:${tcp.port}` }, 401, "unauthenticated"],
      [
        tcp,
        { Host: `127.0.0.1:${tcp.port}`, Origin: "http://evil.example", ...auth },
        403,
        "forbidden",
      ],
      [unix, { Host: "volant", Origin: "https://evil.example" }, 403, "forbidden"],
      [unix, { Host: "evil.example" }, 403, "forbidden"],
      // Past every check: the fake hypervisor has no console to attach.
      [
        tcp,
        { Host: `127.0.0.1:${tcp.port}`, Origin: `http://127.0.0.1:${tcp.port}`, ...auth },
        501,
        "unsupported",
      ],
      [unix, { Host: "volant" }, 501, "unsupported"],
    ];
    for (const [target, headers, status, code] of cases) {
      const res = await ws(target, headers);
      equal(res.status, status, `${JSON.stringify(headers)}: ${res.body}`);
      equal(errorOf(res.body).code, code);
    }
  } finally {
    await daemon.stop();
  }
});

Deno.test("/mcp over TCP with the official client: tokens, scopes, Origin and Host", async () => {
  const daemon = await startDaemon({ tcp: true });
  const made = await volar(["--socket", daemon.socket, "tokens", "create", "agent", "--json"]);
  const reader = TokenCreated.parse(JSON.parse(made.stdout)).token;
  const connect = async (headers: Record<string, string>) => {
    const client = new Client({ name: "volant-test", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${daemon.api}/mcp`), { requestInit: { headers } }),
    );
    return client;
  };
  const refusal = async (headers: Record<string, string>) => {
    try {
      await (await connect(headers)).close();
      return "connected";
    } catch (err) {
      return String(err);
    }
  };
  try {
    match(await refusal({}), /"code":"unauthenticated"/);
    match(await refusal({ authorization: "Bearer nope" }), /"code":"unauthenticated".*malformed/);
    match(
      await refusal({ authorization: `Bearer ${daemon.token}`, origin: "http://evil.example" }),
      /"code":"forbidden".*Cross-site/,
    );
    const host = await rawHttp(tcpAddr(daemon), "POST /mcp HTTP/1.1", {
      Host: "rebound.evil.example",
      Authorization: `Bearer ${daemon.token}`,
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
    }, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }));
    equal(host.status, 403);
    const plain = await rawHttp(tcpAddr(daemon), "POST /mcp HTTP/1.1", {
      Host: "localhost",
      Authorization: `Bearer ${daemon.token}`,
      "Content-Type": "text/plain",
      Accept: "application/json, text/event-stream",
    }, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }));
    equal(plain.status, 415);

    const client = await connect({ authorization: `Bearer ${reader}` });
    try {
      equal((await client.callTool({ name: "vm_list", arguments: {} })).isError, undefined);
      const create = await client.callTool({ name: "vm_create", arguments: { name: "web" } });
      equal(create.isError, true);
      match(JSON.stringify(create.content), /forbidden: The token agent .* is read-only/);
    } finally {
      await client.close();
    }
    deepEqual(await vmNames(daemon), []);
    const admin = await connect({ authorization: `Bearer ${daemon.token}` });
    try {
      const create = await admin.callTool({ name: "vm_create", arguments: { name: "web" } });
      equal(create.isError, undefined, JSON.stringify(create.content));
    } finally {
      await admin.close();
    }
    deepEqual(await vmNames(daemon), ["web"]);
  } finally {
    await daemon.stop();
  }
});
