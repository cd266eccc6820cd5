import { deepEqual, equal, match, ok } from "node:assert/strict";
import { type AgentSubscriber, type BaseEvent, EventType, HttpAgent } from "@ag-ui/client";
import { EventSchema } from "@ag-ui/core/schemas";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorBody, VmList, VmRecord } from "../../schema/mod.ts";
import { AguiRunInput } from "../../schema/operations/mod.ts";
import type { ApiDeps } from "../api/route.ts";
import { makeTestEnv, testApp, type TestEnv } from "../testing.ts";
import { aguiRun, type FleetState } from "./mod.ts";

type App = ReturnType<typeof testApp>["app"];

/** Polls `condition` until it holds; fails naming `what` after `ms`. */
async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The app on a real TCP listener on 127.0.0.1 (as volantd's `api.tcp`). */
function listen(app: App): { url: string; server: Deno.HttpServer<Deno.NetAddr> } {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req, info) => app.fetch(req, info),
  );
  return { url: `http://127.0.0.1:${server.addr.port}/api/v1/agui`, server };
}

/** An AG-UI client and every event it received. */
function agent(url: string, headers: Record<string, string> = {}) {
  const seen: BaseEvent[] = [];
  const client = new HttpAgent({ url, headers });
  const subscriber: AgentSubscriber = {
    onEvent({ event }) {
      seen.push(event);
    },
  };
  const state = () => client.state as FleetState;
  return { client, seen, subscriber, state };
}

/** The events of one in-process run, each checked against AG-UI's own event schema. */
async function* aguiEvents(res: Response): AsyncGenerator<BaseEvent> {
  let buffered = "";
  for await (const text of res.body!.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    let end: number;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const data = buffered.slice(0, end).split("\n").filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6)).join("\n");
      buffered = buffered.slice(end + 2);
      if (data !== "") yield EventSchema.parse(JSON.parse(data)) as BaseEvent;
    }
  }
}

function post(app: App, body: unknown): Promise<Response> {
  return Promise.resolve(app.request("/api/v1/agui", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  }));
}

const run = (forwardedProps: unknown) => ({
  threadId: "thread",
  runId: crypto.randomUUID(),
  messages: [],
  forwardedProps,
});

/** What REST says the fleet is. */
async function restState(app: App): Promise<FleetState> {
  const vms = VmList.parse(await (await app.request("/api/v1/vms")).json()).vms;
  const res = await app.request("/api/v1/deployments");
  equal(res.status, 200, "GET /api/v1/deployments");
  const { deployments } = await res.json() as { deployments: unknown[] };
  return JSON.parse(JSON.stringify({ vms, deployments }));
}

function ofType<T extends BaseEvent>(events: BaseEvent[], type: EventType): T[] {
  return events.filter((e) => e.type === type) as T[];
}

Deno.test("AG-UI: a client follows the fleet through a call and outside changes, ending as REST's state", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env, { tcpInsecure: true });
  const { url, server } = listen(app);
  try {
    await daemon.service.create({ name: "old" });
    await daemon.service.wait("old", "running", 5_000);
    const { client, seen, subscriber, state } = agent(url);
    const names = () => (state().vms ?? []).map((v) => `${v.name}:${v.state}`);
    const finished = client.runAgent({
      forwardedProps: {
        follow_ms: 3_000,
        calls: [{ tool: "vm_create", arguments: { name: "made" } }],
      },
    }, subscriber);
    await until(() => ofType(seen, EventType.TOOL_CALL_RESULT).length === 1, "the call's result");
    // While it follows: a VM created and one deleted elsewhere reach its state as deltas.
    await daemon.service.create({ name: "side" });
    await until(() => names().includes("side:running"), "side running in the client's state");
    await until(() => names().includes("made:running"), "made running in the client's state");
    await daemon.service.delete("old");
    await until(() => !names().some((n) => n.startsWith("old:")), "old gone from its state");
    equal(ofType(seen, EventType.RUN_FINISHED).length, 0, "seen while following, not at the end");
    await finished;

    const types = seen.map((e) => e.type);
    equal(types[0], EventType.RUN_STARTED);
    equal(types[1], EventType.STATE_SNAPSHOT);
    equal(types.at(-1), EventType.RUN_FINISHED);
    ok(ofType(seen, EventType.STATE_DELTA).length >= 3, `deltas: ${types.join(" ")}`);
    deepEqual(
      (seen[1] as BaseEvent & { snapshot: FleetState }).snapshot.vms.map((v) => v.name),
      ["old"],
    );
    // The call: start, arguments, end, then the created record as its result.
    const calls = seen.filter((e) => e.type.startsWith("TOOL_CALL_")) as Array<
      BaseEvent & Record<string, string>
    >;
    deepEqual(calls.map((e) => e.type), [
      EventType.TOOL_CALL_START,
      EventType.TOOL_CALL_ARGS,
      EventType.TOOL_CALL_END,
      EventType.TOOL_CALL_RESULT,
    ]);
    equal(new Set(calls.map((e) => e.toolCallId)).size, 1);
    equal(calls[0]!.toolCallName, "vm_create");
    deepEqual(JSON.parse(calls[1]!.delta!), { name: "made" });
    equal(VmRecord.parse(JSON.parse(calls[3]!.content!)).name, "made");
    equal((await app.request("/api/v1/vms/made")).status, 200, "the VM exists");
    // The client applied the snapshot and every delta itself: it holds what REST answers.
    deepEqual(state(), await restState(app));
    ok(names().includes("made:running") && names().includes("side:running"));
    // The client saw the call as a tool call of an assistant message, and its result.
    const tool = client.messages.find((m) => m.role === "tool");
    equal(tool?.role === "tool" && tool.toolCallId, calls[0]!.toolCallId);
  } finally {
    await server.shutdown();
    await env.dispose();
  }
});

/** An MCP client over the same TCP listener, with `headers`. */
async function mcpOver(url: string, headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: "agui-test", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL("/mcp", url), { requestInit: { headers } }),
  );
  return client;
}

Deno.test("AG-UI: a read-only token reads, and its state-changing calls are refused like MCP's", async () => {
  const env = await makeTestEnv();
  const { app, daemon, tokens } = testApp(env);
  const { url, server } = listen(app);
  try {
    const auth = {
      authorization: `Bearer ${tokens.create({ name: "dash", scope: "read" }).token}`,
    };
    // Without a token, nothing: the run is refused before it starts.
    const refused = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(run({})),
    });
    equal(ErrorBody.parse(await refused.json()).code, "unauthenticated");
    const { client, seen, subscriber, state } = agent(url, auth);
    await client.runAgent({
      forwardedProps: {
        calls: [
          { tool: "vm_create", arguments: { name: "nope" } },
          { tool: "vm_list" },
        ],
      },
    }, subscriber);
    const results = ofType<BaseEvent & { content: string }>(seen, EventType.TOOL_CALL_RESULT)
      .map((e) => JSON.parse(e.content));
    equal(results.length, 2);
    const refusal = ErrorBody.parse(results[0]);
    equal(refusal.code, "forbidden");
    match(refusal.message, /token dash \([0-9a-f]{12}\) is read-only: the tool vm_create/);
    deepEqual(results[1], { vms: [] });
    equal(daemon.service.count(), 0, "nothing was created");
    deepEqual(state(), await restState(app));
    // MCP refuses the same call with the same error: both run tools through one function.
    const mcp = await mcpOver(url, auth);
    try {
      const answer = await mcp.callTool({ name: "vm_create", arguments: { name: "nope" } });
      deepEqual(answer.structuredContent, refusal);
    } finally {
      await mcp.close();
    }
  } finally {
    await server.shutdown();
    await env.dispose();
  }
});

Deno.test("AG-UI: bad forwardedProps or an unknown tool is a 400 naming the field", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    const listeners = daemon.service.events.listenerCount();
    const cases: Array<[unknown, RegExp]> = [
      [{ follow_ms: -1 }, /forwardedProps\.follow_ms: Too small/],
      [{ follow_ms: 3_600_001 }, /forwardedProps\.follow_ms: Too big/],
      [{ follow_ms: "10" }, /forwardedProps\.follow_ms: /],
      [{ bogus: 1 }, /forwardedProps\.bogus: unknown field/],
      [{ calls: Array(17).fill({ tool: "vm_list" }) }, /forwardedProps\.calls: Too big/],
      [{ calls: [{ tool: "vm_list", args: {} }] }, /forwardedProps\.calls\.0\.args: unknown field/],
      [
        { calls: [{ tool: "vm_list" }, { tool: "vm_explode" }] },
        /^Invalid input: forwardedProps\.calls\.1\.tool: unknown tool "vm_explode"/,
      ],
    ];
    for (const [props, message] of cases) {
      const res = await post(app, run(props));
      const body = ErrorBody.parse(await res.json());
      equal(res.status, 400, JSON.stringify(props));
      equal(body.code, "invalid_argument");
      match(body.message, message);
    }
    const missing = ErrorBody.parse(await (await post(app, { messages: [] })).json());
    match(missing.message, /threadId: .*; runId: /);
    equal(daemon.service.events.listenerCount(), listeners, "no run started");
    equal(daemon.service.count(), 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("AG-UI: a call with bad arguments gets REST's error as its result; the run goes on", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    const res = await post(
      app,
      run({
        calls: [
          { tool: "vm_create", arguments: { name: "Bad_Name", bogus: 1 } },
          { tool: "vm_get", arguments: { name: "ghost" } },
          { tool: "vm_create", arguments: { name: "good" } },
        ],
      }),
    );
    equal(res.status, 200);
    equal(res.headers.get("content-type"), "text/event-stream");
    const events: BaseEvent[] = [];
    for await (const event of aguiEvents(res)) events.push(event);
    equal(events.at(-1)!.type, EventType.RUN_FINISHED);
    const results = ofType<BaseEvent & { content: string }>(events, EventType.TOOL_CALL_RESULT)
      .map((e) => JSON.parse(e.content));
    const rest = await app.request("/api/v1/vms", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Bad_Name", bogus: 1 }),
    });
    equal(rest.status, 400);
    deepEqual(results[0], await rest.json());
    deepEqual(results[1], await (await app.request("/api/v1/vms/ghost")).json());
    equal(ErrorBody.parse(results[1]).code, "not_found");
    equal(VmRecord.parse(results[2]).name, "good");
    deepEqual(daemon.service.list().map((v) => v.name), ["good"]);
  } finally {
    await env.dispose();
  }
});

/** The ApiDeps a run uses, for calling {@linkcode aguiRun} with options the route does not set. */
function depsOf(env: TestEnv): { deps: ApiDeps; daemon: ReturnType<TestEnv["open"]> } {
  const daemon = env.open();
  const deps: ApiDeps = {
    service: daemon.service,
    plugins: daemon.plugins,
    version: "test",
    hypervisor: {
      name: "fake",
      version: null,
      kvm: false,
      acceleration: { accel: "tcg", reason: "test", probe: null },
    },
    logger: env.logger,
  };
  return { deps, daemon };
}

Deno.test("AG-UI: a client that does not read is dropped with RUN_ERROR slow_consumer, not buffered", async () => {
  const env = await makeTestEnv();
  const { deps, daemon } = depsOf(env);
  try {
    const listeners = daemon.service.events.listenerCount();
    const queueBytes = 4_096;
    const res = aguiRun({
      input: AguiRunInput.parse(run({ follow_ms: 60_000 })),
      deps,
      caller: { listener: "local", token: null, scope: "admin" },
      queueBytes,
      coalesceMs: 5,
    });
    equal(daemon.service.events.listenerCount(), listeners + 1);
    // Nobody reads while VMs come: each one's record is a delta of a few hundred bytes.
    let created = 0;
    while (daemon.service.events.listenerCount() > listeners && created < 60) {
      await daemon.service.create({ name: `vm${created++}` });
      await new Promise((r) => setTimeout(r, 20));
    }
    equal(daemon.service.events.listenerCount(), listeners, `dropped after ${created} VMs`);
    const text = await res.text();
    ok(text.length < queueBytes * 2, `${text.length} bytes were queued for it`);
    const events = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!));
    const last = events.at(-1);
    equal(last.type, EventType.RUN_ERROR);
    equal(last.code, "slow_consumer");
    match(last.message, /read too slowly/);
  } finally {
    await env.dispose();
  }
});

Deno.test("AG-UI: a following run ends with RUN_ERROR when the daemon stops, and unsubscribes when the client goes", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env, { tcpInsecure: true });
  const { url, server } = listen(app);
  try {
    const listeners = daemon.service.events.listenerCount();
    // A client that goes away: the run stops listening.
    const abort = new AbortController();
    const gone = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(run({ follow_ms: 60_000 })),
      signal: abort.signal,
    });
    const reader = gone.body!.getReader();
    await reader.read();
    equal(daemon.service.events.listenerCount(), listeners + 1);
    abort.abort();
    await reader.cancel().catch(() => {});
    await until(() => daemon.service.events.listenerCount() === listeners, "the run to stop");

    // The daemon stopping: the run says so.
    const res = await post(app, run({ follow_ms: 60_000 }));
    const events = aguiEvents(res);
    equal((await events.next()).value!.type, EventType.RUN_STARTED);
    equal((await events.next()).value!.type, EventType.STATE_SNAPSHOT);
    daemon.service.events.close();
    const rest: BaseEvent[] = [];
    for await (const event of events) rest.push(event);
    deepEqual(rest.map((e) => [e.type, (e as { code?: string }).code]), [
      [EventType.RUN_ERROR, "shutting_down"],
    ]);
    equal(daemon.service.events.listenerCount(), listeners);
  } finally {
    await server.shutdown();
    await env.dispose();
  }
});
