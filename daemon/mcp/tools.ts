/**
 * The MCP tools volantd offers, derived from the route table: every operation of
 * `schema/operations/` that declares a tool. A tool's input is its operation's path parameters,
 * query fields and body fields as one object; a call is split back into those parts and
 * validated by the same function as REST (`parseOperationInput`), so an agent gets the same
 * errors as `volar` and curl, then runs the operation's own handler.
 *
 * @module
 */
import { z } from "zod";
import { ErrorBody, VolantError } from "../../schema/mod.ts";
import {
  isTool,
  type OperationTool,
  operationUrl,
  parseOperationInput,
  splitToolArguments,
  toolInput,
} from "../../schema/operation.ts";
import type { Caller } from "../api/access.ts";
import type { ApiDeps, Route } from "../api/route.ts";
import { ROUTES } from "../api/routes.ts";

/** One MCP tool: its operation's tool declaration, its input schema, and what it runs. */
export interface McpTool {
  /** Tool name. */
  name: string;
  /** Human title. */
  title: string;
  /** What it does (for agents). */
  description: string;
  /** The input, as one strict object (see {@linkcode toolInput}). */
  input: z.ZodObject;
  /** The input's JSON Schema as `tools/list` shows it (the tool's defaults included). */
  inputSchema: { type: "object"; [key: string]: unknown };
  /** Changes nothing (an MCP annotation clients show; read tokens may call only these). */
  readOnly: boolean;
  /** Deletes something (an MCP annotation). */
  destructive: boolean;
  /** Runs a call: validates `args`, then the operation's handler for `caller`. */
  run(args: Record<string, unknown>, deps: ApiDeps, caller: Caller, signal?: AbortSignal): Promise<
    unknown
  >;
}

/** The JSON Schema of a tool's input, with its defaults. */
function inputSchemaOf(input: z.ZodObject, tool: OperationTool): McpTool["inputSchema"] {
  const { $schema: _ignored, ...schema } = z.toJSONSchema(input, {
    io: "input",
    unrepresentable: "any",
  });
  const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  for (const [key, value] of Object.entries(tool.defaults ?? {})) {
    if (properties[key]) properties[key] = { ...properties[key], default: value };
  }
  return { ...schema, type: "object" };
}

/**
 * A handler's `Response` (a stream or a passed-through answer) as the tool's answer: NDJSON
 * lines as `{lines}`, anything else as `{status, body}`; an NDJSON error answer is its error.
 */
async function answerOf(route: Route, res: Response): Promise<unknown> {
  const text = await res.text();
  if (route.op.stream?.kind !== "ndjson") return { status: res.status, body: text };
  if (!res.ok) {
    let parsed: ReturnType<typeof ErrorBody.safeParse> | undefined;
    try {
      parsed = ErrorBody.safeParse(JSON.parse(text));
    } catch {
      parsed = undefined;
    }
    if (parsed?.success) throw VolantError.fromBody(parsed.data);
    throw new VolantError("internal", `HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  return { lines: text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l)) };
}

/**
 * The MCP tool of a route whose operation declares one. A call is validated like a REST
 * request of the operation, then runs its handler with a request standing for the call (its
 * method, path, query, and a raw body from the `body` text field).
 *
 * @example
 * ```ts
 * import { toolOf } from "./tools.ts";
 * import { ROUTES } from "../api/routes.ts";
 * const tool = toolOf(ROUTES.find((r) => r.op.operationId === "getVm")!);
 * console.assert(tool.name === "vm_get" && tool.readOnly);
 * ```
 */
export function toolOf(route: Route): McpTool {
  const { op } = route;
  if (!isTool(op)) throw new Error(`operation ${op.operationId} declares no tool`);
  const input = toolInput(op);
  return {
    name: op.mcp.tool,
    title: op.mcp.title,
    description: op.mcp.description ?? op.summary,
    input,
    inputSchema: inputSchemaOf(input, op.mcp),
    readOnly: op.access === "read",
    destructive: op.mcp.destructive === true,
    async run(args, deps, caller, signal) {
      const split = splitToolArguments(op, args);
      const parsed = parseOperationInput(op, split);
      const url = operationUrl(op, { ...parsed.params, ...parsed.query });
      const request = new Request(`http://volantd${url}`, {
        method: op.method,
        ...(split.text === undefined ? {} : {
          body: new TextEncoder().encode(split.text),
          headers: { "content-type": "application/json" },
        }),
        ...(signal ? { signal } : {}),
      });
      const result = await route.handle({ ...parsed, deps, request, caller });
      return result instanceof Response ? await answerOf(route, result) : result;
    },
  };
}

let tools: readonly McpTool[] | undefined;

/**
 * Every tool, in the order of the table. Built on first use, not at load: the table's handlers
 * include callers of tools (the AG-UI run), so this module is loaded while the table is.
 *
 * @example
 * ```ts
 * import { mcpTools } from "./tools.ts";
 * console.assert(mcpTools().some((t) => t.name === "vm_create"));
 * ```
 */
export function mcpTools(): readonly McpTool[] {
  return tools ??= ROUTES.filter((r) => isTool(r.op)).map(toolOf);
}

/** A tool that changes state, called with a read-only token: refused like the REST routes. */
function readOnlyRefusal(t: McpTool, caller: Caller): VolantError {
  const token = caller.token ? ` ${caller.token.name} (${caller.token.id})` : "";
  return new VolantError(
    "forbidden",
    `The token${token} is read-only: the tool ${t.name} changes state and needs an admin token`,
    { tool: t.name },
  );
}

/**
 * Calls tool `t` for `caller`, as every transport that offers tools does (MCP, AG-UI runs): a
 * tool that changes state is refused to a read-only caller (`forbidden`), then the call is
 * validated and run; its answer, or the VolantError it fails with.
 *
 * @example
 * ```ts ignore
 * import { callTool, mcpTools } from "./tools.ts";
 * const list = mcpTools().find((t) => t.name === "vm_list")!;
 * const answer = await callTool(list, {}, deps, caller);
 * ```
 */
export async function callTool(
  t: McpTool,
  args: Record<string, unknown>,
  context: { deps: ApiDeps; caller: Caller; signal?: AbortSignal },
): Promise<unknown> {
  const { deps, caller, signal } = context;
  if (!t.readOnly && caller.scope !== "admin") throw readOnlyRefusal(t, caller);
  return await t.run(args, deps, caller, signal);
}
