import assert from "node:assert/strict";
import { READY_MARKER, ReadyReport } from "../schema/boot_config.ts";
import { VolantError } from "../schema/error.ts";
import {
  buildReadyReport,
  formatReadyLine,
  parseMeminfo,
  parseUptime,
  readReadyReport,
} from "./report.ts";
import { drySystem } from "./system.ts";
import { KESTREL_VERSION } from "./version.ts";

// Shape of a guest's /proc/meminfo (microvm, -m 256), trimmed.
const MEMINFO = `MemTotal:         222756 kB
MemFree:          180312 kB
MemAvailable:     146568 kB
Buffers:               0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
`;

Deno.test("parseMeminfo() reads kB fields and unitless counters", () => {
  const m = parseMeminfo(MEMINFO);
  assert.equal(m.get("MemTotal"), 222756);
  assert.equal(m.get("MemAvailable"), 146568);
  assert.equal(m.get("HugePages_Total"), 0);
  assert.equal(m.get("Nope"), undefined);
});

Deno.test("parseUptime() turns seconds into rounded milliseconds", () => {
  assert.equal(parseUptime("9.16 3.02\n"), 9160);
  assert.equal(parseUptime("0.0005 0"), 1);
  assert.throws(() => parseUptime(""), VolantError);
  assert.throws(() => parseUptime("abc 1"), VolantError);
});

Deno.test("buildReadyReport() builds a report ReadyReport.parse accepts", () => {
  const report = buildReadyReport("web", "9.16 3.02\n", MEMINFO);
  assert.deepEqual(ReadyReport.parse(report), {
    name: "web",
    kestrel_version: KESTREL_VERSION,
    uptime_ms: 9160,
    mem_total_kb: 222756,
    mem_available_kb: 146568,
  });
});

Deno.test("buildReadyReport() names the missing meminfo field", () => {
  assert.throws(
    () => buildReadyReport("web", "1 1", "MemTotal: 10 kB\n"),
    (err) => err instanceof VolantError && /MemAvailable/.test(err.message),
  );
});

Deno.test("formatReadyLine() is one line the daemon can parse back", () => {
  const report = buildReadyReport("web", "1.5 1", MEMINFO);
  const line = formatReadyLine(report);
  assert.ok(!line.includes("\n"));
  assert.ok(line.startsWith(`${READY_MARKER} `));
  assert.deepEqual(ReadyReport.parse(JSON.parse(line.slice(READY_MARKER.length))), report);
});

Deno.test("readReadyReport() reads this host's real /proc", async () => {
  const report = await readReadyReport(drySystem({ log: () => {} }), "host");
  assert.equal(report.name, "host");
  assert.ok(report.mem_total_kb > 0 && report.mem_available_kb <= report.mem_total_kb);
  assert.ok(report.uptime_ms > 0);
});

Deno.test("buildReadyReport() adds kestrel's VmRSS from /proc/self/status", () => {
  const status = "Name:\tdeno\nVmPeak:\t 90000 kB\nVmRSS:\t   41234 kB\nThreads:\t7\n";
  const report = buildReadyReport("web", "1.5 1", MEMINFO, status);
  assert.equal(report.kestrel_rss_kb, 41234);
  assert.equal(buildReadyReport("web", "1.5 1", MEMINFO).kestrel_rss_kb, undefined);
});
