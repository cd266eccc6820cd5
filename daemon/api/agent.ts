/**
 * Handlers that reach kestrel inside a VM: manifest actions, the workload's logs, and a
 * passthrough of anything under `/agent/*` to kestrel's API. Every call goes through the
 * daemon's kestrel client (`daemon/kestrel/`): the VM's secret added, only allow-listed headers
 * either way (the caller's own credentials never reach a guest), redirects never followed,
 * answers bounded in time and size (a followed log streams, rate-bounded). The VM must be
 * starting or running and hold an address.
 *
 * @module
 */
import { GuestStats, VolantError } from "../../schema/mod.ts";
import type { AgentProxy, CallAction, GetVmStats, VmLogs } from "../../schema/operations/mod.ts";
import {
  isKestrelRefusal,
  KESTREL_LIMITS,
  type KestrelInit,
  type KestrelLimits,
  type KestrelOptions,
  kestrelRequest,
} from "../kestrel/mod.ts";
import type { ApiDeps, Handler } from "./route.ts";

/** Largest request body passed on to kestrel, bytes. */
export const MAX_FORWARD_BYTES = 16 * 1024 * 1024;

/**
 * The limits of a call to `path`: a followed log streams, anything else is one bounded call.
 *
 * @example
 * ```ts
 * import { limitsFor } from "./agent.ts";
 * console.assert(limitsFor("/v1/logs?follow=1").totalMs === null);
 * console.assert(limitsFor("/v1/logs?tail=5").maxBytes !== null);
 * ```
 */
export function limitsFor(path: string): KestrelLimits {
  const url = new URL(path, "http://kestrel");
  const follow = url.searchParams.get("follow");
  return url.pathname === "/v1/logs" && (follow === "1" || follow === "true")
    ? KESTREL_LIMITS.stream
    : KESTREL_LIMITS.call;
}

/**
 * Sends `init` to kestrel's `path` in VM `name` and resolves to its answer as the API client
 * may see it. `invalid_state` when the VM is not running or holds no address;
 * `agent_unreachable` naming the VM when kestrel does not answer within the bounds, answers
 * badly, or refuses the VM's secret.
 *
 * @example
 * ```ts ignore
 * import { toAgent } from "./agent.ts";
 * const res = await toAgent(deps, "web", "/v1/workload", { method: "GET" });
 * ```
 */
export async function toAgent(
  deps: ApiDeps,
  name: string,
  path: string,
  init: KestrelInit,
  limits: KestrelLimits = callLimits(deps, name, path),
): Promise<Response> {
  const target = deps.service.kestrelTarget(name);
  const options: KestrelOptions = deps.kestrelConnect ? { connect: deps.kestrelConnect } : {};
  let res: Response;
  try {
    res = await kestrelRequest(target, path, init, limits, options);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new VolantError("agent_unreachable", `VM ${name}: ${why}`, {
      name,
      ip: target.ip,
      port: target.port,
    });
  }
  if (isKestrelRefusal(res)) {
    await res.body?.cancel().catch(() => {});
    throw new VolantError(
      "agent_unreachable",
      `VM ${name}: kestrel at ${target.ip}:${target.port} refused the daemon's credentials ` +
        `(HTTP 401); restart the VM to give it a new secret (volar vms restart ${name})`,
      { name, ip: target.ip, port: target.port },
    );
  }
  return res;
}

/** The request's body for kestrel (at most {@linkcode MAX_FORWARD_BYTES}), if it has one. */
async function bodyOf(req: Request): Promise<Uint8Array | undefined> {
  if (req.method === "GET" || req.method === "HEAD" || req.body === null) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.length;
    if (size > MAX_FORWARD_BYTES) {
      throw new VolantError(
        "invalid_argument",
        `body: larger than ${MAX_FORWARD_BYTES} bytes, the most passed on to a VM`,
        { field: "body", max: MAX_FORWARD_BYTES },
      );
    }
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

/**
 * The bounds of a call to `path` of VM `name`'s kestrel: {@linkcode limitsFor}, but an action
 * gets its own timeout from the manifest, and more.
 */
function callLimits(deps: ApiDeps, name: string, path: string): KestrelLimits {
  const prefix = "/v1/actions/";
  const pathname = new URL(path, "http://kestrel").pathname;
  if (!pathname.startsWith(prefix)) return limitsFor(path);
  let action = pathname.slice(prefix.length);
  try {
    action = decodeURIComponent(action);
  } catch {
    return limitsFor(path);
  }
  let timeout: number | undefined;
  try {
    const plugin = deps.service.get(name).plugin;
    const actions = plugin === null ? {} : deps.plugins.parsedManifest(plugin).actions;
    timeout = Object.hasOwn(actions, action) ? actions[action]!.timeout_ms : undefined;
  } catch {
    timeout = undefined;
  }
  if (timeout === undefined) return KESTREL_LIMITS.call;
  const headMs = timeout + 10_000;
  return {
    ...KESTREL_LIMITS.call,
    headMs: Math.max(KESTREL_LIMITS.call.headMs, headMs),
    totalMs: Math.max(KESTREL_LIMITS.call.totalMs, headMs + 60_000),
  };
}

/** `POST /api/v1/vms/:name/actions/:action`: the body and headers passed on to kestrel. */
export const callAction: Handler<typeof CallAction> = async ({ params, deps, request }) => {
  const body = await bodyOf(request);
  return toAgent(deps, params.name, `/v1/actions/${encodeURIComponent(params.action)}`, {
    method: "POST",
    headers: request.headers,
    ...(body ? { body } : {}),
    signal: request.signal,
  });
};

/** `GET /api/v1/vms/:name/logs`: kestrel's `/v1/logs` with the validated query. */
export const vmLogs: Handler<typeof VmLogs> = ({ params, query, deps, request }) => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) search.set(key, String(value));
  }
  return toAgent(deps, params.name, `/v1/logs${search.size > 0 ? `?${search}` : ""}`, {
    method: "GET",
    signal: request.signal,
  });
};

/** `ANY /api/v1/vms/:name/agent/*`: the request passed through to kestrel's `/<path>`. */
export const agentProxy: Handler<typeof AgentProxy> = async ({ params, deps, request }) => {
  const body = await bodyOf(request);
  return toAgent(deps, params.name, `/${params.path}${new URL(request.url).search}`, {
    method: request.method,
    headers: request.headers,
    ...(body ? { body } : {}),
    signal: request.signal,
  });
};

/**
 * `GET /api/v1/vms/:name/stats`: kestrel's `/v1/stats`, checked (a guest's answer is untrusted:
 * bounded by the client, then validated) before it is answered.
 */
export const vmStats: Handler<typeof GetVmStats> = async ({ params, deps, request }) => {
  const res = await toAgent(deps, params.name, "/v1/stats", {
    method: "GET",
    signal: request.signal,
  });
  const text = await res.text();
  let parsed: ReturnType<typeof GuestStats.safeParse> | undefined;
  try {
    parsed = res.ok ? GuestStats.safeParse(JSON.parse(text)) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!parsed?.success) {
    throw new VolantError(
      "agent_unreachable",
      `VM ${params.name}: kestrel answered /v1/stats with HTTP ${res.status} and no valid stats ` +
        "(a kestrel older than stats, or a broken guest)",
      { name: params.name, status: res.status },
    );
  }
  return parsed.data;
};
