/** Plugin registry routes: list, install, show, manifest, enable/disable, remove. @module */
import { z } from "zod";
import {
  PluginEnableRequest,
  PluginInstallRequest,
  PluginList,
  PluginRecord,
} from "../../schema/mod.ts";
import { ndjsonResponse } from "./_ndjson.ts";
import { defineRoute, type Route } from "./route.ts";

/** `GET /api/v1/plugins` */
export const listPlugins: Route = defineRoute({
  method: "GET",
  path: "/api/v1/plugins",
  operationId: "listPlugins",
  summary: "List installed plugins",
  status: 200,
  response: PluginList,
  handle: ({ deps }) => ({ plugins: deps.plugins.list() }),
});

const InstallQuery = z.object({
  progress: z.enum(["ndjson"]).optional().describe(
    "ndjson: stream progress lines ({type: progress|done|error}) instead of one JSON answer",
  ),
});

/** `POST /api/v1/plugins` */
export const installPlugin: Route = defineRoute({
  method: "POST",
  path: "/api/v1/plugins",
  operationId: "installPlugin",
  summary: "Install a plugin: check its manifest and signature, fetch and verify its artifacts",
  body: PluginInstallRequest,
  query: InstallQuery,
  status: 201,
  response: PluginRecord,
  handle: ({ body, query, deps }) =>
    query.progress === "ndjson"
      ? ndjsonResponse("plugin", (onProgress) => deps.plugins.install(body, onProgress))
      : deps.plugins.install(body),
});

/** `GET /api/v1/plugins/:plugin` */
export const getPlugin: Route = defineRoute({
  method: "GET",
  path: "/api/v1/plugins/:plugin",
  operationId: "getPlugin",
  summary: "Show an installed plugin",
  status: 200,
  response: PluginRecord,
  handle: ({ params, deps }) => deps.plugins.get(params.plugin!),
});

/** `GET /api/v1/plugins/:plugin/manifest` */
export const getPluginManifest: Route = defineRoute({
  method: "GET",
  path: "/api/v1/plugins/:plugin/manifest",
  operationId: "getPluginManifest",
  summary: "The plugin's manifest exactly as installed (with its signature)",
  status: 200,
  response: z.record(z.string(), z.unknown()),
  handle: ({ params, deps }) => deps.plugins.manifest(params.plugin!),
});

/** `POST /api/v1/plugins/:plugin/enabled` */
export const setPluginEnabled: Route = defineRoute({
  method: "POST",
  path: "/api/v1/plugins/:plugin/enabled",
  operationId: "setPluginEnabled",
  summary: "Enable or disable a plugin (a disabled plugin cannot back new VM boots)",
  body: PluginEnableRequest,
  status: 200,
  response: PluginRecord,
  handle: ({ params, body, deps }) => deps.plugins.setEnabled(params.plugin!, body.enabled),
});

/** `DELETE /api/v1/plugins/:plugin` */
export const removePlugin: Route = defineRoute({
  method: "DELETE",
  path: "/api/v1/plugins/:plugin",
  operationId: "removePlugin",
  summary: "Remove a plugin (refused while a VM uses it) and its unshared artifacts",
  status: 200,
  response: PluginRecord,
  handle: ({ params, deps }) => deps.plugins.remove(params.plugin!),
});
