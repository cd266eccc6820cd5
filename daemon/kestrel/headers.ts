/**
 * Which headers cross between API clients and a guest's kestrel. Both directions are
 * allow-lists: a guest decides nothing about the daemon's answers beyond the content and how
 * to cache it (no `Set-Cookie`, no `Access-Control-*`, no `Location`, no hop-by-hop headers),
 * and an API client's credentials (`Authorization`, `Cookie`) never reach a guest.
 *
 * @module
 */

/** Guest response headers passed to API clients; any other is dropped. */
export const RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  "accept-ranges",
  "allow",
  "cache-control",
  "content-disposition",
  "content-encoding",
  "content-language",
  "content-length",
  "content-range",
  "content-type",
  "etag",
  "expires",
  "last-modified",
  "retry-after",
  "vary",
]);

/** API request headers passed to kestrel (and on to the workload); any other is dropped. */
export const REQUEST_HEADERS: ReadonlySet<string> = new Set([
  "accept",
  "accept-language",
  "cache-control",
  "content-type",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-range",
  "if-unmodified-since",
  "range",
  "user-agent",
]);

function pick(headers: HeadersInit | undefined, allowed: ReadonlySet<string>): Headers {
  const out = new Headers();
  for (const [name, value] of new Headers(headers)) {
    if (allowed.has(name)) out.append(name, value);
  }
  return out;
}

/**
 * The headers of a guest's answer an API client may see.
 *
 * @example
 * ```ts
 * import { responseHeaders } from "./headers.ts";
 * const h = responseHeaders({
 *   "content-type": "text/plain",
 *   "set-cookie": "session=1",
 *   "access-control-allow-origin": "*",
 *   location: "http://169.254.169.254/",
 * });
 * console.assert([...h.keys()].join() === "content-type");
 * ```
 */
export function responseHeaders(headers: HeadersInit | undefined): Headers {
  return pick(headers, RESPONSE_HEADERS);
}

/**
 * The headers of an API request that go on to kestrel (never credentials or cookies).
 *
 * @example
 * ```ts
 * import { requestHeaders } from "./headers.ts";
 * const h = requestHeaders({ accept: "application/json", authorization: "Bearer api-token" });
 * console.assert([...h.keys()].join() === "accept");
 * ```
 */
export function requestHeaders(headers: HeadersInit | undefined): Headers {
  return pick(headers, REQUEST_HEADERS);
}
