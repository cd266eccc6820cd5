/**
 * `deno task bench` / `./volant bench`: runs the benchmarks and prints tables with the
 * baseline measured in the same run and the ratio. Timing targets live here, never in tests.
 *
 * Usage: `deno run -A bench/main.ts [--runs N] [--json]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { median, runBootBench } from "./boot_bench.ts";

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)]
    .join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { runs: { type: "string", default: "5" }, json: { type: "boolean", default: false } },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error(`bench: --runs must be a positive integer, got ${values.runs}`);
    Deno.exit(2);
  }
  const boot = await runBootBench(runs);
  if (values.json) {
    console.log(JSON.stringify({ boot }, null, 2));
    Deno.exit(0);
  }
  const raw = median(boot.rawMs);
  const api = median(boot.daemonMs);
  const r = boot.report;
  console.log(`\nBoot to kestrel ready (${boot.accel.toUpperCase()}, median of ${runs})\n`);
  console.log(table(["measure", "volant", "baseline", "ratio", "target"], [
    [
      "POST /api/v1/vms → running vs raw qemu → ready line",
      fmtMs(api),
      fmtMs(raw),
      (api / raw).toFixed(3),
      "≤ 1.10",
    ],
  ]));
  console.log(`\nruns: volant ${boot.daemonMs.map(fmtMs).join(", ")}`);
  console.log(`      raw    ${boot.rawMs.map(fmtMs).join(", ")}`);
  console.log(`      daemon boot_ms (start request → ready) ${boot.daemonBootMs.join(", ")}`);
  console.log("\nMemory\n");
  console.log(table(["measure", "value"], [
    [
      "guest memory in use at ready (MemTotal − MemAvailable)",
      `${Math.round((r.mem_total_kb - r.mem_available_kb) / 1024)} MiB of ${
        Math.round(r.mem_total_kb / 1024)
      } MiB`,
    ],
    [
      "kestrel RSS inside the guest",
      r.kestrel_rss_kb ? `${Math.round(r.kestrel_rss_kb / 1024)} MiB` : "n/a",
    ],
    ["guest uptime at ready", fmtMs(r.uptime_ms)],
    ["volantd RSS (host)", `${Math.round(boot.volantdRssKb / 1024)} MiB`],
    ["one QEMU process RSS at ready (host)", `${Math.round(boot.qemuRssKb / 1024)} MiB`],
  ]));
}
