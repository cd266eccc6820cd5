/**
 * The workload's own routes: `GET /v1/workload` (its {@linkcode WorkloadStatus}) and
 * `POST /v1/workload/restart` (stop, then start with a fresh retry count; answers the status
 * once the new process was spawned).
 *
 * @module
 */
import type { WorkloadStatus } from "../../schema/agent.ts";
import type { SupervisedWorkload } from "./proxy.ts";
import { json } from "./respond.ts";
import type { Route } from "./router.ts";

/**
 * `GET /v1/workload` and `POST /v1/workload/restart`.
 *
 * @example
 * ```ts ignore
 * import { workloadRoutes } from "./workload.ts";
 * const routes = workloadRoutes(supervisor);
 * ```
 */
export function workloadRoutes(workload: SupervisedWorkload): Route[] {
  return [
    {
      method: "GET",
      path: "/v1/workload",
      handle: () => json(workload.status() satisfies WorkloadStatus),
    },
    {
      method: "POST",
      path: "/v1/workload/restart",
      handle: async () => json(await workload.restart()),
    },
  ];
}
