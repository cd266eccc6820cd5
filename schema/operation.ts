/**
 * Operations declared once, without their handlers: method, path, schemas, and the MCP tool
 * they also are. volantd's route table adds the handler (`defineRoute({ ...op, handle })`), its
 * MCP server derives the tool (input: the path parameters plus the body's fields), and volar's
 * client calls it with `client.call(op, params, body)` — so REST, MCP, the OpenAPI document and
 * the client cannot drift apart.
 *
 * @module
 */
import { z } from "zod";
import { NetworkPolicy } from "./network_policy.ts";
import { VmRecord } from "./vm.ts";

/** One operation of the API. */
export interface Operation {
  /** OpenAPI operationId. */
  operationId: string;
  /** HTTP method. */
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Path with `:param`s (each a VM-name-like segment), e.g. `/api/v1/vms/:name/…`. */
  path: string;
  /** One-line summary (also the MCP tool's description). */
  summary: string;
  /** Request body schema (an object; its fields become the MCP tool's input). */
  body?: z.core.$ZodType;
  /** Success status. */
  status: 200 | 201;
  /** Success body schema. */
  response: z.core.$ZodType;
  /** Also an MCP tool with this name and title. */
  mcp?: { tool: string; title: string };
}

/** `PUT /api/v1/vms/:name/network-policy`: replaces a running VM's network policy. */
export const SetVmNetworkPolicy = {
  operationId: "setVmNetworkPolicy",
  method: "PUT",
  path: "/api/v1/vms/:name/network-policy",
  summary: "Replace a running VM's network policy (egress, allowed destinations, peers that " +
    "may reach it, host ports); it applies at once, all or nothing",
  body: z.strictObject(NetworkPolicy.shape),
  status: 200,
  response: VmRecord,
  mcp: { tool: "vm_network_policy", title: "Set a VM's network policy" },
} as const satisfies Operation;

/**
 * The path of `op` with its parameters filled in (each URL-encoded).
 *
 * @example
 * ```ts
 * import { operationPath, SetVmNetworkPolicy } from "./operation.ts";
 * console.assert(
 *   operationPath(SetVmNetworkPolicy, { name: "web" }) === "/api/v1/vms/web/network-policy",
 * );
 * ```
 */
export function operationPath(op: Operation, params: Record<string, string>): string {
  return op.path.replace(/:([a-z_]+)/g, (_, key: string) => {
    const value = params[key];
    if (value === undefined) throw new Error(`${op.operationId}: missing path parameter ${key}`);
    return encodeURIComponent(value);
  });
}
