/**
 * Plugin registry operations: list, install (with NDJSON progress), show, manifest,
 * enable/disable, remove.
 *
 * @module
 */
import { z } from "zod";
import { defineOperation } from "../operation.ts";
import { PluginEnableRequest, PluginInstallRequest, PluginList, PluginRecord } from "../plugin.ts";
import { ByPlugin, PROGRESS_STREAM, ProgressQuery } from "./_params.ts";

const operatorsOnly = "Installs, changes or removes code VMs boot (signature policy included): " +
  "an operator's step, like trusting keys";

/** `GET /api/v1/plugins` */
export const ListPlugins = defineOperation({
  operationId: "listPlugins",
  method: "GET",
  path: "/api/v1/plugins",
  summary: "List installed plugins",
  status: 200,
  response: PluginList,
  errors: [],
  access: "read",
  mcp: {
    tool: "plugin_list",
    title: "List plugins",
    description: "Installed plugins with their version, signature status, init mode and actions",
  },
});

/** `POST /api/v1/plugins` */
export const InstallPlugin = defineOperation({
  operationId: "installPlugin",
  method: "POST",
  path: "/api/v1/plugins",
  summary: "Install a plugin: check its manifest and signature, fetch and verify its artifacts",
  query: ProgressQuery,
  body: PluginInstallRequest,
  status: 201,
  response: PluginRecord,
  stream: PROGRESS_STREAM,
  errors: [
    "invalid_argument",
    "already_exists",
    "signature_rejected",
    "checksum_mismatch",
    "artifact_unavailable",
  ],
  access: "admin",
  mcp: { restOnly: operatorsOnly },
});

/** `GET /api/v1/plugins/:plugin` */
export const GetPlugin = defineOperation({
  operationId: "getPlugin",
  method: "GET",
  path: "/api/v1/plugins/:plugin",
  summary: "Show an installed plugin",
  params: ByPlugin,
  status: 200,
  response: PluginRecord,
  errors: ["invalid_argument", "not_found"],
  access: "read",
  mcp: { restOnly: "plugin_list answers the same records" },
});

/** `GET /api/v1/plugins/:plugin/manifest` */
export const GetPluginManifest = defineOperation({
  operationId: "getPluginManifest",
  method: "GET",
  path: "/api/v1/plugins/:plugin/manifest",
  summary: "The plugin's manifest exactly as installed (with its signature)",
  params: ByPlugin,
  status: 200,
  response: z.record(z.string(), z.unknown()),
  errors: ["invalid_argument", "not_found"],
  access: "read",
  mcp: { restOnly: "A signed document for operators and tools; plugin_list has its actions" },
});

/** `POST /api/v1/plugins/:plugin/enabled` */
export const SetPluginEnabled = defineOperation({
  operationId: "setPluginEnabled",
  method: "POST",
  path: "/api/v1/plugins/:plugin/enabled",
  summary: "Enable or disable a plugin (a disabled plugin cannot back new VM boots)",
  params: ByPlugin,
  body: PluginEnableRequest,
  status: 200,
  response: PluginRecord,
  errors: ["invalid_argument", "not_found"],
  access: "admin",
  mcp: { restOnly: operatorsOnly },
});

/** `DELETE /api/v1/plugins/:plugin` */
export const RemovePlugin = defineOperation({
  operationId: "removePlugin",
  method: "DELETE",
  path: "/api/v1/plugins/:plugin",
  summary: "Remove a plugin (refused while a VM uses it) and its unshared artifacts",
  params: ByPlugin,
  status: 200,
  response: PluginRecord,
  errors: ["invalid_argument", "not_found", "invalid_state"],
  access: "admin",
  mcp: { restOnly: operatorsOnly },
});
