/**
 * `POST /v1/net/check`: kestrel makes one HTTP GET from inside the guest and reports what
 * happened ({@linkcode NetCheckResult}); this is how VM-to-VM and egress reachability is
 * tested. Redirects are not followed (a 3xx is reported as is).
 *
 * @module
 */
import { NetCheckRequest, type NetCheckResult } from "../../schema/agent.ts";
import { json, parseJsonBody } from "./respond.ts";
import type { Route } from "./router.ts";

/** How much of the answer's body the result carries, in bytes. */
export const NET_CHECK_BODY_BYTES = 4096;

/** The `fetch` a check uses (tests may pass their own). */
export type FetchFn = (url: string, init: RequestInit) => Promise<Response>;

/** The first `max` bytes of a body as text (a character cut in half is dropped). */
async function readPrefix(body: ReadableStream<Uint8Array> | null, max: number): Promise<string> {
  if (body === null) return "";
  const reader = body.getReader();
  const buf = new Uint8Array(max);
  let size = 0;
  try {
    while (size < max) {
      const { value, done } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, max - size);
      buf.set(value.subarray(0, take), size);
      size += take;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(buf.subarray(0, size), { stream: true });
}

function describeFailure(err: unknown, timeoutMs: number, phase: string): string {
  if (err instanceof DOMException && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return `timed out after ${timeoutMs} ms ${phase}`;
  }
  // fetch says "fetch failed" and keeps the reason (connection refused…) in its causes.
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 4; e = (e as Error).cause) {
    const text = e instanceof Error ? e.message : String(e);
    if (text !== "" && !parts.some((p) => p.includes(text))) parts.push(text);
    if (!(e instanceof Error)) break;
  }
  return parts.join(": ");
}

/**
 * Performs one check: a GET of `request.url` that must complete (status and the first
 * {@linkcode NET_CHECK_BODY_BYTES} of the body) within `request.timeout_ms`. Never throws:
 * a failure is `ok: false` with the error. `ok` is true for a 2xx answer.
 *
 * @example
 * ```ts ignore
 * import { runNetCheck } from "./net_check.ts";
 * const r = await runNetCheck({ url: "http://10.0.0.3:8080/healthz", timeout_ms: 3000 });
 * console.log(r.ok, r.status, r.ms);
 * ```
 */
export async function runNetCheck(
  request: NetCheckRequest,
  fetchFn: FetchFn = fetch,
): Promise<NetCheckResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  const signal = AbortSignal.timeout(request.timeout_ms);
  let status: number | null = null;
  try {
    const res = await fetchFn(request.url, { signal, redirect: "manual" });
    status = res.status;
    const body = await readPrefix(res.body, NET_CHECK_BODY_BYTES);
    return { ok: res.ok, status, body, error: null, ms: ms() };
  } catch (err) {
    const phase = status === null ? "waiting for an answer" : "reading the body";
    return {
      ok: false,
      status,
      body: null,
      error: describeFailure(err, request.timeout_ms, phase),
      ms: ms(),
    };
  }
}

/**
 * The `POST /v1/net/check` route. A bad body is 400 naming the field.
 *
 * @example
 * ```ts ignore
 * import { netCheckRoute } from "./net_check.ts";
 * const route = netCheckRoute();
 * ```
 */
export function netCheckRoute(fetchFn: FetchFn = fetch): Route {
  return {
    method: "POST",
    path: "/v1/net/check",
    handle: async (req) =>
      json(await runNetCheck(await parseJsonBody(req, NetCheckRequest), fetchFn)),
  };
}
