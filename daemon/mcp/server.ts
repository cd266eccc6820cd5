/**
 * volantd's MCP server at `/mcp` (Streamable HTTP, stateless: every request gets a fresh server
 * and transport, answered as JSON), on the same unix socket and TCP address as the REST API.
 * Tool failures come back as tool errors carrying the daemon's error code and message.
 *
 * @module
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { VolantError } from "../../schema/mod.ts";
import type { ApiDeps } from "../api/route.ts";
import { MCP_TOOLS, type McpTool } from "./tools.ts";

/** The MCP endpoint's path. */
export const MCP_PATH = "/mcp";

function toolResult(value: unknown) {
  const structured = value !== null && typeof value === "object" && !Array.isArray(value)
    ? value as Record<string, unknown>
    : { value };
  return {
    content: [{ type: "text" as const, text: JSON.stringify(value, null, 2) }],
    structuredContent: structured,
  };
}

function toolError(err: unknown) {
  const body = err instanceof VolantError
    ? err.toJSON()
    : { code: "internal", message: err instanceof Error ? err.message : String(err) };
  return {
    isError: true,
    content: [{ type: "text" as const, text: `${body.code}: ${body.message}` }],
    structuredContent: body as unknown as Record<string, unknown>,
  };
}

function register(server: McpServer, t: McpTool, deps: ApiDeps): void {
  server.registerTool(t.name, {
    title: t.title,
    description: t.description,
    inputSchema: t.input,
    annotations: { readOnlyHint: t.readOnly, destructiveHint: t.name === "vm_delete" },
  }, async (args: Record<string, unknown>) => {
    try {
      return toolResult(await t.run(args, deps));
    } catch (err) {
      deps.logger.info("mcp tool failed", {
        tool: t.name,
        code: err instanceof VolantError ? err.code : "internal",
      });
      return toolError(err);
    }
  });
}

/**
 * The handler of `/mcp`: answers one MCP request over Streamable HTTP.
 *
 * @example
 * ```ts ignore
 * import { mcpHandler } from "./server.ts";
 * const handle = mcpHandler(deps);
 * app.all("/mcp", (c) => handle(c.req.raw));
 * ```
 */
export function mcpHandler(deps: ApiDeps): (req: Request) => Promise<Response> {
  return async (req) => {
    const server = new McpServer({ name: "volantd", version: deps.version });
    for (const t of MCP_TOOLS) register(server, t, deps);
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    await server.connect(transport);
    try {
      return await transport.handleRequest(req);
    } finally {
      await transport.close().catch(() => {});
      await server.close().catch(() => {});
    }
  };
}
