/**
 * The Hono app: the route table wired with validation, error rendering and an access log.
 *
 * @module
 */
import { Hono } from "hono";
import { fromZodError, VolantError } from "../../schema/mod.ts";
import { errorResponse } from "./errors.ts";
import type { ApiDeps, Route } from "./route.ts";
import { ALL_ROUTES } from "./routes.ts";
import { MCP_PATH, mcpHandler } from "../mcp/mod.ts";

async function readBody(route: Route, req: Request): Promise<unknown> {
  if (!route.body || route.rawBody) return undefined;
  const text = await req.text();
  let raw: unknown;
  if (text.trim() === "") {
    raw = undefined;
  } else {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new VolantError(
        "invalid_argument",
        `Request body is not valid JSON: ${(err as Error).message}`,
      );
    }
  }
  const parsed = route.body.safeParse(raw);
  if (!parsed.success) throw fromZodError(parsed.error);
  return parsed.data;
}

function readQuery(route: Route, query: Record<string, string>): unknown {
  if (!route.query) return undefined;
  const parsed = route.query.safeParse(query);
  if (!parsed.success) throw fromZodError(parsed.error, "query");
  return parsed.data;
}

/**
 * Builds the daemon's HTTP app.
 *
 * @example
 * ```ts ignore
 * import { createApp } from "./app.ts";
 * const app = createApp({ service, version: "0.1.0", hypervisor, logger });
 * const res = await app.request("/healthz");
 * console.log(await res.json());
 * ```
 */
export function createApp(deps: ApiDeps, routes: readonly Route[] = ALL_ROUTES): Hono {
  const app = new Hono();
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    deps.logger.info("http", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
  });
  for (const route of routes) {
    const methods = route.method === "ALL"
      ? ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
      : [route.method];
    app.on(methods, route.path, async (c) => {
      const body = await readBody(route, c.req.raw);
      const query = readQuery(route, c.req.query());
      const result = await route.handle({
        params: c.req.param(),
        body,
        query,
        deps,
        request: c.req.raw,
      });
      if (result instanceof Response) return result;
      return c.json(result as object, route.status);
    });
  }
  // MCP (Streamable HTTP): the same operations as tools, for agents.
  const mcp = mcpHandler(deps);
  app.on(["GET", "POST", "DELETE"], MCP_PATH, (c) => mcp(c.req.raw));
  app.notFound((c) => {
    const error = new VolantError(
      "not_found",
      `No route ${c.req.method} ${c.req.path}; see GET /openapi.json`,
      { method: c.req.method, path: c.req.path },
    );
    return c.json(error.toJSON(), 404);
  });
  app.onError((err, c) => {
    const { status, body } = errorResponse(err);
    if (body.code === "internal") {
      deps.logger.error("request failed", {
        method: c.req.method,
        path: c.req.path,
        error: err,
        stack: err instanceof Error ? err.stack : undefined,
      });
    }
    return c.json(body, status as 400);
  });
  return app;
}
