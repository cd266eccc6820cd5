/**
 * Who may call the API, checked in front of every route (REST, the console WebSocket, `/mcp`):
 *
 * 1. **Host** — every request names a loopback host (`localhost`, `*.localhost`, `127.0.0.0/8`,
 *    `::1`), a name in `api.allowed_hosts`, or the TCP listener's own address; on the unix
 *    socket also `volant`/`volantd` (what `volar` and the README's curl lines send). Anything
 *    else is refused (403 `forbidden`): a DNS-rebound web page names its own host.
 * 2. **Origin** — a request carrying an `Origin` is refused unless it is this API's own origin
 *    (its host:port equals the `Host` header, which passed 1); `Sec-Fetch-Site: cross-site` or
 *    `same-site` is refused too. `volar` and curl send neither.
 * 3. **Token** — on a TCP listener, `Authorization: Bearer <token>` (401 `unauthenticated`
 *    without a valid one), unless `api.tcp_insecure` (loopback only). The unix socket is trusted
 *    by its file mode and group.
 * 4. **Scope** (per route) — a `read` token may call GET routes, read-only MCP tools and AG-UI
 *    runs (whose state-changing tool calls it may not make); the console, mutating routes and
 *    the agent proxy's other methods need `admin`; token management is on the unix socket only.
 * 5. **Content-Type** (per route) — a request body must be `application/json` (415
 *    `unsupported_media_type`), unless the route names other types.
 *
 * @module
 */
import { type TokenRecord, type TokenScope, VolantError } from "../../schema/mod.ts";
import type { TokenService } from "../services/tokens.ts";
import { parseHostPort } from "../server.ts";

/** The access settings of the running daemon (from `api.*` in the config). */
export interface AccessPolicy {
  /** The token store; absent: TCP requests are refused (unless `tcpInsecure`). */
  tokens?: TokenService;
  /** Extra host names requests may name (`api.allowed_hosts`). */
  allowedHosts: readonly string[];
  /** The TCP listener's configured host (allowed as `Host` unless a wildcard). */
  tcpHost?: string | null;
  /** `api.tcp_insecure`: TCP requests need no token. */
  tcpInsecure: boolean;
}

/** Which listener a request came in on: `local` is an in-process call (tests, no network). */
export type Listener = "unix" | "tcp" | "local";

/** Who is calling, as the checks found. */
export interface Caller {
  listener: Listener;
  /** The token it presented (TCP), or null. */
  token: TokenRecord | null;
  /** What it may do. */
  scope: TokenScope;
}

/**
 * The listener of a request from the second argument `Deno.serve` passes its handler (which
 * Hono hands on as `env`): `remoteAddr.transport` says `unix` or `tcp`; no info is an
 * in-process call.
 *
 * @example
 * ```ts
 * import { listenerOf } from "./access.ts";
 * console.assert(listenerOf({ remoteAddr: { transport: "tcp" } }) === "tcp");
 * console.assert(listenerOf(undefined) === "local");
 * ```
 */
export function listenerOf(env: unknown): Listener {
  if (typeof env !== "object" || env === null || !("remoteAddr" in env)) return "local";
  const transport = (env as { remoteAddr?: { transport?: unknown } }).remoteAddr?.transport;
  // Anything that came through a server but not over the unix socket counts as TCP.
  return transport === "unix" ? "unix" : "tcp";
}

/** `host[:port]` → its host name, lower case, IPv6 brackets removed. */
function hostnameOf(host: string): string {
  const h = host.trim().toLowerCase();
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (v6) return v6[1]!;
  const colon = h.lastIndexOf(":");
  return colon >= 0 && h.indexOf(":") === colon ? h.slice(0, colon) : h;
}

/**
 * Whether a host name is a loopback one: `localhost`, `*.localhost`, `127.0.0.0/8`, `::1`.
 *
 * @example
 * ```ts
 * import { isLoopbackHost } from "./access.ts";
 * console.assert(isLoopbackHost("127.0.0.1") && isLoopbackHost("::1"));
 * console.assert(!isLoopbackHost("0.0.0.0") && !isLoopbackHost("10.0.0.1"));
 * ```
 */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

const WILDCARDS = new Set(["0.0.0.0", "::", "[::]", ""]);
const UNIX_NAMES = new Set(["volant", "volantd"]);

/**
 * Checks the `Host` header (or, in process, the URL's host); `forbidden` naming the config key
 * when it is not one of ours.
 */
export function checkHost(request: Request, listener: Listener, policy: AccessPolicy): string {
  const header = request.headers.get("host");
  const host = header ?? (listener === "local" ? new URL(request.url).host : null);
  if (host === null || host.trim() === "") {
    throw new VolantError("forbidden", "The request has no Host header; volantd needs one");
  }
  const name = hostnameOf(host);
  const allowed = isLoopbackHost(name) ||
    (listener !== "tcp" && UNIX_NAMES.has(name)) ||
    policy.allowedHosts.some((h) => hostnameOf(h) === name) ||
    (policy.tcpHost != null && !WILDCARDS.has(policy.tcpHost) &&
      policy.tcpHost.toLowerCase().replace(/^\[|\]$/g, "") === name);
  if (!allowed) {
    throw new VolantError(
      "forbidden",
      `Host ${JSON.stringify(host)} is not a name this volantd answers to (loopback names, ` +
        "its api.tcp address, or api.allowed_hosts in its config); add it to api.allowed_hosts " +
        "if it is yours",
      { host },
    );
  }
  return host;
}

/**
 * Refuses cross-site requests: an `Origin` other than this API's own (same scheme-default port,
 * same host:port as the `Host` header), `Origin: null`, or `Sec-Fetch-Site` `cross-site` /
 * `same-site`.
 */
export function checkOrigin(request: Request, host: string): void {
  const site = request.headers.get("sec-fetch-site")?.toLowerCase();
  const origin = request.headers.get("origin");
  const refuse = (why: string): never => {
    throw new VolantError(
      "forbidden",
      `Cross-site request refused: ${why}; volantd answers only its own origin ` +
        "(volar, curl and other clients that send no Origin)",
      { ...(origin === null ? {} : { origin }), ...(site === undefined ? {} : { site }) },
    );
  };
  if (site === "cross-site" || site === "same-site") refuse(`Sec-Fetch-Site is ${site}`);
  if (origin === null) return;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return refuse(`Origin ${JSON.stringify(origin)} is not an origin`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    refuse(`Origin ${origin} is not an http(s) origin`);
  }
  const defaultPort = url.protocol === "https:" ? ":443" : ":80";
  const own = host.toLowerCase().endsWith(defaultPort)
    ? host.toLowerCase().slice(0, -defaultPort.length)
    : host.toLowerCase();
  if (url.host.toLowerCase() !== own) refuse(`Origin ${origin} is not this API's (${host})`);
}

/**
 * The caller of a request on `listener`: trusted on the unix socket and in process; on TCP the
 * bearer token's scope (`unauthenticated` without a valid one), or admin with `tcpInsecure`.
 */
export function authenticate(
  request: Request,
  listener: Listener,
  policy: AccessPolicy,
): Caller {
  if (listener !== "tcp" || policy.tcpInsecure) return { listener, token: null, scope: "admin" };
  if (!policy.tokens) {
    throw new VolantError("unauthenticated", "This TCP listener accepts no tokens");
  }
  const token = policy.tokens.authenticate(request.headers.get("authorization"));
  return { listener, token, scope: token.scope };
}

/** Whether a method only reads (what a `read` token may send). */
export function isReadMethod(method: string): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS";
}

/** What a route asks of its caller (see {@linkcode checkScope}). */
export interface RouteAccess {
  /** `read` or `admin`; default: read for GET/HEAD, admin otherwise. */
  scope?: TokenScope;
  /** Only on the unix socket (or in process). */
  unixOnly?: boolean;
}

/** Refuses a caller whose listener or token scope the route does not admit (403 `forbidden`). */
export function checkScope(
  caller: Caller,
  route: RouteAccess,
  method: string,
  what: string,
): void {
  if (route.unixOnly && caller.listener === "tcp") {
    throw new VolantError(
      "forbidden",
      `${what} is only served on the unix socket (run volar on the daemon's host, as root or ` +
        "a member of its group)",
    );
  }
  const needed = route.scope ?? (isReadMethod(method) ? "read" : "admin");
  if (needed === "admin" && caller.scope !== "admin") {
    const name = caller.token ? `${caller.token.name} (${caller.token.id})` : "";
    throw new VolantError(
      "forbidden",
      `The token ${name} is read-only: ${what} needs an admin token`,
      caller.token ? { token_id: caller.token.id, scope: caller.token.scope } : undefined,
    );
  }
}

/** The media types a body may have when a route names none. */
export const JSON_ONLY: readonly string[] = ["application/json"];

/** Types a web page can send cross-site without a CORS preflight: taken only when named. */
const SIMPLE_TYPES = new Set([
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data",
]);

/**
 * Whether a request carries a body: over HTTP/1.1, when it says so (`Content-Length` above 0,
 * or `Transfer-Encoding`); in process (no server in between), when it has one.
 */
function hasBody(request: Request, listener: Listener): boolean {
  const length = request.headers.get("content-length");
  if (length !== null) return Number(length) > 0;
  if (request.headers.has("transfer-encoding")) return true;
  return listener === "local" && request.body !== null;
}

/**
 * Refuses a body whose `Content-Type` is not one of `accepts` (415 `unsupported_media_type`).
 * `*∕*` in `accepts` takes any declared type except the three a page can send cross-site without
 * a preflight (`text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data`), which
 * must be named. A request without a body passes.
 *
 * @example
 * ```ts
 * import { checkContentType } from "./access.ts";
 * const req = new Request("http://localhost/api/v1/vms", { method: "POST", body: "{}" });
 * let code = "";
 * try { checkContentType(req, ["application/json"], "POST /api/v1/vms"); }
 * catch (err) { code = (err as { code: string }).code; }
 * console.assert(code === "unsupported_media_type"); // a string body is text/plain
 * ```
 */
export function checkContentType(
  request: Request,
  accepts: readonly string[],
  what: string,
  listener: Listener = "local",
): void {
  if (!hasBody(request, listener)) return;
  const header = request.headers.get("content-type");
  const type = (header ?? "").split(";")[0]!.trim().toLowerCase();
  const ok = type !== "" &&
    (accepts.includes(type) || (accepts.includes("*/*") && !SIMPLE_TYPES.has(type)));
  if (ok) return;
  const wanted = accepts.map((t) => t === "*/*" ? "any type but the form and text ones" : t)
    .join(" or ");
  throw new VolantError(
    "unsupported_media_type",
    `${what} takes a body of ${wanted}, not ${
      header === null ? "one without a Content-Type" : type
    }` +
      (accepts.includes("application/json") ? " (send Content-Type: application/json)" : ""),
    { content_type: header, accepts },
  );
}

/**
 * Checks `api.tcp` at start: a non-loopback address needs at least one token and must not be
 * `api.tcp_insecure`; a loopback one with `api.tcp_insecure` is allowed with a warning (the
 * returned text, logged at every start). Refusals are `invalid_argument` naming the keys.
 *
 * @example
 * ```ts
 * import { checkTcpListener } from "./access.ts";
 * console.assert(checkTcpListener({ tcp: "127.0.0.1:7777", tcp_insecure: true }, 0) !== null);
 * console.assert(checkTcpListener({ tcp: "127.0.0.1:7777", tcp_insecure: false }, 0) === null);
 * ```
 */
export function checkTcpListener(
  api: { tcp: string | null; tcp_insecure: boolean },
  activeTokens: number,
): string | null {
  if (api.tcp === null) return null;
  const { hostname } = parseHostPort(api.tcp);
  const loopback = isLoopbackHost(hostname);
  if (!loopback && api.tcp_insecure) {
    throw new VolantError(
      "invalid_argument",
      `api.tcp_insecure is allowed only with a loopback api.tcp (127.0.0.1, ::1, localhost), ` +
        `not ${api.tcp}: remove api.tcp_insecure and give clients tokens ` +
        "(volar tokens create <name>), or listen on 127.0.0.1",
      { tcp: api.tcp },
    );
  }
  if (!loopback && activeTokens === 0) {
    throw new VolantError(
      "invalid_argument",
      `api.tcp ${api.tcp} is not a loopback address and no API token exists: create one first ` +
        "on the unix socket (volar tokens create <name>), then start volantd again; or set " +
        "api.tcp to a loopback address such as 127.0.0.1:7777",
      { tcp: api.tcp },
    );
  }
  if (api.tcp_insecure) {
    return `api.tcp_insecure: the TCP API on ${api.tcp} accepts requests without a token, so ` +
      "every local user and process can drive volantd (create VMs, open root consoles); " +
      "prefer tokens (volar tokens create) and remove api.tcp_insecure";
  }
  return null;
}
