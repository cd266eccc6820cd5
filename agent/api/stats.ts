/**
 * `GET /v1/stats`: the guest's memory (`/proc/meminfo`) and kestrel's own (`/proc/self/status`),
 * read when asked ({@linkcode GuestStats}).
 *
 * @module
 */
import type { GuestStats } from "../../schema/agent.ts";
import { VolantError } from "../../schema/error.ts";
import { parseMeminfo, parseUptime } from "../report.ts";
import { json } from "./respond.ts";
import type { Route } from "./router.ts";

/**
 * The stats from the texts of `/proc/uptime`, `/proc/meminfo` and `/proc/self/status`.
 *
 * @example
 * ```ts
 * import { buildStats } from "./stats.ts";
 * const s = buildStats(
 *   "2.5 1.0",
 *   "MemTotal: 1000 kB\nMemFree: 500 kB\nMemAvailable: 700 kB\nCached: 100 kB\nShmem: 10 kB\n",
 *   "VmHWM: 60 kB\nVmRSS: 50 kB\nRssAnon: 20 kB\nRssFile: 29 kB\nRssShmem: 1 kB\n",
 * );
 * console.assert(s.memory.used_kb === 300 && s.kestrel.file_kb === 29 && s.uptime_ms === 2500);
 * ```
 */
export function buildStats(uptime: string, meminfo: string, status: string): GuestStats {
  const mem = parseMeminfo(meminfo);
  const self = parseMeminfo(status);
  const need = (map: Map<string, number>, key: string, file: string): number => {
    const value = map.get(key);
    if (value === undefined) throw new VolantError("internal", `${file} has no ${key} line`);
    return value;
  };
  const total = need(mem, "MemTotal", "/proc/meminfo");
  const available = need(mem, "MemAvailable", "/proc/meminfo");
  return {
    uptime_ms: parseUptime(uptime),
    memory: {
      total_kb: total,
      available_kb: available,
      used_kb: total - available,
      free_kb: mem.get("MemFree") ?? 0,
      cached_kb: mem.get("Cached") ?? 0,
      shmem_kb: mem.get("Shmem") ?? 0,
    },
    kestrel: {
      rss_kb: need(self, "VmRSS", "/proc/self/status"),
      hwm_kb: self.get("VmHWM") ?? 0,
      anon_kb: self.get("RssAnon") ?? 0,
      file_kb: self.get("RssFile") ?? 0,
      shmem_kb: self.get("RssShmem") ?? 0,
    },
  };
}

/** Reads the three files; `read` is `Deno.readTextFile` unless a test gives another. */
export function statsRoute(
  read: (path: string) => Promise<string> = (path) => Deno.readTextFile(path),
): Route {
  return {
    method: "GET",
    path: "/v1/stats",
    handle: async () => {
      const [uptime, meminfo, status] = await Promise.all([
        read("/proc/uptime"),
        read("/proc/meminfo"),
        read("/proc/self/status"),
      ]);
      return json(buildStats(uptime, meminfo, status));
    },
  };
}
