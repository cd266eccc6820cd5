/**
 * kestrel's HTTP API inside the guest, on the guest's eth0 address and port
 * {@linkcode AGENT_PORT} (the daemon proxies to it and polls its `/healthz` for readiness): the
 * wire types both sides import. Every request must carry the VM's secret
 * (`Authorization: Bearer <secret>`, see {@linkcode AGENT_AUTH_SCHEME}); kestrel answers
 * anything else with 401. Written with `zod/mini` to keep kestrel's bundle small (see error.ts).
 *
 * Routes:
 * - `GET /healthz` → {@linkcode AgentHealth}
 * - `POST /v1/net/check` body {@linkcode NetCheckRequest} → {@linkcode NetCheckResult}: kestrel
 *   makes one HTTP GET from inside the guest (VM-to-VM and egress checks)
 *
 * @module
 */
import * as z from "zod/mini";

/**
 * The TCP port kestrel's HTTP API listens on in the guest, unless the daemon config's
 * `guest.agent_port` says otherwise (the boot config carries the port). Not a common
 * application or development port (an OCI image's app keeps 80, 3000, 8000, 8080, 9090…) and
 * below the kernel's ephemeral range, so the guest's own outgoing connections never take it.
 */
export const AGENT_PORT = 12751;

/** The port kestrel listened on before it had a port of its own (VMs booted by older daemons). */
export const LEGACY_AGENT_PORT = 8080;

/** The `Authorization` scheme of kestrel's API: `Authorization: Bearer <the VM's secret>`. */
export const AGENT_AUTH_SCHEME = "Bearer";

/** The realm of kestrel's own 401 answers (`WWW-Authenticate: Bearer realm="kestrel"`). */
export const AGENT_AUTH_REALM = "kestrel";

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

// What kestrel supervises (issue 5), the plugin's workload:
// - `GET /v1/workload` → WorkloadStatus; `POST /v1/workload/restart` → the same
// - `GET /v1/logs?tail=N&since=SEQ&follow=1` → NDJSON, one LogLine a line
// - `GET /v1/actions` → ActionList; `POST /v1/actions/<name>` → the workload's answer
// - any other `/v1/*` → proxied to the workload's `base_url` with `/v1` stripped

/**
 * The supervised process's lifecycle: `starting` (being spawned), `running`, `backoff` (waiting
 * to restart), `exited` (ended and the restart policy says stay down), `failed` (restarts
 * exhausted, or it cannot be started as configured), `stopped` (stopped on request).
 */
export const WorkloadState = z.enum([
  "starting",
  "running",
  "backoff",
  "exited",
  "failed",
  "stopped",
]);
/** One of {@linkcode WorkloadState}'s values. */
export type WorkloadState = z.infer<typeof WorkloadState>;

/** How a run of the workload ended. */
export const WorkloadExit = z.object({
  /** Exit code, `null` when killed by a signal or never started. */
  code: z.nullable(z.number()),
  /** Terminating signal (`SIGKILL`…), `null` for a normal exit. */
  signal: z.nullable(z.string()),
  /** When kestrel saw it end (ISO 8601). */
  at: z.string(),
  /** How long the run lasted, in ms. */
  ran_ms: z.number(),
});
/** How a run ended. */
export type WorkloadExit = z.infer<typeof WorkloadExit>;

/** The health check's verdict: `none` without a check, `unknown` until thresholds are met. */
export const HealthVerdict = z.enum(["none", "unknown", "healthy", "unhealthy"]);
/** One of {@linkcode HealthVerdict}'s values. */
export type HealthVerdict = z.infer<typeof HealthVerdict>;

/** The continuous health check's state. */
export const WorkloadHealth = z.object({
  kind: z.enum(["none", "http", "tcp", "exec"]),
  status: HealthVerdict,
  /** Consecutive failing probes that counted (outside the start period). */
  failures: z.number(),
  /** Consecutive passing probes. */
  successes: z.number(),
  /** When the last probe finished (ISO 8601). */
  last_check: z.nullable(z.string()),
  /** Why the last failing probe failed. */
  last_error: z.nullable(z.string()),
});
/** The health check's state. */
export type WorkloadHealth = z.infer<typeof WorkloadHealth>;

/** `GET /v1/workload`, and the `workload` of `GET /healthz`. */
export const WorkloadStatus = z.object({
  /** The plugin's name and version (from the manifest). */
  name: z.string(),
  version: z.string(),
  state: WorkloadState,
  /** Running and, with a health check, judged healthy. */
  healthy: z.boolean(),
  health: WorkloadHealth,
  pid: z.nullable(z.number()),
  /** Automatic restarts so far. */
  restarts: z.number(),
  last_exit: z.nullable(WorkloadExit),
  /** When the current (or last) run started (ISO 8601). */
  started_at: z.nullable(z.string()),
  /** When the workload entered its current state (ISO 8601). */
  since: z.string(),
  /** In `backoff`: when the next start is due (ISO 8601). */
  next_start_at: z.nullable(z.string()),
  /** Why it could not be started, or why it failed. */
  last_error: z.nullable(z.string()),
});
/** `GET /v1/workload`. */
export type WorkloadStatus = z.infer<typeof WorkloadStatus>;

/** `GET /healthz` with the supervised workload (`null` when the VM runs none). */
export const AgentHealthWithWorkload = z.extend(AgentHealth, {
  workload: z.optional(z.nullable(WorkloadStatus)),
});
/** `GET /healthz` with the supervised workload. */
export type AgentHealthWithWorkload = z.infer<typeof AgentHealthWithWorkload>;

/** Where a log line came from: the workload's stdout or stderr, or kestrel's own events. */
export const LogStream = z.enum(["stdout", "stderr", "kestrel"]);
/** One of {@linkcode LogStream}'s values. */
export type LogStream = z.infer<typeof LogStream>;

/** One line of `GET /v1/logs` (NDJSON). */
export const LogLine = z.object({
  /** Increases by one per line, from 1, for the life of kestrel. */
  seq: z.number(),
  /** When kestrel read it (ISO 8601). */
  time: z.string(),
  stream: LogStream,
  /** The line without its newline (invalid UTF-8 replaced). */
  line: z.string(),
});
/** One log line. */
export type LogLine = z.infer<typeof LogLine>;

/** One entry of `GET /v1/actions`. */
export const ActionInfo = z.object({
  name: z.string(),
  description: z.nullable(z.string()),
  method: z.string(),
  path: z.string(),
  timeout_ms: z.number(),
});
/** One action. */
export type ActionInfo = z.infer<typeof ActionInfo>;

/** `GET /v1/actions`. */
export const ActionList = z.object({ actions: z.array(ActionInfo) });
/** `GET /v1/actions`. */
export type ActionList = z.infer<typeof ActionList>;

/**
 * `GET /v1/stats`: the guest's memory and kestrel's own, read from `/proc` when asked. Memory in
 * use is `MemTotal − MemAvailable` (what the guest could not hand out without swapping), the same
 * figure the ready report and the benchmarks use.
 */
export const GuestStats = z.object({
  uptime_ms: z.number(),
  memory: z.object({
    total_kb: z.number(),
    available_kb: z.number(),
    used_kb: z.number(),
    free_kb: z.number(),
    cached_kb: z.number(),
    shmem_kb: z.number(),
  }),
  /** kestrel (PID 1): resident set now and at its peak, split into anonymous, file-backed and shared memory. */
  kestrel: z.object({
    rss_kb: z.number(),
    hwm_kb: z.number(),
    anon_kb: z.number(),
    file_kb: z.number(),
    shmem_kb: z.number(),
  }),
});
/** `GET /v1/stats`. */
export type GuestStats = z.infer<typeof GuestStats>;
