/**
 * The plugin's actions (the manifest's `actions`): `GET /v1/actions` lists them, and
 * `POST /v1/actions/<name>` calls the workload with the action's own method and path (the
 * request's query and body passed through), bounded by the action's `timeout_ms`: no answer in
 * time is a 504 naming the action. The route takes POST whatever the action's method, so an
 * action is always an explicit call.
 *
 * @module
 */
import type { ActionList } from "../../schema/agent.ts";
import { VolantError } from "../../schema/error.ts";
import type { FetchFn } from "./net_check.ts";
import {
  badGateway,
  baseOf,
  describeFetchError,
  forwardRequest,
  notRunning,
  type SupervisedWorkload,
} from "./proxy.ts";
import { errorResponse, json } from "./respond.ts";
import type { Route } from "./router.ts";

/** The prefix of action calls. */
const PREFIX = "/v1/actions/";

/**
 * The manifest's actions as `GET /v1/actions` lists them, sorted by name.
 *
 * @example
 * ```ts ignore
 * import { listActions } from "./actions.ts";
 * console.log(listActions(supervisor).actions.map((a) => a.name));
 * ```
 */
export function listActions(workload: SupervisedWorkload): ActionList {
  const actions = Object.entries(workload.plugin.actions)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, a]) => ({
      name,
      description: a.description ?? null,
      method: a.method,
      path: a.path,
      timeout_ms: a.timeout_ms,
    }));
  return { actions };
}

function unknownAction(workload: SupervisedWorkload, name: string): Response {
  const names = listActions(workload).actions.map((a) => a.name);
  const has = names.length === 0
    ? `plugin ${workload.plugin.name} defines no actions`
    : `plugin ${workload.plugin.name} has: ${names.join(", ")}`;
  return errorResponse(
    new VolantError("not_found", `No action ${JSON.stringify(name)}; ${has}`, {
      action: name,
      available: names,
    }),
  );
}

/**
 * `GET /v1/actions` and `POST /v1/actions/<name>`.
 *
 * @example
 * ```ts ignore
 * import { actionRoutes } from "./actions.ts";
 * const routes = actionRoutes(supervisor);
 * ```
 */
export function actionRoutes(workload: SupervisedWorkload, fetchFn: FetchFn = fetch): Route[] {
  return [
    { method: "GET", path: "/v1/actions", handle: () => json(listActions(workload)) },
    {
      method: "POST",
      path: "/v1/actions/*",
      handle: async (req, url) => {
        let name = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) : "";
        try {
          name = decodeURIComponent(name);
        } catch {
          // Keep it as sent; it names no action anyway.
        }
        const actions = workload.plugin.actions;
        const action = Object.hasOwn(actions, name) ? actions[name] : undefined;
        if (action === undefined) return unknownAction(workload, name);
        const down = notRunning(workload.status());
        if (down !== undefined) return badGateway(down, { action: name });
        const target = `${baseOf(workload)}${action.path}${url.search}`;
        const timeout = AbortSignal.timeout(action.timeout_ms);
        const signal = AbortSignal.any([req.signal, timeout]);
        try {
          return await forwardRequest(req, { method: action.method, url: target, signal }, fetchFn);
        } catch (err) {
          if (timeout.aborted) {
            return errorResponse(
              new VolantError(
                "timeout",
                `Action ${name} (${action.method} ${action.path}) did not answer within ` +
                  `${action.timeout_ms} ms (its timeout_ms)`,
                { action: name, timeout_ms: action.timeout_ms },
              ),
            );
          }
          return badGateway(
            `Action ${name}: workload ${workload.plugin.name} did not answer ` +
              `${action.method} ${target}: ${describeFetchError(err)}`,
            { action: name, url: target },
          );
        }
      },
    },
  ];
}
