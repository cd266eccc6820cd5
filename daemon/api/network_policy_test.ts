import { deepEqual, equal, match, ok } from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { DEFAULT_NETWORK_POLICY, ErrorBody, VmRecord } from "../../schema/mod.ts";
import { SetVmNetworkPolicy } from "../../schema/operations/mod.ts";
import { makeTestEnv, testApp } from "../testing.ts";
import { mcpTools } from "../mcp/tools.ts";

async function json(
  app: { request: (p: string, i?: RequestInit) => Response | Promise<Response> },
  path: string,
  init: RequestInit = {},
) {
  const res = await app.request(path, {
    ...init,
    headers: { "content-type": "application/json", ...init.headers },
  });
  return { status: res.status, body: JSON.parse(await res.text()) as unknown };
}

Deno.test("PUT /api/v1/vms/:name/network-policy replaces a running VM's policy", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    await daemon.service.create({ name: "a" });
    await daemon.service.create({ name: "b", network_policy: { egress: "deny" } });
    await daemon.service.wait("b", "running", 5_000);
    const put = await json(app, "/api/v1/vms/b/network-policy", {
      method: "PUT",
      body: JSON.stringify({
        allow_from: ["a"],
        allow_host_ports: [{ port: 53, protocol: "udp" }],
      }),
    });
    equal(put.status, 200, JSON.stringify(put.body));
    deepEqual(VmRecord.parse(put.body).network_policy, {
      ...DEFAULT_NETWORK_POLICY,
      allow_from: ["a"],
      allow_host_ports: [{ port: 53, protocol: "udp" }],
    });
    const got = await json(app, "/api/v1/vms/b");
    deepEqual(VmRecord.parse(got.body).network_policy.allow_from, ["a"]);

    const ghost = await json(app, "/api/v1/vms/b/network-policy", {
      method: "PUT",
      body: JSON.stringify({ allow_from: ["ghost"] }),
    });
    equal(ghost.status, 400);
    const error = ErrorBody.parse(ghost.body);
    equal(error.code, "invalid_argument");
    match(error.message, /^allow_from\[0\]: VM ghost does not exist/);

    await daemon.service.stop("a");
    const stopped = await json(app, "/api/v1/vms/a/network-policy", {
      method: "PUT",
      body: JSON.stringify({}),
    });
    equal(stopped.status, 409);
    equal(ErrorBody.parse(stopped.body).code, "invalid_state");

    const doc = JSON.parse(await (await app.request("/openapi.json")).text());
    const op = doc.paths["/api/v1/vms/{name}/network-policy"].put;
    equal(op.operationId, SetVmNetworkPolicy.operationId);
    ok(op.requestBody.content["application/json"].schema.properties.allow_egress);
  } finally {
    await env.dispose();
  }
});

Deno.test("MCP: vm_network_policy is derived from the route, with its schemas and errors", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  const client = new Client({ name: "volant-test", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL("http://volantd/mcp"), {
      fetch: (url: string | URL, init?: RequestInit) =>
        Promise.resolve(app.fetch(new Request(url, init))),
    }),
  );
  try {
    ok(mcpTools().some((t) => t.name === "vm_network_policy"));
    const tools = (await client.listTools()).tools as {
      name: string;
      description?: string;
      inputSchema: { properties?: Record<string, unknown> };
    }[];
    const listed = tools.find((t) => t.name === "vm_network_policy")!;
    equal(listed.description, SetVmNetworkPolicy.summary);
    deepEqual(
      Object.keys(listed.inputSchema.properties ?? {}).sort(),
      ["allow_egress", "allow_from", "allow_host_ports", "egress", "name"],
    );
    await daemon.service.create({ name: "web" });
    await daemon.service.wait("web", "running", 5_000);
    const ok1 = await client.callTool({
      name: "vm_network_policy",
      arguments: { name: "web", egress: "deny", allow_egress: [{ cidr: "198.51.100.0/24" }] },
    });
    equal(ok1.isError, undefined, JSON.stringify(ok1.content));
    equal(VmRecord.parse(ok1.structuredContent).network_policy.egress, "deny");
    const bad = await client.callTool({
      name: "vm_network_policy",
      arguments: { name: "web", allow_egress: [{ cidr: "198.51.100.9/24" }] },
    });
    equal(bad.isError, true);
    match(JSON.stringify(bad.content), /cidr/);
    equal(daemon.service.get("web").network_policy.allow_egress[0]?.cidr, "198.51.100.0/24");
  } finally {
    await client.close();
    await env.dispose();
  }
});
