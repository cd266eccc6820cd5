/**
 * The shape of one REST route: method, path, the zod schemas of its inputs and output (used
 * both to validate requests and to build the OpenAPI document), and a small handler.
 *
 * @module
 */
import type { z } from "zod";
import type { Acceleration } from "../../schema/mod.ts";
import type { Logger } from "../log.ts";
import type { ImageService, PluginService, VmService } from "../services/mod.ts";

/** What handlers may use. */
export interface ApiDeps {
  /** The VM service requests act on. */
  service: VmService;
  /** The plugin registry and trusted keys. */
  plugins: PluginService;
  /** OCI images (absent: the image routes answer `unsupported`). */
  images?: ImageService;
  /** Sends a request to kestrel in a VM (`http://<ip>:8080<path>`); default `fetch`. */
  agentFetch?: (ip: string, path: string, init: RequestInit) => Promise<Response>;
  /** Daemon version for `/healthz`. */
  version: string;
  /** The hypervisor as probed at start-up. */
  hypervisor: {
    name: string;
    version: string | null;
    kvm: boolean;
    acceleration: Acceleration;
  };
  /** Access and error log. */
  logger: Logger;
}

/** A handler's input: path params and the parsed body and query. */
export interface RouteInput<B, Q> {
  /** Path parameters (`:name`). */
  params: Record<string, string>;
  /** The body, parsed by the route's `body` schema. */
  body: B;
  /** The query, parsed by the route's `query` schema. */
  query: Q;
  /** The app's dependencies. */
  deps: ApiDeps;
  /** The raw request (its body unread when the route sets `rawBody`). */
  request: Request;
}

/** HTTP methods the API uses. */
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "ALL";

/** One route. */
export interface Route<B = unknown, Q = unknown> {
  /** HTTP method. */
  method: Method;
  /** Hono path, e.g. `/api/v1/vms/:name`. */
  path: string;
  /** OpenAPI operationId. */
  operationId: string;
  /** One-line OpenAPI summary. */
  summary: string;
  /** Request body schema (validated; its `input` form goes into the OpenAPI document). */
  body?: z.ZodType<B>;
  /** Query schema (a zod object; validated). */
  query?: z.ZodType<Q>;
  /** Success status. */
  status: 200 | 201;
  /** Success body schema. */
  response: z.ZodType;
  /** The body is not parsed: the handler reads `request` itself (proxies). */
  rawBody?: boolean;
  /** Does the work; the result is sent as JSON with `status` (a `Response` is sent as is). Throw VolantError for errors. */
  handle(input: RouteInput<B, Q>): unknown;
}

/**
 * Declares a route with its input types inferred from its schemas.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineRoute } from "./route.ts";
 * const ping = defineRoute({
 *   method: "GET",
 *   path: "/ping",
 *   operationId: "ping",
 *   summary: "Ping",
 *   status: 200,
 *   response: z.object({ ok: z.boolean() }),
 *   handle: () => ({ ok: true }),
 * });
 * console.assert(ping.path === "/ping");
 * ```
 */
export function defineRoute<B = undefined, Q = undefined>(route: Route<B, Q>): Route {
  return route as unknown as Route;
}
