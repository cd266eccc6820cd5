/**
 * The daemon's one client of kestrel, the agent in each guest. Every call the daemon makes to a
 * guest's kestrel goes through {@linkcode kestrelRequest} (readiness and workload polls through
 * {@linkcode kestrelHealth}): a plain TCP connection to `ip:port` in the daemon's namespace (no
 * proxy from the environment, no pool), the VM's secret as `Authorization: Bearer …`, only
 * allow-listed request headers out and response headers back (see headers.ts), redirects never
 * followed (a 3xx is an answer like any other, without its `Location`), and every answer
 * bounded: time to the response head, time for the whole exchange, body size, and for streams
 * (`logs -f`) the rate, each piece at most {@linkcode CHUNK_BYTES}.
 *
 * @module
 */
import {
  AGENT_AUTH_REALM,
  AGENT_AUTH_SCHEME,
  AgentHealthWithWorkload,
  VolantError,
} from "../../schema/mod.ts";
import type { KestrelTarget } from "./target.ts";
import { requestHeaders, responseHeaders } from "./headers.ts";
import { exchange, Http1Error } from "./_http1.ts";

/** Bounds of one call. */
export interface KestrelLimits {
  /** From connecting until the response head is read, ms. */
  headMs: number;
  /** The whole exchange, body included, ms; `null`: as long as the body flows (streams). */
  totalMs: number | null;
  /** Largest response body, bytes; `null`: unbounded (streams, where `bytesPerSecond` holds). */
  maxBytes: number | null;
  /** Average body rate, bytes/s; `null`: unbounded. */
  bytesPerSecond: number | null;
}

/** Largest response head kestrel may send, bytes. */
export const HEAD_BYTES = 32 * 1024;

/** Largest piece of a body read and passed on at once, bytes. */
export const CHUNK_BYTES = 64 * 1024;

/** Largest `/healthz` answer, bytes. */
export const HEALTH_BYTES = 64 * 1024;

/** Presets: a bounded call (proxy, actions, a log tail) and an endless stream (`logs -f`). */
export const KESTREL_LIMITS = {
  /** Answers in a minute, done in ten, at most 64 MiB. */
  call: { headMs: 60_000, totalMs: 600_000, maxBytes: 64 * 1024 * 1024, bytesPerSecond: null },
  /** Answers in 30 s, then streams for as long as it flows, at most 1 MiB/s on average. */
  stream: { headMs: 30_000, totalMs: null, maxBytes: null, bytesPerSecond: 1024 * 1024 },
} as const satisfies Record<string, KestrelLimits>;

/** What a call sends. */
export interface KestrelInit {
  /** Default `GET`. */
  method?: string;
  /** Filtered through the request allow-list; `Authorization` is always the VM's secret. */
  headers?: HeadersInit;
  /** The request body (read already: bounded by the caller). */
  body?: Uint8Array;
  /** Aborts the call (and a streaming body). */
  signal?: AbortSignal;
}

/** How a call connects (tests route it to a stand-in server). */
export type Connect = (target: KestrelTarget, signal: AbortSignal) => Promise<Deno.Conn>;

/** Options of {@linkcode kestrelRequest} and {@linkcode kestrelHealth}. */
export interface KestrelOptions {
  /** Default: a TCP connection to `target.ip:target.port`. */
  connect?: Connect;
}

const defaultConnect: Connect = (target, signal) =>
  Deno.connect({ hostname: target.ip, port: target.port, signal });

function where(target: KestrelTarget): string {
  return `kestrel at ${target.ip}:${target.port}`;
}

/**
 * Whether a 401 is kestrel's own refusal (not a workload's answer it passed on).
 *
 * @example
 * ```ts
 * import { isKestrelRefusal } from "./client.ts";
 * const own = new Response(null, {
 *   status: 401,
 *   headers: { "www-authenticate": 'Bearer realm="kestrel"' },
 * });
 * console.assert(isKestrelRefusal(own) && !isKestrelRefusal(new Response(null, { status: 401 })));
 * ```
 */
export function isKestrelRefusal(res: Response): boolean {
  return res.status === 401 &&
    (res.headers.get("www-authenticate") ?? "").includes(`realm="${AGENT_AUTH_REALM}"`);
}

function failure(target: KestrelTarget, err: unknown, timedOut: string | undefined): VolantError {
  if (err instanceof VolantError) return err;
  const why = timedOut ??
    (err instanceof Deno.errors.ConnectionRefused
      ? "connection refused"
      : err instanceof Http1Error
      ? `bad answer: ${err.message}`
      : err instanceof Error
      ? err.message
      : String(err));
  return new VolantError("agent_unreachable", `${where(target)}: ${why}`, {
    ip: target.ip,
    port: target.port,
  });
}

/**
 * Sends one request to kestrel and resolves to its answer, as an API client may see it: the
 * status as kestrel gave it, allow-listed headers, and the body streaming within `limits`.
 * Throws `agent_unreachable` naming `ip:port` and the reason (refused, no answer within the
 * bound, a malformed or oversized answer); a body that outgrows its bounds ends with an error.
 * kestrel's own 401 comes back with its `WWW-Authenticate` so {@linkcode isKestrelRefusal}
 * can tell it (and is then the caller's to word).
 *
 * @example
 * ```ts ignore
 * import { KESTREL_LIMITS, kestrelRequest } from "./client.ts";
 * import { AgentSecret } from "./secret.ts";
 * const target = { ip: "192.168.127.2", port: 12751, secret: AgentSecret.generate() };
 * const res = await kestrelRequest(target, "/v1/workload", {}, KESTREL_LIMITS.call);
 * ```
 */
export async function kestrelRequest(
  target: KestrelTarget,
  path: string,
  init: KestrelInit,
  limits: KestrelLimits,
  options: KestrelOptions = {},
): Promise<Response> {
  const method = (init.method ?? "GET").toUpperCase();
  const headers = requestHeaders(init.headers);
  if (target.secret !== null) {
    headers.set("authorization", `${AGENT_AUTH_SCHEME} ${target.secret.reveal()}`);
  }
  const abort = new AbortController();
  let timedOut: string | undefined;
  const timers: Array<ReturnType<typeof setTimeout>> = [];
  const stop = (reason: string) => {
    timedOut ??= reason;
    abort.abort();
  };
  timers.push(setTimeout(() => stop(`no answer within ${limits.headMs} ms`), limits.headMs));
  if (limits.totalMs !== null) {
    const ms = limits.totalMs;
    timers.push(setTimeout(() => stop(`not done within ${ms} ms`), ms));
  }
  const onAbort = () => stop("aborted");
  init.signal?.addEventListener("abort", onAbort, { once: true });
  if (init.signal?.aborted) onAbort();
  let conn: Deno.Conn | undefined;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const t of timers) clearTimeout(t);
    init.signal?.removeEventListener("abort", onAbort);
    abort.signal.removeEventListener("abort", close);
    try {
      conn?.close();
    } catch {
      // Closed already.
    }
  };
  abort.signal.addEventListener("abort", close, { once: true });
  try {
    conn = await (options.connect ?? defaultConnect)(target, abort.signal);
    if (abort.signal.aborted) {
      conn.close();
      throw new Error("aborted");
    }
    const res = await exchange(conn, {
      method,
      target: path,
      host: `${target.ip}:${target.port}`,
      headers,
      ...(init.body === undefined ? {} : { body: init.body }),
    }, {
      headBytes: HEAD_BYTES,
      maxBytes: limits.maxBytes,
      chunkBytes: CHUNK_BYTES,
      bytesPerSecond: limits.bytesPerSecond,
    }, close);
    clearTimeout(timers[0]);
    const out = responseHeaders(res.headers);
    const refusal = res.status === 401 ? res.headers.get("www-authenticate") : null;
    if (refusal?.includes(`realm="${AGENT_AUTH_REALM}"`)) out.set("www-authenticate", refusal);
    const body = res.body === null ? null : guarded(res.body, target, () => timedOut);
    return new Response(body, { status: res.status, statusText: res.statusText, headers: out });
  } catch (err) {
    close();
    throw failure(target, err, timedOut);
  }
}

/** `body`, its failures reworded as `agent_unreachable` naming the target and the reason. */
function guarded(
  body: ReadableStream<Uint8Array>,
  target: KestrelTarget,
  timedOut: () => string | undefined,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await reader.read();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (err) {
        controller.error(failure(target, err, timedOut()));
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/** What one probe of kestrel's `/healthz` found. */
export type HealthProbe =
  | { ok: true; health: AgentHealthWithWorkload }
  | { ok: false; reason: string };

/**
 * One `GET /healthz` within `timeoutMs`: kestrel's health when it answers 200 with a valid
 * body, else the reason (never throws).
 *
 * @example
 * ```ts ignore
 * import { kestrelHealth } from "./client.ts";
 * const probe = await kestrelHealth(target, { timeoutMs: 1000 });
 * if (probe.ok) console.log(probe.health.kestrel_version);
 * ```
 */
export async function kestrelHealth(
  target: KestrelTarget,
  options: { timeoutMs: number; signal?: AbortSignal } & KestrelOptions,
): Promise<HealthProbe> {
  let text: string;
  let res: Response;
  try {
    res = await kestrelRequest(target, "/healthz", {
      headers: { accept: "application/json" },
      ...(options.signal ? { signal: options.signal } : {}),
    }, {
      headMs: options.timeoutMs,
      totalMs: options.timeoutMs,
      maxBytes: HEALTH_BYTES,
      bytesPerSecond: null,
    }, options);
    text = await res.text();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, reason: message.replace(`${where(target)}: `, "") };
  }
  if (res.status !== 200) {
    return {
      ok: false,
      reason: isKestrelRefusal(res)
        ? "HTTP 401: kestrel refused the VM's secret"
        : `HTTP ${res.status}`,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: "the body is not JSON" };
  }
  const health = AgentHealthWithWorkload.safeParse(json);
  if (!health.success) return { ok: false, reason: "the body is not an AgentHealth" };
  return { ok: true, health: health.data };
}
