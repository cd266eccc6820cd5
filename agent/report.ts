/**
 * kestrel's readiness report: uptime from `/proc/uptime`, memory from `/proc/meminfo`,
 * printed as one console line `KESTREL_READY {json}` that the daemon waits for.
 *
 * @module
 */
import { READY_MARKER, ReadyReport } from "../schema/boot_config.ts";
import { VolantError } from "../schema/error.ts";
import type { System } from "./system.ts";
import { KESTREL_VERSION } from "./version.ts";

/**
 * Parses `/proc/meminfo` into a map of field → value in kB (`MemTotal` → 245760).
 * Fields without a number are skipped; values without a unit (HugePages_Total) are kept as is.
 *
 * @example
 * ```ts
 * import { parseMeminfo } from "./report.ts";
 * const m = parseMeminfo("MemTotal:  245760 kB\nMemAvailable: 200000 kB\n");
 * console.assert(m.get("MemAvailable") === 200000);
 * ```
 */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
    if (match) out.set(match[1]!, Number(match[2]));
  }
  return out;
}

/**
 * Parses `/proc/uptime` (`"12.34 20.00"`) into milliseconds since boot, rounded.
 * Throws an `internal` {@linkcode VolantError} when the text is not an uptime.
 *
 * @example
 * ```ts
 * import { parseUptime } from "./report.ts";
 * console.assert(parseUptime("2.37 1.90\n") === 2370);
 * ```
 */
export function parseUptime(text: string): number {
  const seconds = Number(text.trim().split(/\s+/)[0]);
  if (text.trim() === "" || !Number.isFinite(seconds) || seconds < 0) {
    throw new VolantError("internal", `Cannot parse /proc/uptime: ${JSON.stringify(text)}`);
  }
  return Math.round(seconds * 1000);
}

/**
 * Builds a {@linkcode ReadyReport} from the texts of `/proc/uptime` and `/proc/meminfo`, and
 * kestrel's own resident memory from `/proc/self/status` (`VmRSS`) when `status` is given, with
 * the guest's address when `ip` is given.
 * Throws an `internal` {@linkcode VolantError} when MemTotal or MemAvailable is missing.
 *
 * @example
 * ```ts
 * import { buildReadyReport } from "./report.ts";
 * const r = buildReadyReport("web", "1.5 1.0", "MemTotal: 100 kB\nMemAvailable: 80 kB\n");
 * console.assert(r.uptime_ms === 1500 && r.mem_available_kb === 80);
 * ```
 */
export function buildReadyReport(
  name: string,
  uptime: string,
  meminfo: string,
  status?: string,
  ip?: string,
): ReadyReport {
  const mem = parseMeminfo(meminfo);
  const rss = status === undefined ? undefined : parseMeminfo(status).get("VmRSS");
  const total = mem.get("MemTotal");
  const available = mem.get("MemAvailable");
  if (total === undefined || available === undefined) {
    throw new VolantError(
      "internal",
      "/proc/meminfo has no MemTotal or MemAvailable line (is /proc mounted?)",
      { fields: [...mem.keys()] },
    );
  }
  return ReadyReport.parse({
    name,
    kestrel_version: KESTREL_VERSION,
    uptime_ms: parseUptime(uptime),
    mem_total_kb: total,
    mem_available_kb: available,
    ...(rss === undefined ? {} : { kestrel_rss_kb: rss }),
    ...(ip === undefined ? {} : { ip }),
  });
}

/**
 * Reads `/proc/uptime` and `/proc/meminfo` and builds the report for VM `name` (at address
 * `ip`, when the network was configured).
 *
 * @example
 * ```ts ignore
 * import { readReadyReport } from "./report.ts";
 * import { drySystem } from "./system.ts";
 * const report = await readReadyReport(drySystem(), "web");
 * ```
 */
export async function readReadyReport(
  system: System,
  name: string,
  ip?: string,
): Promise<ReadyReport> {
  const [uptime, meminfo, status] = await Promise.all([
    system.readText("/proc/uptime"),
    system.readText("/proc/meminfo"),
    system.readText("/proc/self/status").catch(() => undefined),
  ]);
  return buildReadyReport(name, uptime, meminfo, status, ip);
}

/**
 * The console line the daemon waits for: `KESTREL_READY {json}`.
 *
 * @example
 * ```ts
 * import { formatReadyLine } from "./report.ts";
 * const line = formatReadyLine({
 *   name: "web", kestrel_version: "0.1.0", uptime_ms: 1, mem_total_kb: 2, mem_available_kb: 1,
 * });
 * console.assert(line.startsWith("KESTREL_READY {"));
 * ```
 */
export function formatReadyLine(report: ReadyReport): string {
  return `${READY_MARKER} ${JSON.stringify(report)}`;
}
