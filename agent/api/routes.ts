/**
 * The route table kestrel serves, one file per concern: `health.ts` (`GET /healthz`),
 * `net_check.ts` (`POST /v1/net/check`). Later concerns (logs, actions, the `/v1/*` proxy to
 * the workload) add a file and a line here.
 *
 * @module
 */
import { type AgentInfo, healthRoute } from "./health.ts";
import { type FetchFn, netCheckRoute } from "./net_check.ts";
import type { Route } from "./router.ts";

/** What the routes need. */
export interface RoutesOptions {
  /** The guest's uptime in ms; default from `/proc/uptime`. */
  uptime?: () => Promise<number>;
  /** The `fetch` of net checks; default the global one. */
  fetch?: FetchFn;
}

/**
 * Every route of kestrel's API, in match order.
 *
 * @example
 * ```ts
 * import { apiRoutes } from "./routes.ts";
 * const routes = apiRoutes({ name: "web", hostname: "web", status: "ok", ip: null, mac: null });
 * console.assert(routes.some((r) => r.path === "/healthz"));
 * ```
 */
export function apiRoutes(info: AgentInfo, options: RoutesOptions = {}): Route[] {
  return [
    healthRoute(info, options.uptime),
    netCheckRoute(options.fetch),
  ];
}
