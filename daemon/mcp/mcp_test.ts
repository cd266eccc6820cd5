import { deepEqual, equal, match, ok } from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { VmRecord } from "../../schema/mod.ts";
import { makeTestEnv, testApp } from "../testing.ts";
import { mcpTools } from "./tools.ts";

/** What the client lists of a tool (the fields these tests read). */
interface ListedTool {
  name: string;
  inputSchema: { properties?: Record<string, unknown> };
  annotations?: { readOnlyHint?: boolean };
}

/** The official MCP client, talking Streamable HTTP to the daemon's app in process. */
async function connect(app: { fetch: (req: Request) => Response | Promise<Response> }) {
  const client = new Client({ name: "volant-test", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL("http://volantd/mcp"), {
    fetch: (url: string | URL, init?: RequestInit) =>
      Promise.resolve(app.fetch(new Request(url, init))),
  });
  await client.connect(transport);
  return client;
}

function textOf(result: { content?: unknown }): string {
  const content = result.content as Array<{ type: string; text?: string }>;
  return content.map((c) => c.text ?? "").join("");
}

Deno.test("MCP: a real client lists the tools and drives a VM through its lifecycle", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  const client = await connect(app);
  try {
    const tools = (await client.listTools()).tools as ListedTool[];
    deepEqual(tools.map((t) => t.name), mcpTools().map((t) => t.name));
    const create = tools.find((t) => t.name === "vm_create")!;
    ok("name" in (create.inputSchema.properties ?? {}), "the input schema comes from zod");
    equal(tools.find((t) => t.name === "vm_list")!.annotations?.readOnlyHint, true);

    const created = await client.callTool({ name: "vm_create", arguments: { name: "web" } });
    equal(created.isError, undefined, textOf(created));
    equal(VmRecord.parse(created.structuredContent).state, "starting");
    const running = await client.callTool({
      name: "vm_wait",
      arguments: { name: "web", timeout_ms: 5000 },
    });
    equal(VmRecord.parse(running.structuredContent).state, "running");
    const list = await client.callTool({ name: "vm_list", arguments: {} });
    deepEqual(
      (list.structuredContent as { vms: VmRecord[] }).vms.map((v) => v.name),
      ["web"],
    );
    const stopped = await client.callTool({ name: "vm_stop", arguments: { name: "web" } });
    equal(VmRecord.parse(stopped.structuredContent).state, "stopped");
    const deleted = await client.callTool({ name: "vm_delete", arguments: { name: "web" } });
    equal(deleted.isError, undefined, textOf(deleted));
    equal(daemon.service.count(), 0);
  } finally {
    await client.close();
    await env.dispose();
  }
});

Deno.test("MCP: bad input names the field; daemon errors keep their code and leave nothing", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  const client = await connect(app);
  try {
    const bad = await client.callTool({
      name: "vm_create",
      arguments: { name: "web", memory_mb: 1 },
    });
    equal(bad.isError, true);
    match(textOf(bad), /memory_mb/);
    const missing = await client.callTool({ name: "vm_get", arguments: { name: "nope" } });
    equal(missing.isError, true);
    match(textOf(missing), /^not_found: VM nope does not exist/);
    const both = await client.callTool({
      name: "vm_create",
      arguments: { name: "web", plugin: "p", image: "busybox" },
    });
    equal(both.isError, true);
    match(textOf(both), /plugin or an image, not both/);
    // The same image reference parser as the CLI and the REST API: local sources are image
    // references; a bad one names the field and what was expected.
    const relative = await client.callTool({
      name: "vm_create",
      arguments: { name: "web", image: "docker-archive:app.tar" },
    });
    equal(relative.isError, true);
    match(
      textOf(relative),
      /^invalid_argument: Invalid input: image: .*archive path "app\.tar" is not absolute \(expected /,
    );
    const pull = await client.callTool({ name: "image_pull", arguments: { ref: "Not A Ref" } });
    equal(pull.isError, true);
    match(
      textOf(pull),
      /^invalid_argument: Invalid input: ref: Image reference "Not A Ref" is inv/,
    );
    // Without an image store, the image tools answer what REST answers: unsupported.
    const images = await client.callTool({ name: "image_list", arguments: {} });
    equal(images.isError, true);
    match(textOf(images), /^unsupported: This volantd has no image store configured/);
    const pulled = await client.callTool({ name: "image_pull", arguments: { ref: "busybox" } });
    match(textOf(pulled), /^unsupported: /);
    equal(daemon.service.count(), 0, "failed calls leave no VM");
  } finally {
    await client.close();
    await env.dispose();
  }
});
