/**
 * The flat route table: one handler per operation of `schema/operations/`, keyed by
 * operationId. A handler translates — validated input in, a service call, its answer out — and
 * does nothing else; the long ones (streams, proxies, the console) are in files of their own.
 * The REST app, the MCP tools and the OpenAPI document are all built from this table.
 *
 * @module
 */
import { HypervisorName, VolantError } from "../../schema/mod.ts";
import { OPERATIONS } from "../../schema/operations/mod.ts";
import type {
  DeploymentService,
  ImageService,
  RegistryCredentialService,
  TokenService,
} from "../services/mod.ts";
import { ndjsonResponse } from "./_ndjson.ts";
import { agentProxy, callAction, vmLogs, vmStats } from "./agent.ts";
import { vmConsole } from "./console.ts";
import { vmEvents } from "./events.ts";
import { runAgui } from "../agui/mod.ts";
import { buildOpenApi } from "./openapi.ts";
import type { ApiDeps, Handlers, Route } from "./route.ts";

// A service a daemon may lack answers `unsupported` (REST and MCP alike: both call these).
function images(deps: ApiDeps): ImageService {
  if (!deps.images) {
    throw new VolantError("unsupported", "This volantd has no image store configured");
  }
  return deps.images;
}

function deployments(deps: ApiDeps): DeploymentService {
  if (!deps.deployments) throw new VolantError("unsupported", "This volantd runs no deployments");
  return deps.deployments;
}

function tokens(deps: ApiDeps): TokenService {
  if (!deps.tokens) throw new VolantError("unsupported", "This volantd keeps no API tokens");
  return deps.tokens;
}

function registries(deps: ApiDeps): RegistryCredentialService {
  if (!deps.registries) {
    throw new VolantError("unsupported", "This volantd keeps no registry credentials");
  }
  return deps.registries;
}

/** Every operation's handler. */
export const HANDLERS: Handlers = {
  getHealth: ({ deps }) => ({
    status: "ok",
    version: deps.version,
    hypervisor: {
      name: HypervisorName.parse(deps.hypervisor.name),
      version: deps.hypervisor.version,
      kvm: deps.hypervisor.kvm,
      acceleration: deps.hypervisor.acceleration,
    },
    vms: deps.service.count(),
  }),
  getOpenApi: ({ deps }) => buildOpenApi(OPERATIONS, deps.version),

  listVms: ({ deps }) => ({ vms: deps.service.list() }),
  createVm: ({ body, deps }) => deps.service.create(body),
  getVm: ({ params, deps }) => deps.service.get(params.name),
  deleteVm: ({ params, deps }) => deps.service.delete(params.name),
  startVm: ({ params, deps }) => deps.service.start(params.name),
  stopVm: ({ params, deps }) => deps.service.stop(params.name),
  restartVm: ({ params, deps }) => deps.service.restart(params.name),
  waitVm: ({ params, query, deps }) =>
    deps.service.wait(params.name, query.state, query.timeout_ms),
  setVmNetworkPolicy: ({ params, body, deps }) => deps.service.setNetworkPolicy(params.name, body),
  callAction,
  vmLogs,
  getVmStats: vmStats,
  vmConsole,
  agentProxy,
  vmEvents,
  runAgui,

  createSnapshot: ({ params, body, deps }) => deps.service.snapshots.create(params.name, body),
  listSnapshots: async ({ deps }) => ({ snapshots: await deps.service.snapshots.list() }),
  getSnapshot: ({ params, deps }) => deps.service.snapshots.get(params.snapshot),
  deleteSnapshot: ({ params, deps }) => deps.service.snapshots.remove(params.snapshot),
  restoreVm: ({ params, body, deps }) => deps.service.snapshots.restore(params.name, body),
  cloneVm: ({ params, body, deps }) => deps.service.clone(params.name, body),

  listDeployments: ({ deps }) => ({ deployments: deps.deployments?.list() ?? [] }),
  createDeployment: ({ body, deps }) => deployments(deps).create(body),
  getDeployment: ({ params, deps }) => deployments(deps).get(params.name),
  scaleDeployment: ({ params, body, deps }) => deployments(deps).scale(params.name, body),
  updateDeployment: ({ params, body, deps }) => deployments(deps).update(params.name, body),
  deleteDeployment: ({ params, deps }) => deployments(deps).delete(params.name),
  waitDeployment: ({ params, query, deps }) =>
    deployments(deps).wait(params.name, query.timeout_ms),

  listImages: async ({ deps }) => ({ images: await images(deps).list() }),
  pullImage: ({ query, body, deps }) =>
    query.progress === "ndjson"
      ? ndjsonResponse("image", (onProgress) => images(deps).pull(body, onProgress))
      : images(deps).pull(body),
  getImage: ({ params, deps }) => images(deps).get(params.image),
  removeImage: ({ params, deps }) => images(deps).remove(params.image),

  listPlugins: ({ deps }) => ({ plugins: deps.plugins.list() }),
  installPlugin: ({ query, body, deps }) =>
    query.progress === "ndjson"
      ? ndjsonResponse("plugin", (onProgress) => deps.plugins.install(body, onProgress))
      : deps.plugins.install(body),
  getPlugin: ({ params, deps }) => deps.plugins.get(params.plugin),
  getPluginManifest: ({ params, deps }) => deps.plugins.manifest(params.plugin),
  setPluginEnabled: ({ params, body, deps }) =>
    deps.plugins.setEnabled(params.plugin, body.enabled),
  removePlugin: ({ params, deps }) => deps.plugins.remove(params.plugin),

  listKeys: ({ deps }) => ({ keys: deps.plugins.keys() }),
  trustKey: ({ body, deps }) => deps.plugins.trustKey(body),
  untrustKey: ({ params, deps }) => deps.plugins.untrustKey(params.key_id),

  listTokens: ({ query, deps }) => ({
    tokens: tokens(deps).list(query.all === "1" || query.all === "true"),
  }),
  createToken: ({ body, deps }) => tokens(deps).create(body),
  revokeToken: ({ params, deps }) => tokens(deps).revoke(params.token),

  listRegistries: async ({ deps }) => ({ registries: await registries(deps).list() }),
  loginRegistry: ({ body, deps }) => registries(deps).login(body),
  logoutRegistry: ({ params, deps }) => registries(deps).logout(params.host),
};

/** Every operation with its handler, in the table's order. */
export const ROUTES: readonly Route[] = OPERATIONS.map((op) => ({
  op,
  handle: HANDLERS[op.operationId] as Route["handle"],
}));
