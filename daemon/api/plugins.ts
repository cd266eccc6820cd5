/** Plugin registry routes: list, install, show, manifest, enable/disable, remove. @module */
import { z } from "zod";
import {
  PluginEnableRequest,
  PluginInstallRequest,
  PluginList,
  PluginRecord,
  VolantError,
} from "../../schema/mod.ts";
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

function ndjsonInstall(
  run: (onProgress: (p: unknown) => void) => Promise<unknown>,
): Response {
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      const send = (value: unknown) => {
        try {
          controller.enqueue(encoder.encode(`${JSON.stringify(value)}\n`));
        } catch {
          // The client went away; the install still finishes.
        }
      };
      let last = 0;
      try {
        const plugin = await run((p) => {
          const now = performance.now();
          if (now - last < 100) return;
          last = now;
          send({ type: "progress", ...(p as object) });
        });
        send({ type: "done", plugin });
      } catch (err) {
        const body = err instanceof VolantError
          ? err.toJSON()
          : { code: "internal", message: String(err) };
        send({ type: "error", error: body });
      }
      try {
        controller.close();
      } catch {
        // Already closed by the client.
      }
    },
  });
  return new Response(stream, { status: 200, headers: { "content-type": "application/x-ndjson" } });
}

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
      ? ndjsonInstall((onProgress) => deps.plugins.install(body, onProgress))
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
