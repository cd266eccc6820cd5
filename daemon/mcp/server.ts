/**
 * volantd's MCP server at `/mcp` (Streamable HTTP, stateless: every request gets a fresh server
 * and transport, answered as JSON), on the same unix socket and TCP address as the REST API. It
 * lists and calls the tools derived from the table of operations itself (not through the SDK's
 * own argument validation), so a bad argument gets the REST API's error. Tool failures come
 * back as tool errors carrying the daemon's error code and message. It also offers VM and
 * deployment state as resources (`volant://vms`, see ./resources.ts), readable by any caller.
 *
 * @module
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import {
  type CallToolRequest,
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
} from "@modelcontextprotocol/sdk/types.js";
import { VolantError } from "../../schema/mod.ts";
import type { Caller } from "../api/access.ts";
import type { ApiDeps } from "../api/route.ts";
import { serveResources } from "./resources.ts";
import { callTool, mcpTools } from "./tools.ts";

/** The MCP endpoint's path (declared with the table of operations). */
export { MCP_PATH } from "../../schema/operations/mod.ts";

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

/** Answers `tools/list` and `tools/call` with {@linkcode mcpTools}, for `caller`. */
function serveTools(server: McpServer, deps: ApiDeps, caller: Caller): void {
  server.server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: mcpTools().map((t) => ({
      name: t.name,
      title: t.title,
      description: t.description,
      inputSchema: t.inputSchema,
      annotations: { readOnlyHint: t.readOnly, destructiveHint: t.destructive },
    })),
  }));
  server.server.setRequestHandler(
    CallToolRequestSchema,
    async (request: CallToolRequest, extra: { signal: AbortSignal }) => {
      const t = mcpTools().find((tool) => tool.name === request.params.name);
      if (t === undefined) {
        throw new McpError(ErrorCode.InvalidParams, `Tool ${request.params.name} not found`);
      }
      try {
        const args = request.params.arguments ?? {};
        return toolResult(await callTool(t, args, { deps, caller, signal: extra.signal }));
      } catch (err) {
        deps.logger.info("mcp tool failed", {
          tool: t.name,
          code: err instanceof VolantError ? err.code : "internal",
        });
        return toolError(err);
      }
    },
  );
}

/**
 * The handler of `/mcp`: answers one MCP request over Streamable HTTP. The app checks Host,
 * Origin, Content-Type and the token in front of it (daemon/api/access.ts), as for every route;
 * the SDK's own DNS-rebinding check is on too, fed the Host the app accepted. Tools that change
 * state are refused to a read-only `caller`. Tokens and registry credentials have no tools.
 *
 * @example
 * ```ts ignore
 * import { mcpHandler } from "./server.ts";
 * const handle = mcpHandler(deps);
 * app.all("/mcp", (c) => handle(c.req.raw, caller));
 * ```
 */
export function mcpHandler(deps: ApiDeps): (req: Request, caller: Caller) => Promise<Response> {
  return async (req, caller) => {
    const server = new McpServer(
      { name: "volantd", version: deps.version },
      { capabilities: { tools: {} } },
    );
    serveTools(server, deps, caller);
    serveResources(server, deps);
    const host = req.headers.get("host");
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
      // In process there is no Host header (and no network): nothing to rebind.
      enableDnsRebindingProtection: host !== null,
      ...(host === null ? {} : { allowedHosts: [host] }),
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
