/**
 * volantd's MCP server: the operations of the table that are tools, and VM and deployment state
 * as resources (`volant://vms`, `volant://vms/{name}`, ...), at `/mcp` (Streamable HTTP).
 *
 * ```ts ignore
 * import { mcpHandler } from "./mod.ts";
 * app.all("/mcp", (c) => mcpHandler(deps)(c.req.raw));
 * ```
 *
 * @module
 */
export { MCP_PATH, mcpHandler } from "./server.ts";
export {
  MCP_RESOURCE_TEMPLATES,
  MCP_RESOURCES,
  type McpResource,
  type McpResourceTemplate,
  readResource,
} from "./resources.ts";
export { callTool, type McpTool, mcpTools, toolOf } from "./tools.ts";
