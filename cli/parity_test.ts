// The parity test over the table of operations: every operation is reachable over REST, over
// MCP (when it is a tool) and through volar's typed client, the three answer the same input
// with the same result (the same error, code, message and details), bad input included, and
// the OpenAPI document is valid and lists every operation exactly once.
import { deepEqual, equal, ok } from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { z } from "zod";
import { ErrorBody, VolantError } from "../schema/mod.ts";
import {
  BODY_ERRORS,
  COMMON_ERRORS,
  isTool,
  type Operation,
  operationUrl,
} from "../schema/operation.ts";
import { type OperationId, OPERATIONS as TABLE } from "../schema/operations/mod.ts";
import { makeTestEnv, testApp, type TestEnv } from "../daemon/testing.ts";
import { VolantClient } from "./client.ts";

const OPERATIONS: readonly Operation[] = TABLE;

/** One call's input: path parameters and query fields, and a body. */
interface Sample {
  params?: Record<string, unknown>;
  body?: unknown;
}

/**
 * A call of every operation (a new operation without one fails to compile). Against the
 * fixture below — VM `web` running, token `dup`, no image store — each either succeeds without
 * changing what the next transport sees, or fails in the service the same way every time.
 */
const SAMPLES: Record<OperationId, Sample> = {
  getHealth: {},
  getOpenApi: {},
  listVms: {},
  createVm: { body: { name: "web" } },
  getVm: { params: { name: "web" } },
  deleteVm: { params: { name: "ghost" } },
  startVm: { params: { name: "web" } },
  stopVm: { params: { name: "ghost" } },
  restartVm: { params: { name: "ghost" } },
  waitVm: { params: { name: "web", state: "running", timeout_ms: 0 } },
  setVmNetworkPolicy: { params: { name: "ghost" }, body: {} },
  callAction: { params: { name: "ghost", action: "reload" }, body: "{}" },
  vmLogs: { params: { name: "ghost", tail: 5 } },
  getVmStats: { params: { name: "ghost" } },
  vmConsole: { params: { name: "ghost" } },
  agentProxy: { params: { name: "ghost", path: "v1/status" } },
  vmEvents: { params: { vm: "web" } },
  runAgui: { body: { threadId: "parity", runId: "parity-1", messages: [] } },
  listDeployments: {},
  createDeployment: { body: { name: "web", plugin: "ghost", replicas: 1 } },
  getDeployment: { params: { name: "ghost" } },
  scaleDeployment: { params: { name: "ghost" }, body: { replicas: 2 } },
  updateDeployment: { params: { name: "ghost" }, body: { memory_mb: 256 } },
  deleteDeployment: { params: { name: "ghost" } },
  waitDeployment: { params: { name: "ghost", timeout_ms: 0 } },
  createSnapshot: { params: { name: "ghost" }, body: { snapshot: "s1" } },
  listSnapshots: {},
  getSnapshot: { params: { snapshot: "ghost" } },
  deleteSnapshot: { params: { snapshot: "ghost" } },
  restoreVm: { params: { name: "web" }, body: { from: "ghost" } },
  cloneVm: { params: { name: "ghost" }, body: { clone: "web2" } },
  listImages: {},
  pullImage: { body: { ref: "busybox:1.36" } },
  getImage: { params: { image: "busybox:1.36" } },
  removeImage: { params: { image: "busybox:1.36" } },
  listPlugins: {},
  installPlugin: { body: { manifest: { name: "x" } } },
  getPlugin: { params: { plugin: "ghost" } },
  getPluginManifest: { params: { plugin: "ghost" } },
  setPluginEnabled: { params: { plugin: "ghost" }, body: { enabled: false } },
  removePlugin: { params: { plugin: "ghost" } },
  listKeys: {},
  trustKey: { body: { public_key: "ed25519:not-a-key" } },
  untrustKey: { params: { key_id: "0123456789abcdef" } },
  listTokens: {},
  createToken: { body: { name: "dup" } },
  revokeToken: { params: { token: "ghost" } },
  listRegistries: {},
  loginRegistry: { body: { host: "ghcr.io", username: "ci", password: "secret" } },
  logoutRegistry: { params: { host: "ghost.example" } },
};

/** What a transport answered: success (with the JSON answer, when it is one) or the error. */
type Outcome = { ok: true; json?: unknown } | { ok: false; error: ErrorBody };

function sampleOf(op: Operation): Sample {
  return SAMPLES[op.operationId as OperationId];
}

/** The fixture: one daemon app (fake driver, no image store) on a unix socket of its own. */
interface Fixture {
  env: TestEnv;
  socket: string;
  http: Deno.HttpClient;
  client: VolantClient;
  mcp: Client;
  close(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const env = await makeTestEnv();
  const { app, daemon, tokens } = testApp(env);
  await daemon.service.create({ name: "web" });
  await daemon.service.wait("web", "running", 5_000);
  tokens.create({ name: "dup" });
  const socket = `${env.root}/volantd.sock`;
  const server = Deno.serve({ path: socket, onListen() {} }, (req, info) => app.fetch(req, info));
  const http = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  const client = new VolantClient({ kind: "unix", socket });
  const mcp = new Client({ name: "parity", version: "1.0.0" });
  await mcp.connect(
    new StreamableHTTPClientTransport(new URL("http://volantd/mcp"), {
      fetch: (url: string | URL, init?: RequestInit) => fetch(url, { ...init, client: http }),
    }),
  );
  return {
    env,
    socket,
    http,
    client,
    mcp,
    async close() {
      await mcp.close();
      client.close();
      http.close();
      await server.shutdown();
      await env.dispose();
    },
  };
}

/** A call over plain HTTP on the unix socket, as curl would make it. */
async function viaRest(f: Fixture, op: Operation, sample: Sample): Promise<Outcome> {
  const raw = op.rawBody !== undefined;
  const body = sample.body === undefined
    ? undefined
    : raw
    ? String(sample.body)
    : JSON.stringify(sample.body);
  const abort = new AbortController();
  const res = await fetch(`http://volantd${operationUrl(op, sample.params ?? {})}`, {
    method: op.method === "ANY" ? "GET" : op.method,
    client: f.http,
    signal: abort.signal,
    ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } }),
  });
  if (!res.ok) return { ok: false, error: ErrorBody.parse(await res.json()) };
  if (op.stream?.kind === "sse") {
    equal(res.headers.get("content-type"), "text/event-stream", op.operationId);
    abort.abort();
    await res.body?.cancel().catch(() => {});
    return { ok: true };
  }
  const json = await res.json();
  ok(z.safeParse(op.response, json).success, `${op.operationId}: the answer fits its schema`);
  return { ok: true, json };
}

/** The same call through volar's typed client. */
async function viaClient(f: Fixture, op: Operation, sample: Sample): Promise<Outcome> {
  const params = sample.params ?? {};
  try {
    if (op.stream !== undefined && op.stream.kind !== "websocket") {
      const abort = new AbortController();
      const res = await f.client.open(op, params, sample.body as never, {
        signal: abort.signal,
        ...(op.rawBody ? { headers: { "content-type": "application/json" } } : {}),
      });
      abort.abort();
      await res.body?.cancel().catch(() => {});
      return { ok: true };
    }
    return { ok: true, json: await f.client.call(op, params, sample.body as never) };
  } catch (err) {
    ok(err instanceof VolantError, `${op.operationId}: ${err}`);
    return { ok: false, error: err.toJSON() };
  }
}

/** The same call as an MCP tool call: the parts' fields side by side. */
async function viaMcp(f: Fixture, op: Operation, sample: Sample): Promise<Outcome> {
  const args: Record<string, unknown> = {
    ...sample.params,
    ...(op.rawBody
      ? (sample.body === undefined ? {} : { body: sample.body })
      : (sample.body as Record<string, unknown> | undefined)),
  };
  const name = isTool(op) ? op.mcp.tool : "";
  const result = await f.mcp.callTool({ name, arguments: args });
  if (result.isError) return { ok: false, error: ErrorBody.parse(result.structuredContent) };
  return { ok: true, json: result.structuredContent };
}

function codesOf(op: Operation): Set<string> {
  return new Set([...op.errors, ...COMMON_ERRORS, ...(op.body || op.rawBody ? BODY_ERRORS : [])]);
}

Deno.test("parity: every operation is reachable over REST, MCP and the client, alike", async () => {
  const f = await fixture();
  try {
    const listed = (await f.mcp.listTools()).tools.map((t: { name: string }) => t.name);
    deepEqual(listed, OPERATIONS.flatMap((op) => isTool(op) ? [op.mcp.tool] : []));
    for (const op of OPERATIONS) {
      const sample = sampleOf(op);
      const rest = await viaRest(f, op, sample);
      if (!rest.ok) {
        ok(!rest.error.message.startsWith("No route"), `${op.operationId}: ${rest.error.message}`);
        ok(
          codesOf(op).has(rest.error.code),
          `${op.operationId} answered ${rest.error.code}, which it does not declare`,
        );
      }
      const client = await viaClient(f, op, sample);
      equal(client.ok, rest.ok, `${op.operationId}: client and REST`);
      if (!rest.ok && !client.ok) deepEqual(client.error, rest.error, op.operationId);
      if (!isTool(op)) continue;
      const mcp = await viaMcp(f, op, sample);
      equal(mcp.ok, rest.ok, `${op.operationId}: MCP and REST`);
      if (!rest.ok && !mcp.ok) deepEqual(mcp.error, rest.error, op.operationId);
      if (rest.ok && mcp.ok && op.stream === undefined && op.operationId !== "loginRegistry") {
        deepEqual(
          z.parse(op.response, mcp.json),
          z.parse(op.response, rest.json),
          `${op.operationId}: MCP and REST answer alike`,
        );
      }
    }
  } finally {
    await f.close();
  }
});

/** Bad input for `op`, made from its own schemas: a bad value for each path parameter, and a
 * body missing its required fields. */
function badInputs(op: Operation): Array<{ why: string; sample: Sample }> {
  const sample = sampleOf(op);
  const out: Array<{ why: string; sample: Sample }> = [];
  for (const key of Object.keys(op.params?.shape ?? {})) {
    if (z.safeParse(op.params!.shape[key]!, "Bad_Name").success) continue;
    out.push({
      why: `a bad ${key}`,
      sample: { ...sample, params: { ...sample.params, [key]: "Bad_Name" } },
    });
  }
  if (op.body !== undefined && !z.safeParse(op.body, {}).success) {
    out.push({ why: "a missing field", sample: { ...sample, body: {} } });
  }
  if (op.body instanceof z.ZodObject) {
    out.push({
      why: "an unknown field",
      sample: { ...sample, body: { ...sample.body as object, bogus: 1 } },
    });
  }
  if (op.operationId === "waitVm") {
    out.push({ why: "a bad query", sample: { params: { name: "web", state: "flying" } } });
  }
  return out;
}

Deno.test("parity: bad input gets the same invalid_argument over REST, MCP and the client", async () => {
  const f = await fixture();
  try {
    let cases = 0;
    for (const op of OPERATIONS) {
      for (const { why, sample } of badInputs(op)) {
        const what = `${op.operationId} with ${why}`;
        const rest = await viaRest(f, op, sample);
        ok(!rest.ok, `${what}: refused`);
        equal(rest.error.code, "invalid_argument", `${what}: ${rest.error.message}`);
        ok(/^Invalid input: /.test(rest.error.message), rest.error.message);
        const client = await viaClient(f, op, sample);
        deepEqual(client, rest, `${what}: client`);
        if (isTool(op)) deepEqual(await viaMcp(f, op, sample), rest, `${what}: MCP`);
        cases++;
      }
    }
    ok(cases >= 30, `only ${cases} bad inputs`);
    equal(f.env.registry.alive().length, 1, "bad input created nothing");
  } finally {
    await f.close();
  }
});

/** Every JSON Schema in the document (component, parameter, body or answer). */
function* schemasIn(value: unknown, key = ""): Generator<Record<string, unknown>> {
  if (value === null || typeof value !== "object") return;
  if (key === "schema") yield value as Record<string, unknown>;
  for (const [k, v] of Object.entries(value)) {
    if (key === "schemas") yield v as Record<string, unknown>;
    else yield* schemasIn(v, k);
  }
}

Deno.test("parity: /openapi.json is valid OpenAPI 3.1 and lists each operation once", async () => {
  const f = await fixture();
  try {
    const doc = await f.client.call(TABLE[1], {});
    const result = await new Validator().validate(doc);
    ok(result.valid, JSON.stringify(result.errors, null, 2));
    // Its schemas are valid JSON Schema 2020-12, `$ref`s into the components resolved.
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const components = (doc.components as { schemas: Record<string, unknown> }).schemas;
    ajv.addSchema({ $id: "urn:volant:components", $defs: components });
    let compiled = 0;
    for (const schema of schemasIn(doc)) {
      const text = JSON.stringify(schema).replaceAll(
        '"#/components/schemas/',
        '"urn:volant:components#/$defs/',
      );
      ajv.compile(JSON.parse(text));
      compiled++;
    }
    ok(compiled > 50, `${compiled} schemas`);
    const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, o]) => ({ path, method, o: o as OpenApiOp }))
      );
    const ids = operations.map(({ o }) => o.operationId);
    equal(new Set(ids).size, ids.length, "operationIds are unique");
    for (const op of OPERATIONS) {
      const found = operations.filter(({ o }) => o.operationId === op.operationId);
      equal(found.length, 1, `${op.operationId} is listed once`);
      const { o } = found[0]!;
      equal(o["x-volant-mcp-tool"], isTool(op) ? op.mcp.tool : undefined, op.operationId);
      equal(o["x-volant-rest-only"] !== undefined, !isTool(op), op.operationId);
      for (const code of op.errors) {
        ok(JSON.stringify(o.responses).includes(code), `${op.operationId}: ${code} documented`);
      }
    }
    // Nothing else: the only other entries are the extra methods of the agent proxy.
    for (const id of ids) {
      ok(
        OPERATIONS.some((op) =>
          op.operationId === id || (op.method === "ANY" && id.startsWith(`${op.operationId}_`))
        ),
        `${id} is an operation of the table`,
      );
    }
  } finally {
    await f.close();
  }
});

/** The fields of an OpenAPI operation these tests read. */
interface OpenApiOp {
  operationId: string;
  responses: Record<string, unknown>;
  "x-volant-mcp-tool"?: string;
  "x-volant-rest-only"?: string;
}
