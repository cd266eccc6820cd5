/**
 * The Hono app: the route table (`routes.ts`: the operations of `schema/operations/` with their
 * handlers) wired with access checks, body reading, validation, error rendering and an access
 * log; and the MCP endpoint.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { VolantError } from "../../schema/mod.ts";
import { parseOperationInput } from "../../schema/operation.ts";
import { errorResponse } from "./errors.ts";
import {
  type AccessPolicy,
  authenticate,
  type Caller,
  checkContentType,
  checkHost,
  checkOrigin,
  checkScope,
  JSON_ONLY,
  listenerOf,
  type RouteAccess,
} from "./access.ts";
import type { ApiDeps, Route } from "./route.ts";
import { ROUTES } from "./routes.ts";
import { MCP_PATH, mcpHandler } from "../mcp/mod.ts";

/** A JSON request body's size limit unless `api.max_body_bytes` says otherwise. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * The request's body as text, refused with 413 once it is larger than `max` bytes: at once when
 * `Content-Length` says so, else as soon as that many bytes have arrived (never buffering more).
 */
export async function readBounded(req: Request, max: number, what: string): Promise<string> {
  const tooLarge = () =>
    new VolantError(
      "payload_too_large",
      `${what}: the request body is larger than ${max} bytes, the most this route accepts`,
      { max_bytes: max },
    );
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await req.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all);
}

/** The JSON body of a request (undefined when it has none), at most `max` bytes. */
async function readJson(req: Request, max: number, what: string): Promise<unknown> {
  const text = await readBounded(req, max, what);
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new VolantError(
      "invalid_argument",
      `Request body is not valid JSON: ${(err as Error).message}`,
    );
  }
}

/** The path parameters of a request of `op`; a final `*` is `path`, the rest as sent. */
function pathParamsOf(op: Route["op"], c: Context): Record<string, string> {
  const params = c.req.param() as Record<string, string>;
  if (!op.path.endsWith("/*")) return params;
  const depth = op.path.split("/").length - 2;
  const rest = new URL(c.req.url).pathname.split("/").slice(depth + 1).join("/");
  return { ...params, path: rest };
}

/** How `access.ts` checks an operation's access. */
function routeAccess(op: Route["op"]): RouteAccess {
  switch (op.access) {
    case "unix":
      return { unixOnly: true };
    case "by_method":
      return {};
    default:
      return { scope: op.access };
  }
}

/** Serves one operation: access, body type, validation, then its handler. */
function serve(route: Route, deps: ApiDeps, callers: WeakMap<Request, Caller>) {
  const { op } = route;
  const access = routeAccess(op);
  return async (c: Context) => {
    const caller = callers.get(c.req.raw)!;
    const what = `${c.req.method} ${c.req.path}`;
    checkScope(caller, access, c.req.method, what);
    checkContentType(c.req.raw, op.rawBody?.accepts ?? JSON_ONLY, what, caller.listener);
    const body = op.body
      ? await readJson(c.req.raw, deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, what)
      : undefined;
    const input = parseOperationInput(op, {
      params: pathParamsOf(op, c),
      query: op.query ? c.req.query() : {},
      body,
    });
    const result = await route.handle({ ...input, deps, request: c.req.raw, caller });
    if (result instanceof Response) return result;
    return c.json(result as object, op.status);
  };
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
export function createApp(deps: ApiDeps, routes: readonly Route[] = ROUTES): Hono {
  const app = new Hono();
  const policy: AccessPolicy = deps.access ?? { allowedHosts: [], tcpInsecure: false };
  /** Each request's caller, as the access check found it. */
  const callers = new WeakMap<Request, Caller>();
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const caller = callers.get(c.req.raw);
    deps.logger.info("http", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      via: caller?.listener ?? listenerOf(c.env),
      ...(caller?.token ? { token: caller.token.id } : {}),
    });
  });
  // Host, Origin and (on TCP) the bearer token, before any route: see access.ts.
  app.use(async (c, next) => {
    const listener = listenerOf(c.env);
    const host = checkHost(c.req.raw, listener, policy);
    checkOrigin(c.req.raw, host);
    callers.set(c.req.raw, authenticate(c.req.raw, listener, policy));
    await next();
  });
  for (const route of routes) {
    const methods = route.op.method === "ANY"
      ? ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
      : [route.op.method];
    app.on(methods, route.op.path, serve(route, deps, callers));
  }
  // MCP (Streamable HTTP): the same operations as tools, for agents.
  const mcp = mcpHandler(deps);
  app.on(["GET", "POST", "DELETE"], MCP_PATH, (c) => {
    const caller = callers.get(c.req.raw)!;
    checkContentType(c.req.raw, JSON_ONLY, `${c.req.method} ${MCP_PATH}`, caller.listener);
    return mcp(c.req.raw, caller);
  });
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
    if (body.code === "unauthenticated") c.header("WWW-Authenticate", 'Bearer realm="volantd"');
    return c.json(body, status as 400);
  });
  return app;
}
