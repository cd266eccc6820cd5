import { deepEqual, equal, match } from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  getDefaultEnvironment,
  StdioClientTransport,
} from "@modelcontextprotocol/sdk/client/stdio.js";
import { startDaemon } from "../testing.ts";

const REPO = new URL("../../", import.meta.url).pathname;

Deno.test("volar mcp bridges a stdio MCP client to volantd's tools", async () => {
  const daemon = await startDaemon();
  const client = new Client({ name: "stdio-test", version: "1.0.0" });
  try {
    await client.connect(
      new StdioClientTransport({
        command: Deno.execPath(),
        args: ["run", "-A", "main.ts", "volar", "--socket", daemon.socket, "mcp"],
        cwd: REPO,
        stderr: "pipe",
      }),
    );
    const tools = (await client.listTools()).tools as { name: string }[];
    equal(tools.some((t) => t.name === "vm_create"), true);
    const created = await client.callTool({ name: "vm_create", arguments: { name: "web" } });
    equal(created.isError, undefined, JSON.stringify(created.content));
    await client.callTool({ name: "vm_wait", arguments: { name: "web", timeout_ms: 10_000 } });
    const list = await client.callTool({ name: "vm_list", arguments: {} });
    deepEqual(
      (list.structuredContent as { vms: { name: string; state: string }[] }).vms.map((v) =>
        `${v.name}:${v.state}`
      ),
      ["web:running"],
    );
    const bad = await client.callTool({ name: "vm_get", arguments: { name: "nope" } });
    equal(bad.isError, true);
    match(JSON.stringify(bad.content), /not_found: VM nope does not exist/);
    await client.callTool({ name: "vm_delete", arguments: { name: "web" } });
  } finally {
    await client.close();
    await daemon.stop();
  }
});

Deno.test("volar mcp over TCP sends the token (VOLANT_TOKEN); without one the daemon's 401 comes back", async () => {
  const daemon = await startDaemon({ tcp: true });
  const bridge = (env: Record<string, string>) =>
    new StdioClientTransport({
      command: Deno.execPath(),
      args: ["run", "-A", "main.ts", "volar", "mcp"],
      cwd: REPO,
      env: { ...getDefaultEnvironment(), VOLANT_API_BASE: daemon.api!, ...env },
      stderr: "pipe",
    });
  const client = new Client({ name: "stdio-test", version: "1.0.0" });
  try {
    const anonymous = new Client({ name: "stdio-test", version: "1.0.0" });
    let refused = "";
    try {
      await anonymous.connect(bridge({}));
    } catch (err) {
      refused = String(err);
    } finally {
      await anonymous.close();
    }
    match(refused, /needs a bearer token/);
    await client.connect(bridge({ VOLANT_TOKEN: daemon.token! }));
    const list = await client.callTool({ name: "vm_list", arguments: {} });
    equal(list.isError, undefined, JSON.stringify(list.content));
  } finally {
    await client.close();
    await daemon.stop();
  }
});
