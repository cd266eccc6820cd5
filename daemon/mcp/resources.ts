/**
 * The MCP resources volantd offers next to its tools: VM and deployment state, as JSON.
 *
 * - `volant://vms`: every VM, as `GET /api/v1/vms` answers (`{ vms: [...] }`).
 * - `volant://vms/{name}`: one VM's record, as `GET /api/v1/vms/{name}` answers.
 * - `volant://deployments`: every deployment (`{ deployments: [...] }`).
 * - `volant://deployments/{name}`: one deployment.
 *
 * Reading changes nothing, so any caller the `/mcp` endpoint admits may read (a read token is
 * enough). A name in a URI is checked against the VM name schema before any lookup: it is a
 * DNS label, never a path. An unknown name is a "resource not found" error (-32002) naming it;
 * a malformed one is an invalid-params error (-32602) saying what a name must be.
 *
 * @module
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import {
  ErrorCode,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  McpError,
  type ReadResourceRequest,
  ReadResourceRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { VmName, VolantError } from "../../schema/mod.ts";
import type { ApiDeps } from "../api/route.ts";

/** MIME type of every resource: its text is JSON. */
export const RESOURCE_MIME_TYPE = "application/json";

/** The MCP error code for a resource that does not exist (MCP specification, "Resources"). */
export const RESOURCE_NOT_FOUND = -32002;

/** A fixed resource, as `resources/list` shows it. */
export interface McpResource {
  /** Its URI. */
  uri: string;
  /** Short name. */
  name: string;
  /** Human title. */
  title: string;
  /** What it holds (for agents). */
  description: string;
  /** Always {@linkcode RESOURCE_MIME_TYPE}. */
  mimeType: string;
}

/** A resource template, as `resources/templates/list` shows it. */
export interface McpResourceTemplate {
  /** Its RFC 6570 URI template. */
  uriTemplate: string;
  /** Short name. */
  name: string;
  /** Human title. */
  title: string;
  /** What its resources hold (for agents). */
  description: string;
  /** Always {@linkcode RESOURCE_MIME_TYPE}. */
  mimeType: string;
}

/** The fixed resources, in the order `resources/list` gives them. */
export const MCP_RESOURCES: readonly McpResource[] = [
  {
    uri: "volant://vms",
    name: "vms",
    title: "VMs",
    description: "Every VM with its state, address, plugin or image, and workload health " +
      "(as GET /api/v1/vms answers)",
    mimeType: RESOURCE_MIME_TYPE,
  },
  {
    uri: "volant://deployments",
    name: "deployments",
    title: "Deployments",
    description: "Every deployment and its state",
    mimeType: RESOURCE_MIME_TYPE,
  },
];

/** The resource templates, in the order `resources/templates/list` gives them. */
export const MCP_RESOURCE_TEMPLATES: readonly McpResourceTemplate[] = [
  {
    uriTemplate: "volant://vms/{name}",
    name: "vm",
    title: "A VM",
    description: "One VM's record: state, IP, MAC, ports, hypervisor, KVM, workload, last error " +
      "(as GET /api/v1/vms/{name} answers)",
    mimeType: RESOURCE_MIME_TYPE,
  },
  {
    uriTemplate: "volant://deployments/{name}",
    name: "deployment",
    title: "A deployment",
    description: "One deployment and its state",
    mimeType: RESOURCE_MIME_TYPE,
  },
];

/** A parsed resource URI: a collection, and a name within it (checked) or none. */
export interface ResourceTarget {
  /** The collection. */
  kind: "vms" | "deployments";
  /** The name of one of its members (a valid VM name), or absent for the whole collection. */
  name?: string;
}

/** Anything after the collection that is not one path segment is left to the name check. */
const URI = /^volant:\/\/(vms|deployments)(?:\/(.*))?$/s;

/**
 * Parses a resource URI; an unknown one is not found, a malformed name invalid params.
 *
 * @example
 * ```ts
 * import { parseResourceUri } from "./resources.ts";
 * console.assert(parseResourceUri("volant://vms/web").name === "web");
 * ```
 */
export function parseResourceUri(uri: string): ResourceTarget {
  const m = URI.exec(uri);
  if (m === null) {
    throw new McpError(RESOURCE_NOT_FOUND, `Resource ${uri} not found`, {
      code: "not_found",
      uri,
    });
  }
  const kind = m[1] as "vms" | "deployments";
  if (m[2] === undefined) return { kind };
  const parsed = VmName.safeParse(m[2]);
  if (!parsed.success) {
    const what = kind === "vms" ? "VM" : "deployment";
    throw new McpError(
      ErrorCode.InvalidParams,
      `Invalid ${what} name ${JSON.stringify(m[2])} in ${uri}: ` +
        (parsed.error.issues[0]?.message ?? "not a name"),
      { code: "invalid_argument", uri },
    );
  }
  return { kind, name: parsed.data };
}

/** A daemon error as an MCP error: not_found → -32002, invalid_argument → -32602. */
function mcpErrorOf(err: unknown, uri: string): McpError {
  if (err instanceof McpError) return err;
  const body = err instanceof VolantError
    ? err.toJSON()
    : { code: "internal", message: err instanceof Error ? err.message : String(err) };
  const code = body.code === "not_found"
    ? RESOURCE_NOT_FOUND
    : body.code === "invalid_argument"
    ? ErrorCode.InvalidParams
    : ErrorCode.InternalError;
  return new McpError(code, body.message, { ...body, uri });
}

/** The JSON value a resource URI stands for. */
function valueOf(target: ResourceTarget, deps: ApiDeps): unknown {
  if (target.kind === "vms") {
    return target.name === undefined ? { vms: deps.service.list() } : deps.service.get(target.name);
  }
  const deployments = deps.deployments;
  if (target.name === undefined) return { deployments: deployments?.list() ?? [] };
  const found = deployments?.get(target.name);
  if (found === undefined || found === null) {
    throw new VolantError("not_found", `Deployment ${target.name} does not exist`, {
      deployment: target.name,
    });
  }
  return found;
}

/**
 * Reads one resource: its contents as JSON text. Errors are {@linkcode McpError}s (the client
 * sees them as JSON-RPC errors).
 *
 * @example
 * ```ts ignore
 * import { readResource } from "./resources.ts";
 * const { contents } = await readResource("volant://vms/web", deps);
 * console.log(JSON.parse(contents[0].text).state);
 * ```
 */
export async function readResource(
  uri: string,
  deps: ApiDeps,
): Promise<{ contents: { uri: string; mimeType: string; text: string }[] }> {
  try {
    const value = await valueOf(parseResourceUri(uri), deps);
    return {
      contents: [{ uri, mimeType: RESOURCE_MIME_TYPE, text: JSON.stringify(value, null, 2) }],
    };
  } catch (err) {
    const error = mcpErrorOf(err, uri);
    deps.logger.info("mcp resource failed", { uri, code: error.code });
    throw error;
  }
}

/**
 * Answers `resources/list`, `resources/templates/list` and `resources/read` on `server` (and
 * declares the resources capability): call before the server connects.
 *
 * @example
 * ```ts ignore
 * import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
 * import { serveResources } from "./resources.ts";
 * const server = new McpServer({ name: "volantd", version: "1" });
 * serveResources(server, deps);
 * ```
 */
export function serveResources(server: McpServer, deps: ApiDeps): void {
  server.server.registerCapabilities({ resources: {} });
  server.server.setRequestHandler(ListResourcesRequestSchema, () => ({
    resources: MCP_RESOURCES.map((r) => ({ ...r })),
  }));
  server.server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({
    resourceTemplates: MCP_RESOURCE_TEMPLATES.map((t) => ({ ...t })),
  }));
  server.server.setRequestHandler(
    ReadResourceRequestSchema,
    (request: ReadResourceRequest) => readResource(request.params.uri, deps),
  );
}
