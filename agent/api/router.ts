/**
 * kestrel's route table: a route is a method, a path (exact, or a prefix ending in `/*`) and a
 * handler. The first route whose path and method match answers; a matching path with another
 * method is 405 with `Allow`; a route of method `*` (the proxy to the workload) answers any
 * method, but only on paths no other route matches; no matching path is 404, a thrown error
 * its JSON form. No framework: the table is small and kestrel's bundle must stay small.
 *
 * @module
 */
import { VolantError } from "../../schema/error.ts";
import { errorResponse, json } from "./respond.ts";

/** HTTP methods kestrel routes. */
export type Method = "GET" | "POST" | "PUT" | "DELETE" | "PATCH";

/** Answers one request. */
export type Handler = (req: Request, url: URL) => Response | Promise<Response>;

/** One entry of the route table. */
export interface Route {
  /** The method it answers; `*`: any, on paths no route of a given method matches. */
  method: Method | "*";
  /** `/healthz` (exact) or `/v1/app/*` (that prefix, the bare prefix `/v1/app` included). */
  path: string;
  /** The handler. */
  handle: Handler;
}

/**
 * Whether route path `pattern` matches request path `path`.
 *
 * @example
 * ```ts
 * import { pathMatches } from "./router.ts";
 * console.assert(pathMatches("/v1/app/*", "/v1/app/users/7") && pathMatches("/v1/app/*", "/v1/app"));
 * console.assert(!pathMatches("/v1/app/*", "/v1/apple") && !pathMatches("/healthz", "/healthz/"));
 * ```
 */
export function pathMatches(pattern: string, path: string): boolean {
  if (!pattern.endsWith("/*")) return pattern === path;
  const base = pattern.slice(0, -2);
  return path === base || path.startsWith(`${base}/`);
}

/** `GET /healthz, POST /v1/net/check`: the routes, for error messages. */
function listing(routes: readonly Route[]): string {
  return routes.map((r) => `${r.method === "*" ? "any" : r.method} ${r.path}`).join(", ");
}

/**
 * Builds the request handler for a route table. It never throws: every failure is a JSON
 * `{code, message}` response.
 *
 * @example
 * ```ts
 * import { createRouter } from "./router.ts";
 * const handle = createRouter([{ method: "GET", path: "/ping", handle: () => new Response("pong") }]);
 * const res = await handle(new Request("http://kestrel/nope"));
 * console.assert(res.status === 404);
 * ```
 */
export function createRouter(routes: readonly Route[]): (req: Request) => Promise<Response> {
  return async (req) => {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return errorResponse(new VolantError("invalid_argument", `Bad request URL ${req.url}`));
    }
    const onPath = routes.filter((r) => r.method !== "*" && pathMatches(r.path, url.pathname));
    const route = onPath.length > 0
      ? onPath.find((r) => r.method === req.method)
      : routes.find((r) => r.method === "*" && pathMatches(r.path, url.pathname));
    if (route === undefined) {
      if (onPath.length > 0) {
        const allow = [...new Set(onPath.map((r) => r.method))].join(", ");
        const error = new VolantError(
          "invalid_argument",
          `${req.method} is not allowed on ${url.pathname}; use ${allow}`,
          { method: req.method, path: url.pathname, allow },
        );
        return json(error.toJSON(), 405, { allow });
      }
      return errorResponse(
        new VolantError(
          "not_found",
          `No route ${req.method} ${url.pathname}; kestrel serves ${listing(routes)}`,
          { method: req.method, path: url.pathname },
        ),
      );
    }
    try {
      return await route.handle(req, url);
    } catch (err) {
      return errorResponse(err);
    }
  };
}
