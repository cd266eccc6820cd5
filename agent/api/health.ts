/**
 * `GET /healthz`: kestrel's view of the guest ({@linkcode AgentHealthWithWorkload}), with the
 * supervised workload's status. The daemon polls it for readiness as soon as the VMM runs.
 *
 * @module
 */
import type { AgentHealth, AgentHealthWithWorkload, WorkloadStatus } from "../../schema/agent.ts";
import { parseUptime } from "../report.ts";
import { KESTREL_VERSION } from "../version.ts";
import { json } from "./respond.ts";
import type { Route } from "./router.ts";

/** What the guest is, as kestrel set it up at boot. */
export interface AgentInfo {
  /** The VM's name from the boot config. */
  name: string;
  /** The hostname kestrel set. */
  hostname: string;
  /** `degraded` when kestrel fell back to defaults (missing or invalid boot config). */
  status: AgentHealth["status"];
  /** The guest's IPv4 address (no prefix), when kestrel configured the network. */
  ip: string | null;
  /** The NIC's MAC, when kestrel configured the network. */
  mac: string | null;
}

/**
 * The `/healthz` body for `info` at guest uptime `uptimeMs` with the workload's status (`null`
 * when the VM runs none). `status` is `ok` only when the boot went as configured and there is no
 * workload or it is healthy; `degraded` otherwise.
 *
 * @example
 * ```ts
 * import { buildHealth } from "./health.ts";
 * const h = buildHealth({ name: "web", hostname: "web", status: "ok", ip: null, mac: null }, 1500);
 * console.assert(h.uptime_ms === 1500 && h.status === "ok" && h.workload === null);
 * ```
 */
export function buildHealth(
  info: AgentInfo,
  uptimeMs: number,
  workload: WorkloadStatus | null = null,
): AgentHealthWithWorkload {
  const healthy = workload === null || workload.healthy;
  return {
    status: info.status === "ok" && healthy ? "ok" : "degraded",
    name: info.name,
    hostname: info.hostname,
    kestrel_version: KESTREL_VERSION,
    uptime_ms: uptimeMs,
    ip: info.ip,
    mac: info.mac,
    workload,
  };
}

/**
 * The guest's uptime in ms, from `/proc/uptime`.
 *
 * @example
 * ```ts ignore
 * import { readUptimeMs } from "./health.ts";
 * console.log(await readUptimeMs()); // 4321
 * ```
 */
export async function readUptimeMs(): Promise<number> {
  return parseUptime(await Deno.readTextFile("/proc/uptime"));
}

/**
 * The `GET /healthz` route; `uptime` reads the clock (default `/proc/uptime`), `workload` the
 * supervised workload's status (none by default).
 *
 * @example
 * ```ts ignore
 * import { healthRoute } from "./health.ts";
 * const route = healthRoute({ name: "web", hostname: "web", status: "ok", ip: null, mac: null });
 * ```
 */
export function healthRoute(
  info: AgentInfo,
  uptime: () => Promise<number> = readUptimeMs,
  workload: () => WorkloadStatus | null = () => null,
): Route {
  return {
    method: "GET",
    path: "/healthz",
    handle: async () => json(buildHealth(info, await uptime(), workload())),
  };
}
