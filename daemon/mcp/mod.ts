/**
 * volantd's MCP server: the operations of the table that are tools, at `/mcp` (Streamable HTTP).
 *
 * ```ts ignore
 * import { mcpHandler } from "./mod.ts";
 * app.all("/mcp", (c) => mcpHandler(deps)(c.req.raw));
 * ```
 *
 * @module
 */
export { MCP_PATH, mcpHandler } from "./server.ts";
export { MCP_TOOLS, type McpTool, toolOf } from "./tools.ts";
