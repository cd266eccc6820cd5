/**
 * The flat route table (the list in the header of `schema/api.ts`). The app and the OpenAPI
 * document are both built from it.
 *
 * @module
 */
import { z } from "zod";
import { buildOpenApi } from "./openapi.ts";
import { defineRoute, type Route } from "./route.ts";
import { getHealth } from "./health.ts";
import {
  createVm,
  deleteVm,
  getVm,
  listVms,
  restartVm,
  setVmNetworkPolicy,
  startVm,
  stopVm,
  waitVm,
} from "./vms.ts";
import {
  getPlugin,
  getPluginManifest,
  installPlugin,
  listPlugins,
  removePlugin,
  setPluginEnabled,
} from "./plugins.ts";
import { listKeys, trustKey, untrustKey } from "./keys.ts";
import { agentProxy, callAction, vmLogs } from "./agent.ts";
import { vmConsole } from "./console.ts";
import { vmEvents } from "./events.ts";
import { getImage, listImages, pullImage, removeImage } from "./images.ts";
import { createToken, listTokens, revokeToken } from "./tokens.ts";
import { listRegistries, loginRegistry, logoutRegistry } from "./registries.ts";

/** Every API route except `/openapi.json`. */
export const ROUTES: readonly Route[] = [
  getHealth,
  listVms,
  createVm,
  getVm,
  deleteVm,
  startVm,
  stopVm,
  restartVm,
  waitVm,
  setVmNetworkPolicy,
  callAction,
  vmLogs,
  vmConsole,
  vmEvents,
  agentProxy,
  listImages,
  pullImage,
  getImage,
  removeImage,
  listPlugins,
  installPlugin,
  getPlugin,
  getPluginManifest,
  setPluginEnabled,
  removePlugin,
  listKeys,
  trustKey,
  untrustKey,
  listTokens,
  createToken,
  revokeToken,
  listRegistries,
  loginRegistry,
  logoutRegistry,
];

/** `GET /openapi.json`: the document for {@linkcode ROUTES} and itself. */
export const getOpenApi: Route = defineRoute({
  method: "GET",
  path: "/openapi.json",
  operationId: "getOpenApi",
  summary: "This API as an OpenAPI 3.1 document",
  status: 200,
  response: z.looseObject({ openapi: z.string() }),
  handle: ({ deps }) => buildOpenApi(ALL_ROUTES, deps.version),
});

/** Every route the daemon serves. */
export const ALL_ROUTES: readonly Route[] = [...ROUTES, getOpenApi];
