/**
 * Every `/v1/*` path kestrel does not serve itself goes to the workload: `base_url` plus the
 * path without `/v1`, with the method, headers, query and body, and the answer streamed back
 * as it comes. A workload that is not running or does not answer is a 502 saying so.
 *
 * @module
 */
import type { WorkloadStatus } from "../../schema/agent.ts";
import { VolantError } from "../../schema/error.ts";
import type { Supervisor } from "../workload/supervisor.ts";
import type { FetchFn } from "./net_check.ts";
import { json } from "./respond.ts";
import type { Route } from "./router.ts";

/** What the workload routes need of the supervisor. */
export type SupervisedWorkload = Pick<Supervisor, "plugin" | "logs" | "status" | "restart">;

/**
 * Headers that belong to one hop and are never forwarded (RFC 9110 §7.6.1), and
 * `authorization`: it carries the VM's secret for kestrel, never for the workload.
 */
const HOP_HEADERS = new Set([
  "authorization",
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

/**
 * `headers` without the hop-by-hop ones (and those `Connection` names).
 *
 * @example
 * ```ts
 * import { endToEndHeaders } from "./proxy.ts";
 * const h = endToEndHeaders(new Headers({ connection: "x-a", "x-a": "1", "x-b": "2", host: "h" }));
 * console.assert([...h.keys()].join() === "x-b");
 * console.assert(!endToEndHeaders(new Headers({ authorization: "Bearer s" })).has("authorization"));
 * ```
 */
export function endToEndHeaders(headers: Headers): Headers {
  const named = new Set(
    (headers.get("connection") ?? "").split(",").map((h) => h.trim().toLowerCase()),
  );
  const out = new Headers();
  for (const [key, value] of headers) {
    if (!HOP_HEADERS.has(key) && !named.has(key)) out.append(key, value);
  }
  return out;
}

/**
 * A 502 Bad Gateway in kestrel's error shape (code `workload_unavailable`).
 *
 * @example
 * ```ts
 * import { badGateway } from "./proxy.ts";
 * console.assert(badGateway("the workload is down").status === 502);
 * ```
 */
export function badGateway(message: string, details?: Record<string, unknown>): Response {
  return json(new VolantError("workload_unavailable", message, details).toJSON(), 502);
}

/** Why the workload cannot take requests now, or `undefined` when it runs. */
export function notRunning(status: WorkloadStatus): string | undefined {
  if (status.state === "running") return undefined;
  const when = status.next_start_at === null ? "" : ` (next start at ${status.next_start_at})`;
  const why = status.last_error === null ? "" : `: ${status.last_error}`;
  return `workload ${status.name} is not running: it is ${status.state}${when}${why}`;
}

/** The cause chain of a fetch failure as one line (`fetch failed: connection refused`). */
export function describeFetchError(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 4; e = (e as Error).cause) {
    const text = e instanceof Error ? e.message : String(e);
    if (text !== "" && !parts.some((p) => p.includes(text))) parts.push(text);
    if (!(e instanceof Error)) break;
  }
  return parts.join(": ");
}

/** One forwarded call's shape. */
export interface Forward {
  /** Method towards the workload. */
  method: string;
  /** Full URL at the workload. */
  url: string;
  /** Aborts the call (the client left, or a timeout). */
  signal: AbortSignal;
}

/**
 * Forwards `req` to the workload as `forward` says and streams the answer back; throws what
 * `fetchFn` throws (the caller words it). The workload is asked for an uncompressed answer
 * (`accept-encoding: identity`): bytes pass through unchanged, and the API server compresses
 * for the client where it asked.
 */
export async function forwardRequest(
  req: Request,
  forward: Forward,
  fetchFn: FetchFn,
): Promise<Response> {
  const headers = endToEndHeaders(req.headers);
  headers.set("accept-encoding", "identity");
  const hasBody = forward.method !== "GET" && forward.method !== "HEAD" && req.body !== null;
  const res = await fetchFn(forward.url, {
    method: forward.method,
    headers,
    redirect: "manual",
    signal: forward.signal,
    ...(hasBody ? { body: req.body } : {}),
  });
  return new Response(res.body, {
    status: res.status,
    statusText: res.statusText,
    headers: endToEndHeaders(res.headers),
  });
}

/** `base_url` without its trailing slashes. */
export function baseOf(workload: SupervisedWorkload): string {
  return workload.plugin.workload.base_url.replace(/\/+$/, "");
}

/**
 * The catch-all route: any method on `/v1/*` that no other route serves, to the workload.
 *
 * @example
 * ```ts ignore
 * import { proxyRoute } from "./proxy.ts";
 * const route = proxyRoute(supervisor); // GET /v1/users/7 → GET <base_url>/users/7
 * ```
 */
export function proxyRoute(workload: SupervisedWorkload, fetchFn: FetchFn = fetch): Route {
  return {
    method: "*",
    path: "/v1/*",
    handle: async (req, url) => {
      const down = notRunning(workload.status());
      if (down !== undefined) return badGateway(down, { path: url.pathname });
      const path = url.pathname.slice("/v1".length) || "/";
      const target = `${baseOf(workload)}${path}${url.search}`;
      try {
        return await forwardRequest(
          req,
          { method: req.method, url: target, signal: req.signal },
          fetchFn,
        );
      } catch (err) {
        return badGateway(
          `workload ${workload.plugin.name} did not answer ${req.method} ${target}: ` +
            describeFetchError(err),
          { url: target },
        );
      }
    },
  };
}
