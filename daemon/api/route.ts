/**
 * The shape of one REST route: method, path, the zod schemas of its inputs and output (used
 * both to validate requests and to build the OpenAPI document), and a small handler.
 *
 * @module
 */
import type { z } from "zod";
import type { Acceleration } from "../../schema/mod.ts";
import type { Logger } from "../log.ts";
import type {
  ImageService,
  PluginService,
  RegistryCredentialService,
  TokenService,
  VmService,
} from "../services/mod.ts";
import type { AccessPolicy, Caller } from "./access.ts";
import type { Connect } from "../kestrel/mod.ts";

/** What handlers may use. */
export interface ApiDeps {
  /** The VM service requests act on. */
  service: VmService;
  /** The plugin registry and trusted keys. */
  plugins: PluginService;
  /** OCI images (absent: the image routes answer `unsupported`). */
  images?: ImageService;
  /** How the kestrel client connects to a VM's kestrel (tests); default TCP to its address. */
  kestrelConnect?: Connect;
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
  /** JSON request bodies larger than this are refused with 413 (`api.max_body_bytes`). */
  maxBodyBytes?: number;
  /**
   * Who may call (Host names, TCP tokens); absent: loopback and unix-socket names only, and TCP
   * requests are refused.
   */
  access?: AccessPolicy;
  /** API tokens (absent: the token routes answer `unsupported`). */
  tokens?: TokenService;
  /** Registry credentials for image pulls (absent: the registry routes answer `unsupported`). */
  registries?: RegistryCredentialService;
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
  /** Who is calling (listener, token, scope), as checked before the handler runs. */
  caller: Caller;
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
  /** This route's JSON body limit in bytes, when it differs from `api.max_body_bytes`. */
  maxBodyBytes?: number;
  /**
   * Media types the request body may have; default `application/json` only. `*∕*` takes any
   * declared type but `text/plain` and the two form types (name those to take them).
   */
  accepts?: readonly string[];
  /**
   * The token scope a TCP caller needs: default `read` for GET (and HEAD), `admin` for every
   * other method.
   */
  scope?: "read" | "admin";
  /** Served on the unix socket only, whatever the token (token management). */
  unixOnly?: boolean;
  /**
   * Also an MCP tool (see `daemon/mcp/tools.ts`): its name and title; its description is
   * `summary`, its input the path parameters plus the body's fields, and it runs `handle`.
   */
  mcp?: { tool: string; title: string };
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
