import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import type { ApiDeps } from "../api/route.ts";
import { makeTestEnv, testApp, VIA_TCP } from "../testing.ts";
import {
  MCP_RESOURCE_TEMPLATES,
  MCP_RESOURCES,
  readResource,
  RESOURCE_NOT_FOUND,
} from "./resources.ts";

type App = { fetch: (req: Request, env?: unknown) => Response | Promise<Response> };

/** The official MCP client, talking Streamable HTTP to the daemon's app in process. */
async function connect(app: App, via?: typeof VIA_TCP, headers: Record<string, string> = {}) {
  const client = new Client({ name: "volant-test", version: "1.0.0" });
  const base = via ? "http://127.0.0.1:7777/mcp" : "http://volantd/mcp";
  const transport = new StreamableHTTPClientTransport(new URL(base), {
    requestInit: { headers },
    fetch: (url: string | URL, init?: RequestInit) => {
      const req = new Request(url, init);
      if (!via) return Promise.resolve(app.fetch(req));
      const h = new Headers(req.headers);
      if (!h.has("host")) h.set("host", new URL(url).host);
      return Promise.resolve(app.fetch(new Request(req, { headers: h }), via));
    },
  });
  await client.connect(transport);
  return client;
}

/** The one text content of a read, parsed. */
function jsonOf(result: { contents: Array<{ uri: string; mimeType?: string; text?: unknown }> }) {
  equal(result.contents.length, 1);
  equal(result.contents[0]!.mimeType, "application/json");
  return JSON.parse(result.contents[0]!.text as string);
}

/** The MCP error a read is refused with. */
async function refusal(client: Client, uri: string): Promise<McpError> {
  try {
    await client.readResource({ uri });
  } catch (err) {
    ok(err instanceof McpError, `${uri}: ${err}`);
    return err;
  }
  throw new Error(`${uri}: read, expected an error`);
}

Deno.test("MCP resources: listed with their templates, as JSON", async () => {
  const env = await makeTestEnv();
  const { app } = testApp(env);
  const client = await connect(app);
  try {
    ok(client.getServerCapabilities()?.resources, "the resources capability is declared");
    const { resources } = await client.listResources();
    deepEqual(resources.map((r: { uri: string }) => r.uri), [
      "volant://vms",
      "volant://deployments",
    ]);
    deepEqual(resources, MCP_RESOURCES);
    ok(resources.every((r: { mimeType?: string }) => r.mimeType === "application/json"));
    const { resourceTemplates } = await client.listResourceTemplates();
    deepEqual(resourceTemplates.map((t: { uriTemplate: string }) => t.uriTemplate), [
      "volant://vms/{name}",
      "volant://deployments/{name}",
    ]);
    deepEqual(resourceTemplates, MCP_RESOURCE_TEMPLATES);
    // The tools are still there.
    ok((await client.listTools()).tools.some((t: { name: string }) => t.name === "vm_list"));
  } finally {
    await client.close();
    await env.dispose();
  }
});

Deno.test("MCP resources: volant://vms and volant://vms/{name} answer what REST answers", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  const client = await connect(app);
  try {
    deepEqual(jsonOf(await client.readResource({ uri: "volant://vms" })), { vms: [] });
    await daemon.service.create({ name: "web" });
    await daemon.service.create({ name: "db", memory_mb: 256 });
    await daemon.service.wait("web", "running", 5_000);
    await daemon.service.wait("db", "running", 5_000);

    const rest = await (await app.request("/api/v1/vms")).json();
    equal(rest.vms.length, 2);
    const read = await client.readResource({ uri: "volant://vms" });
    equal(read.contents[0]!.uri, "volant://vms");
    deepEqual(jsonOf(read), rest);

    const one = await client.readResource({ uri: "volant://vms/db" });
    equal(one.contents[0]!.uri, "volant://vms/db");
    deepEqual(jsonOf(one), await (await app.request("/api/v1/vms/db")).json());
    equal(jsonOf(one).memory_mb, 256);
  } finally {
    await client.close();
    await env.dispose();
  }
});

Deno.test("MCP resources: an unknown name is not found; a malformed one never reaches a lookup", async () => {
  const env = await makeTestEnv();
  const { app } = testApp(env);
  const client = await connect(app);
  try {
    const missing = await refusal(client, "volant://vms/nope");
    equal(missing.code, RESOURCE_NOT_FOUND);
    match(missing.message, /VM nope does not exist/);
    deepEqual((missing.data as { code: string }).code, "not_found");

    for (
      const uri of [
        "volant://vms/../../etc/passwd",
        "volant://vms/%2e%2e%2fetc%2fpasswd",
        "volant://vms//etc/passwd",
        "volant://vms/Web",
        "volant://vms/web/extra",
        "volant://vms/web?x=1",
        "volant://vms/",
        `volant://vms/${"a".repeat(64)}`,
        "volant://deployments/../x",
      ]
    ) {
      const err = await refusal(client, uri);
      equal(err.code, ErrorCode.InvalidParams, `${uri}: ${err.message}`);
      match(err.message, /Invalid (VM|deployment) name .* must be 1-63 lowercase letters/, uri);
    }
    for (const uri of ["volant://nope", "file:///etc/passwd", "volant://vmsx", "/etc/passwd"]) {
      const err = await refusal(client, uri);
      equal(err.code, RESOURCE_NOT_FOUND, `${uri}: ${err.message}`);
      match(err.message, /not found/);
    }
  } finally {
    await client.close();
    await env.dispose();
  }
});

Deno.test("MCP resources: deployments are an empty list when this volantd has none", async () => {
  const env = await makeTestEnv();
  const { app } = testApp(env);
  const client = await connect(app);
  try {
    deepEqual(jsonOf(await client.readResource({ uri: "volant://deployments" })), {
      deployments: [],
    });
    const err = await refusal(client, "volant://deployments/web");
    equal(err.code, RESOURCE_NOT_FOUND);
    match(err.message, /Deployment web does not exist/);
  } finally {
    await client.close();
    await env.dispose();
  }
});

Deno.test("MCP resources: deployments are read through deps.deployments when present", async () => {
  const env = await makeTestEnv();
  const { daemon } = testApp(env);
  try {
    const asked: string[] = [];
    const shop = { name: "shop", replicas: 2 };
    const deps = {
      service: daemon.service,
      logger: env.logger,
      deployments: {
        list: () => [shop],
        get: (name: string) => {
          asked.push(name);
          return name === "shop" ? shop : undefined;
        },
      },
    } as unknown as ApiDeps;
    const text = async (uri: string) =>
      JSON.parse((await readResource(uri, deps)).contents[0]!.text);
    deepEqual(await text("volant://deployments"), { deployments: [shop] });
    deepEqual(await text("volant://deployments/shop"), shop);
    await rejects(readResource("volant://deployments/gone", deps), (err: McpError) => {
      equal(err.code, RESOURCE_NOT_FOUND);
      match(err.message, /gone/);
      return true;
    });
    await rejects(readResource("volant://deployments/..", deps), McpError);
    deepEqual(asked, ["shop", "gone"], "a malformed name is never looked up");
  } finally {
    await env.dispose();
  }
});

Deno.test("MCP resources: a read-only token may read them", async () => {
  const env = await makeTestEnv();
  const { app, daemon, tokens } = testApp(env);
  try {
    await daemon.service.create({ name: "web" });
    const { token } = tokens.create({ name: "agent", scope: "read" });
    const client = await connect(app, VIA_TCP, { authorization: `Bearer ${token}` });
    try {
      const vms = jsonOf(await client.readResource({ uri: "volant://vms" }));
      deepEqual(vms.vms.map((v: { name: string }) => v.name), ["web"]);
      equal(jsonOf(await client.readResource({ uri: "volant://vms/web" })).name, "web");
    } finally {
      await client.close();
    }
    // Without a token, TCP callers get nothing (the /mcp endpoint's own check).
    await rejects(connect(app, VIA_TCP), /unauthenticated/);
  } finally {
    await env.dispose();
  }
});
