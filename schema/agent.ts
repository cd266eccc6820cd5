/**
 * kestrel's HTTP API on port 8080 inside the guest (the daemon proxies to it and polls its
 * `/healthz` for readiness): the wire types both sides import. Written with `zod/mini` to keep
 * kestrel's bundle small (see error.ts).
 *
 * Routes:
 * - `GET /healthz` → {@linkcode AgentHealth}
 * - `POST /v1/net/check` body {@linkcode NetCheckRequest} → {@linkcode NetCheckResult}: kestrel
 *   makes one HTTP GET from inside the guest (VM-to-VM and egress checks)
 *
 * @module
 */
import * as z from "zod/mini";

/** The TCP port kestrel's HTTP API listens on in the guest. */
export const AGENT_PORT = 8080;

/** `GET /healthz`: kestrel's view of the guest. */
export const AgentHealth = z.object({
  status: z.enum(["ok", "degraded"]),
  name: z.string(),
  hostname: z.string(),
  kestrel_version: z.string(),
  uptime_ms: z.number(),
  ip: z.nullable(z.string()),
  mac: z.nullable(z.string()),
});
/** `GET /healthz`. */
export type AgentHealth = z.infer<typeof AgentHealth>;

/** Body of `POST /v1/net/check`. */
export const NetCheckRequest = z.strictObject({
  url: z.string().check(z.regex(/^http:\/\/[^/\s]+(\/\S*)?$/, "must be an http:// URL")),
  timeout_ms: z._default(z.int().check(z.minimum(1), z.maximum(30_000)), 3_000),
});
/** Body of `POST /v1/net/check`. */
export type NetCheckRequest = z.infer<typeof NetCheckRequest>;

/** Answer of `POST /v1/net/check`. */
export const NetCheckResult = z.object({
  ok: z.boolean(),
  status: z.nullable(z.number()),
  body: z.nullable(z.string()),
  error: z.nullable(z.string()),
  ms: z.number(),
});
/** Answer of `POST /v1/net/check`. */
export type NetCheckResult = z.infer<typeof NetCheckResult>;
