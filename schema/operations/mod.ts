/**
 * The table of operations: every operation of volantd's API, declared once (see
 * `schema/operation.ts` for the shape of an entry). The daemon adds a handler per
 * `operationId`; its REST routes, MCP tools and OpenAPI document, and volar's typed client, are
 * derived from this table.
 *
 * ```ts
 * import { OPERATIONS } from "./mod.ts";
 * const tools = OPERATIONS.flatMap((op) => "tool" in op.mcp ? [op.mcp.tool] : []);
 * console.assert(tools.includes("vm_create"));
 * ```
 *
 * @module
 */
import { GetHealth, GetOpenApi } from "./daemon.ts";
import {
  CreateVm,
  DeleteVm,
  GetVm,
  ListVms,
  RestartVm,
  SetVmNetworkPolicy,
  StartVm,
  StopVm,
  WaitVm,
} from "./vms.ts";
import { AgentProxy, CallAction, GetVmStats, VmConsole, VmLogs } from "./vm_agent.ts";
import { VmEvents } from "./events.ts";
import {
  CreateDeployment,
  DeleteDeployment,
  GetDeployment,
  ListDeployments,
  ScaleDeployment,
  UpdateDeployment,
  WaitDeployment,
} from "./deployments.ts";
import { RunAgui } from "./agui.ts";
import {
  CloneVm,
  CreateSnapshot,
  DeleteSnapshot,
  GetSnapshot,
  ListSnapshots,
  RestoreVm,
} from "./snapshots.ts";
import { GetImage, ListImages, PullImage, RemoveImage } from "./images.ts";
import {
  GetPlugin,
  GetPluginManifest,
  InstallPlugin,
  ListPlugins,
  RemovePlugin,
  SetPluginEnabled,
} from "./plugins.ts";
import { ListKeys, TrustKey, UntrustKey } from "./keys.ts";
import { CreateToken, ListTokens, RevokeToken } from "./tokens.ts";
import { ListRegistries, LoginRegistry, LogoutRegistry } from "./registries.ts";

export { GetHealth, GetOpenApi } from "./daemon.ts";
export {
  CloneVm,
  CreateSnapshot,
  DeleteSnapshot,
  GetSnapshot,
  ListSnapshots,
  RestoreVm,
} from "./snapshots.ts";
export {
  CreateVm,
  DeleteVm,
  GetVm,
  ListVms,
  RestartVm,
  SetVmNetworkPolicy,
  StartVm,
  StopVm,
  WaitVm,
} from "./vms.ts";
export {
  ActionAnswer,
  AgentProxy,
  CallAction,
  GetVmStats,
  LogsQuery,
  LogTail,
  VmConsole,
  VmLogs,
} from "./vm_agent.ts";
export { VmEvents } from "./events.ts";
export {
  CreateDeployment,
  DeleteDeployment,
  GetDeployment,
  ListDeployments,
  ScaleDeployment,
  UpdateDeployment,
  WaitDeployment,
} from "./deployments.ts";
export {
  AGUI_MAX_CALLS,
  AGUI_MAX_FOLLOW_MS,
  AguiCall,
  AguiForwardedProps,
  AguiRunInput,
  RunAgui,
} from "./agui.ts";
export { GetImage, ListImages, PullImage, RemoveImage } from "./images.ts";
export {
  GetPlugin,
  GetPluginManifest,
  InstallPlugin,
  ListPlugins,
  RemovePlugin,
  SetPluginEnabled,
} from "./plugins.ts";
export { ListKeys, TrustKey, UntrustKey } from "./keys.ts";
export { CreateToken, ListTokens, RevokeToken } from "./tokens.ts";
export { ListRegistries, LoginRegistry, LogoutRegistry } from "./registries.ts";

/** Every operation, in the order routes are matched, tools listed and the document written. */
export const OPERATIONS = [
  GetHealth,
  GetOpenApi,
  ListVms,
  CreateVm,
  GetVm,
  DeleteVm,
  StartVm,
  StopVm,
  RestartVm,
  WaitVm,
  SetVmNetworkPolicy,
  CallAction,
  VmLogs,
  GetVmStats,
  VmConsole,
  AgentProxy,
  VmEvents,
  RunAgui,
  ListDeployments,
  CreateDeployment,
  GetDeployment,
  ScaleDeployment,
  UpdateDeployment,
  DeleteDeployment,
  WaitDeployment,
  CreateSnapshot,
  ListSnapshots,
  GetSnapshot,
  DeleteSnapshot,
  RestoreVm,
  CloneVm,
  ListImages,
  PullImage,
  GetImage,
  RemoveImage,
  ListPlugins,
  InstallPlugin,
  GetPlugin,
  GetPluginManifest,
  SetPluginEnabled,
  RemovePlugin,
  ListKeys,
  TrustKey,
  UntrustKey,
  ListTokens,
  CreateToken,
  RevokeToken,
  ListRegistries,
  LoginRegistry,
  LogoutRegistry,
] as const;

/** Any operation of the table. */
export type AnyOperation = typeof OPERATIONS[number];

/** The id of an operation of the table. */
export type OperationId = AnyOperation["operationId"];

/** The operation of the table with id `K`. */
export type OperationById<K extends OperationId> = Extract<AnyOperation, { operationId: K }>;

/**
 * volantd's MCP endpoint (Streamable HTTP, JSON-RPC): the tools of this table for agents, on
 * the same listeners as REST.
 */
export const MCP_PATH = "/mcp";
