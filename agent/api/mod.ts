/**
 * kestrel's HTTP API inside the guest (on eth0's address, port `AGENT_PORT` unless the boot config
 * names another; {@linkcode requireSecret} refuses every request without the VM's secret):
 * `GET /healthz` and `POST /v1/net/check`;
 * with a workload `GET /v1/workload`, `POST /v1/workload/restart`, `GET /v1/logs`,
 * `GET /v1/actions`, `POST /v1/actions/<name>` and every other `/v1/*` proxied to it. A small
 * route table (no framework), JSON errors in the `ErrorBody` shape.
 *
 * ```ts ignore
 * import { apiRoutes, createRouter, startApi } from "./mod.ts";
 * const info = { name: "web", hostname: "web", status: "ok" as const, ip: null, mac: null };
 * const router = createRouter(apiRoutes(info, { workload: supervisor }));
 * const api = startApi(requireSecret(secret, router), { hostname: "10.0.0.2" });
 * await api.stop();
 * ```
 *
 * @module
 */
export { type ApiAddress, type ApiServer, startApi } from "./server.ts";
export { constantTimeEqual, requireSecret } from "./auth.ts";
export { createRouter, type Handler, type Method, pathMatches, type Route } from "./router.ts";
export { apiRoutes, type RoutesOptions } from "./routes.ts";
export { type AgentInfo, buildHealth, healthRoute, readUptimeMs } from "./health.ts";
export { type FetchFn, NET_CHECK_BODY_BYTES, netCheckRoute, runNetCheck } from "./net_check.ts";
export { type BodySchema, errorResponse, json, MAX_BODY_BYTES, parseJsonBody } from "./respond.ts";
export { actionRoutes, listActions } from "./actions.ts";
export { FOLLOW_MAX_BEHIND, type LogsQuery, logsRoute, parseLogsQuery } from "./logs.ts";
export {
  badGateway,
  endToEndHeaders,
  type Forward,
  forwardRequest,
  proxyRoute,
  type SupervisedWorkload,
} from "./proxy.ts";
export { workloadRoutes } from "./workload.ts";
