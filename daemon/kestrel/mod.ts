/**
 * The daemon's client of kestrel, the agent in every guest: one module for every call (the API's
 * proxy, actions and logs, the MCP tools, readiness and workload polls), with the VM's secret,
 * header allow-lists, no redirects, and bounded answers.
 *
 * ```ts ignore
 * import { AgentSecret, KESTREL_LIMITS, kestrelHealth, kestrelRequest } from "./mod.ts";
 * const target = { ip: "192.168.127.2", port: 12751, secret: AgentSecret.generate() };
 * const probe = await kestrelHealth(target, { timeoutMs: 1000 });
 * const logs = await kestrelRequest(target, "/v1/logs?follow=1", {}, KESTREL_LIMITS.stream);
 * ```
 *
 * @module
 */
export {
  CHUNK_BYTES,
  type Connect,
  HEAD_BYTES,
  HEALTH_BYTES,
  type HealthProbe,
  isKestrelRefusal,
  KESTREL_LIMITS,
  kestrelHealth,
  type KestrelInit,
  type KestrelLimits,
  type KestrelOptions,
  kestrelRequest,
} from "./client.ts";
export { type KestrelRowFields, type KestrelTarget, kestrelTarget } from "./target.ts";
export { REQUEST_HEADERS, requestHeaders, RESPONSE_HEADERS, responseHeaders } from "./headers.ts";
export { AgentSecret, REDACTED, SECRET_BYTES } from "./secret.ts";
