/**
 * The MCP tools volantd offers: the same operations as the REST API, with the same zod schemas
 * as their inputs (so an agent gets the same validation and error messages as `volar`), acting
 * on the same services.
 *
 * @module
 */
import { z } from "zod";
import { ImagePullRequest } from "../../schema/image.ts";
import { fromZodError, VmCreateRequest, VmName, VmState } from "../../schema/mod.ts";
import { toAgent } from "../api/agent.ts";
import type { ApiDeps, Route } from "../api/route.ts";
import { ROUTES } from "../api/routes.ts";

/** One MCP tool: its name, what it does, its input schema, and what it runs. */
export interface McpTool {
  name: string;
  title: string;
  description: string;
  input: z.ZodObject;
  /** Read-only tools change nothing (an MCP annotation clients show). */
  readOnly: boolean;
  run(args: Record<string, unknown>, deps: ApiDeps): Promise<unknown>;
}

const ByName = z.strictObject({ name: VmName.describe("The VM's name") });

function tool<S extends z.ZodObject>(
  name: string,
  title: string,
  description: string,
  input: S,
  readOnly: boolean,
  run: (args: z.infer<S>, deps: ApiDeps) => unknown,
): McpTool {
  return {
    name,
    title,
    description,
    input,
    readOnly,
    run: async (args, deps) => await run(args as z.infer<S>, deps),
  };
}

/**
 * The MCP tool of a route that declares one (`route.mcp`): its input is the route's path
 * parameters (`name` is a VM name) plus its body's fields, validated by the route's own
 * schemas; it runs the route's handler, as REST does. The MCP server has already refused a
 * tool that changes state to a read-only caller.
 */
export function routeTool(route: Route): McpTool {
  if (route.mcp === undefined) throw new Error(`route ${route.operationId} declares no tool`);
  const params = [...route.path.matchAll(/:([a-z_]+)/g)].map((m) => m[1]!);
  const body = route.body as z.ZodObject | undefined;
  const input = z.strictObject({
    ...Object.fromEntries(params.map((p) => [p, p === "name" ? VmName : z.string().min(1)])),
    ...(body?.shape ?? {}),
  });
  return {
    name: route.mcp.tool,
    title: route.mcp.title,
    description: route.summary,
    input,
    readOnly: route.method === "GET",
    async run(args, deps) {
      const rest: Record<string, unknown> = { ...args };
      const values: Record<string, string> = {};
      for (const p of params) {
        values[p] = String(rest[p]);
        delete rest[p];
      }
      let parsed: unknown = undefined;
      if (body !== undefined) {
        const result = body.safeParse(rest);
        if (!result.success) throw fromZodError(result.error);
        parsed = result.data;
      }
      const path = route.path.replace(/:([a-z_]+)/g, (_, p: string) => values[p]!);
      return await route.handle({
        params: values,
        body: parsed,
        query: undefined,
        deps,
        request: new Request(`http://volantd${path}`, { method: route.method }),
        caller: { listener: "local", token: null, scope: "admin" },
      });
    },
  };
}

async function text(res: Response): Promise<{ status: number; body: string }> {
  return { status: res.status, body: await res.text() };
}

/** Every tool, in the order clients list them. */
export const MCP_TOOLS: readonly McpTool[] = [
  tool(
    "vm_list",
    "List VMs",
    "Every VM with its state, address, plugin or image, and workload health",
    z.strictObject({}),
    true,
    (_args, deps) => ({ vms: deps.service.list() }),
  ),
  tool(
    "vm_get",
    "Show a VM",
    "One VM's record: state, IP, MAC, ports, hypervisor, KVM, workload, last error",
    ByName,
    true,
    ({ name }, deps) => deps.service.get(name),
  ),
  tool(
    "vm_create",
    "Create a VM",
    "Create and boot a microVM (a plugin's workload, an OCI image, or kestrel alone); answers " +
      "once its VMM runs (state starting) — use vm_wait for running",
    VmCreateRequest,
    false,
    (args, deps) => deps.service.create(args),
  ),
  tool(
    "vm_wait",
    "Wait for a VM's state",
    "Wait until the VM is in a state (default running), up to timeout_ms",
    z.strictObject({
      name: VmName,
      state: VmState.default("running"),
      timeout_ms: z.number().int().min(0).max(600_000).default(60_000),
    }),
    true,
    ({ name, state, timeout_ms }, deps) => deps.service.wait(name, state, timeout_ms),
  ),
  tool(
    "vm_start",
    "Start a VM",
    "Start a stopped or crashed VM",
    ByName,
    false,
    ({ name }, deps) => deps.service.start(name),
  ),
  tool(
    "vm_stop",
    "Stop a VM",
    "Power button, then SIGTERM, then SIGKILL",
    ByName,
    false,
    ({ name }, deps) => deps.service.stop(name),
  ),
  tool(
    "vm_restart",
    "Restart a VM",
    "Stop, then start",
    ByName,
    false,
    ({ name }, deps) => deps.service.restart(name),
  ),
  tool(
    "vm_delete",
    "Delete a VM",
    "Stop it and free its address, tap, ports, disks and logs",
    ByName,
    false,
    ({ name }, deps) => deps.service.delete(name),
  ),
  tool(
    "vm_logs",
    "Read a VM's workload output",
    "The last lines of the workload's output (stdout and stderr) as kestrel keeps them",
    z.strictObject({ name: VmName, tail: z.number().int().min(1).max(10_000).default(100) }),
    true,
    async ({ name, tail }, deps) => {
      const res = await text(await toAgent(deps, name, `/v1/logs?tail=${tail}`, {}));
      const lines = res.body.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
      return { lines };
    },
  ),
  tool(
    "vm_action",
    "Run a manifest action",
    "Run one of the plugin's actions in the VM; the workload's answer comes back as text",
    z.strictObject({
      name: VmName,
      action: z.string().min(1).describe("The action's name (see plugin_list)"),
      body: z.string().optional().describe("Request body passed to the workload"),
    }),
    false,
    async ({ name, action, body }, deps) =>
      await text(
        await toAgent(deps, name, `/v1/actions/${encodeURIComponent(action)}`, {
          method: "POST",
          ...(body === undefined ? {} : {
            body: new TextEncoder().encode(body),
            headers: { "content-type": "application/json" },
          }),
        }),
      ),
  ),
  tool(
    "plugin_list",
    "List plugins",
    "Installed plugins with their version, signature status, init mode and actions",
    z.strictObject({}),
    true,
    (_args, deps) => ({ plugins: deps.plugins.list() }),
  ),
  tool(
    "image_list",
    "List images",
    "Cached OCI images with their digest, root filesystem size and the VMs using them",
    z.strictObject({}),
    true,
    async (_args, deps) => ({ images: deps.images ? await deps.images.list() : [] }),
  ),
  tool(
    "image_pull",
    "Pull an image",
    "Pull an OCI image (digests verified) and build its shared root filesystem",
    ImagePullRequest,
    false,
    (args, deps) => {
      if (!deps.images) throw new Error("this volantd has no image store");
      return deps.images.pull(args);
    },
  ),
  // Operations declared once in the route table with their tool (`mcp`).
  ...ROUTES.flatMap((route) => route.mcp === undefined ? [] : [routeTool(route)]),
];
