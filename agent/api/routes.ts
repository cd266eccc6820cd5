/**
 * The route table kestrel serves, one file per concern: `health.ts` (`GET /healthz`),
 * `net_check.ts` (`POST /v1/net/check`), `stats.ts` (`GET /v1/stats`), and with a workload `workload.ts`
 * (`GET /v1/workload`, `POST /v1/workload/restart`), `logs.ts` (`GET /v1/logs`), `actions.ts`
 * (`GET /v1/actions`, `POST /v1/actions/<name>`) and `proxy.ts` (any other `/v1/*`, to the
 * workload). kestrel's own routes win over the proxy.
 *
 * @module
 */
import { actionRoutes } from "./actions.ts";
import { type AgentInfo, healthRoute } from "./health.ts";
import { logsRoute } from "./logs.ts";
import { type FetchFn, netCheckRoute } from "./net_check.ts";
import { proxyRoute, type SupervisedWorkload } from "./proxy.ts";
import { statsRoute } from "./stats.ts";
import type { Route } from "./router.ts";
import { workloadRoutes } from "./workload.ts";

/** What the routes need. */
export interface RoutesOptions {
  /** The guest's uptime in ms; default from `/proc/uptime`. */
  uptime?: () => Promise<number>;
  /** The `fetch` of net checks; default the global one. */
  fetch?: FetchFn;
  /** The supervised workload (`startWorkload`'s supervisor); none: no workload routes. */
  workload?: SupervisedWorkload;
  /** The `fetch` towards the workload (actions, proxy); default the global one. */
  workloadFetch?: FetchFn;
  /** Reads a `/proc` file for `/v1/stats`; default `Deno.readTextFile`. */
  readProc?: (path: string) => Promise<string>;
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
  const workload = options.workload;
  const routes = [
    healthRoute(info, options.uptime, () => workload?.status() ?? null),
    netCheckRoute(options.fetch),
    statsRoute(options.readProc),
  ];
  if (workload === undefined) return routes;
  const toWorkload = options.workloadFetch ?? fetch;
  return [
    ...routes,
    ...workloadRoutes(workload),
    logsRoute(workload.logs),
    ...actionRoutes(workload, toWorkload),
    proxyRoute(workload, toWorkload),
  ];
}
