/**
 * Compares a run's results with accepted ones (`deno task bench --compare`, issue 17): every
 * figure of every benchmark that ran, accepted value against now, the change, and a verdict.
 *
 * - `WORSE` / `better`: changed in the figure's bad / good direction by more than the larger of
 *   the two noise bands (accepted, now); `~` within it.
 * - Ratios to the same-run baseline are compared as well; for timings they are the primary
 *   signal, since the baseline ran on the same machine at the same time and machine speed
 *   cancels.
 * - Ratios of p99s are shown, not flagged: the tail of each side is a handful of slow requests,
 *   and over each other they swing by ±150 % between runs of the same code.
 * - Times and rates from another host (hostname, CPU, kernel or accelerator differ) are shown
 *   but not flagged: they measure the machine. Their ratios, sizes and memory are still flagged.
 * - A figure on one side only is `new` or `removed`; a benchmark that did not run is skipped.
 *
 * Standalone: `deno run -A bench/compare.ts [--fail-on-regression] <accepted.json> <run.json>`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  type Benchmark,
  benchNames,
  type Figure,
  hostBound,
  hostDifferences,
  readResults,
  type Results,
  type Unit,
} from "./results.ts";

/** A row's verdict. */
export type Verdict = "WORSE" | "better" | "~" | "not flagged" | "new" | "removed";

/** One compared quantity: a figure's value or its ratio to the baseline. */
export interface Row {
  /** The figure's key. */
  key: string;
  /** The figure's value, or its ratio to the same-run baseline. */
  kind: "value" | "ratio";
  /** The figure's unit (`null` for a ratio). */
  unit: Unit | null;
  accepted: number | null;
  now: number | null;
  /** (now − accepted) / accepted. */
  change: number | null;
  /** The larger of the two relative noise bands. */
  band: number | null;
  verdict: Verdict;
  /** Why a row is not flagged. */
  note?: string;
}

/** One benchmark's comparison. */
export interface BenchComparison {
  name: string;
  /** Accepted run's metadata, when there is one. */
  accepted: Benchmark | null;
  /** How the hosts differ (empty: the same host). */
  hostDiff: string[];
  /** Parameters that differ, `name a → b`. */
  paramDiff: string[];
  rows: Row[];
}

/** The whole comparison. */
export interface Comparison {
  benchmarks: BenchComparison[];
  /** Accepted benchmarks that did not run this time. */
  notRun: string[];
  /** Rows by verdict. */
  counts: Record<Verdict, number>;
}

/**
 * The verdict for one value pair: `WORSE` when the bad side of `accepted` / `now` exceeds
 * 1 + `band` (a figure twice as slow is +100 %, twice as fast −50 %, and both are the same step
 * in either direction), `better` likewise, `~` within. `change` is (now − accepted) / accepted.
 */
export function judge(
  accepted: number,
  now: number,
  direction: "lower" | "higher",
  band: number,
): { change: number; verdict: "WORSE" | "better" | "~" } {
  const change = accepted === 0
    ? (now === 0 ? 0 : Math.sign(now) * Infinity)
    : (now - accepted) / Math.abs(accepted);
  let worse: number;
  if (accepted > 0 && now > 0) {
    // How many times worse (> 1) or better (< 1).
    const factor = direction === "lower" ? now / accepted : accepted / now;
    worse = factor >= 1 ? factor - 1 : -(1 / factor - 1);
  } else {
    worse = direction === "lower" ? change : -change;
  }
  return { change, verdict: worse > band ? "WORSE" : -worse > band ? "better" : "~" };
}

function compareFigure(
  key: string,
  a: Figure | undefined,
  n: Figure | undefined,
  otherHost: string | null,
): Row[] {
  if (!a || !n) {
    const f = (a ?? n)!;
    const verdict = a ? "removed" : "new";
    const rows: Row[] = [{
      key,
      kind: "value",
      unit: f.unit,
      accepted: a?.value ?? null,
      now: n?.value ?? null,
      change: null,
      band: null,
      verdict,
    }];
    if (f.ratio) {
      rows.push({
        key,
        kind: "ratio",
        unit: null,
        accepted: a?.ratio?.value ?? null,
        now: n?.ratio?.value ?? null,
        change: null,
        band: null,
        verdict,
      });
    }
    return rows;
  }
  const rows: Row[] = [];
  const band = Math.max(a.noise, n.noise);
  const value: Row = {
    key,
    kind: "value",
    unit: n.unit,
    accepted: a.value,
    now: n.value,
    change: null,
    band,
    verdict: "not flagged",
  };
  if (a.unit !== n.unit) {
    value.note = `unit ${a.unit} → ${n.unit}`;
  } else {
    const j = judge(a.value, n.value, n.direction, band);
    value.change = j.change;
    if (otherHost !== null && hostBound(n.unit)) value.note = otherHost;
    else value.verdict = j.verdict;
  }
  rows.push(value);
  if (a.ratio || n.ratio) {
    if (a.ratio && n.ratio) {
      const ratioBand = Math.max(a.ratio.noise, n.ratio.noise);
      const j = judge(a.ratio.value, n.ratio.value, n.direction, ratioBand);
      const row: Row = {
        key,
        kind: "ratio",
        unit: null,
        accepted: a.ratio.value,
        now: n.ratio.value,
        band: ratioBand,
        ...j,
      };
      // Two tails over each other: a few slow requests on either side decide it.
      if (n.statistic === "p99") Object.assign(row, { verdict: "not flagged", note: "p99s" });
      rows.push(row);
    } else {
      rows.push({
        key,
        kind: "ratio",
        unit: null,
        accepted: a.ratio?.value ?? null,
        now: n.ratio?.value ?? null,
        change: null,
        band: null,
        verdict: a.ratio ? "removed" : "new",
      });
    }
  }
  return rows;
}

/** Compares every benchmark of `current` with its accepted results. */
export function compare(accepted: Results, current: Results): Comparison {
  const counts: Record<Verdict, number> = {
    WORSE: 0,
    better: 0,
    "~": 0,
    "not flagged": 0,
    new: 0,
    removed: 0,
  };
  const benchmarks: BenchComparison[] = [];
  for (const name of benchNames(current.benchmarks)) {
    const now = current.benchmarks[name]!;
    const acc = accepted.benchmarks[name] ?? null;
    const hostDiff = acc ? hostDifferences(acc.host, now.host) : [];
    const otherHost = hostDiff.length ? "other host" : null;
    const paramDiff = acc
      ? [...new Set([...Object.keys(acc.params), ...Object.keys(now.params)])]
        .filter((k) => acc.params[k] !== now.params[k])
        .map((k) => `${k} ${acc.params[k] ?? "(none)"} → ${now.params[k] ?? "(none)"}`)
      : [];
    const keys = [...Object.keys(now.figures)];
    for (const k of Object.keys(acc?.figures ?? {})) if (!keys.includes(k)) keys.push(k);
    const rows = keys.flatMap((k) => compareFigure(k, acc?.figures[k], now.figures[k], otherHost));
    for (const r of rows) counts[r.verdict]++;
    benchmarks.push({ name, accepted: acc, hostDiff, paramDiff, rows });
  }
  const notRun = benchNames(accepted.benchmarks).filter((n) => !(n in current.benchmarks));
  return { benchmarks, notRun, counts };
}

/** Whether `--fail-on-regression` fails: anything flagged `WORSE`. */
export function hasRegression(c: Comparison): boolean {
  return c.counts.WORSE > 0;
}

function num(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  if (abs >= 10 ** digits) return Math.round(v).toLocaleString("en");
  return Number(v.toPrecision(digits)).toString();
}

/** A value in its unit, for the table. */
export function formatValue(v: number | null, unit: Unit | null): string {
  if (v === null) return "-";
  switch (unit) {
    case null:
      return num(v);
    case "ms":
      return v >= 1000 ? `${num(v / 1000, 3)} s` : `${num(v, 3)} ms`;
    case "us":
      return `${num(v, 3)} µs`;
    case "bytes":
      return `${Math.round(v).toLocaleString("en")} B`;
    case "KiB":
      return `${Math.round(v).toLocaleString("en")} KiB`;
    case "/s":
      return `${num(v, 3)}/s`;
    case "MiB/s":
      return `${num(v, 3)} MiB/s`;
  }
}

function pct(v: number | null, sign = true): string {
  if (v === null) return "-";
  if (!Number.isFinite(v)) return v > 0 ? "+∞" : "-∞";
  const s = `${(v * 100).toFixed(1)}%`;
  return sign && v >= 0 ? `+${s}` : s;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)]
    .join("\n");
}

/** The comparison as text: a table per benchmark and a summary. */
export function formatComparison(c: Comparison, source: string): string {
  const out: string[] = [`\nCompared with ${source}`];
  for (const b of c.benchmarks) {
    const acc = b.accepted;
    let head = `\n${b.name}: `;
    if (!acc) head += "nothing accepted yet";
    else {
      const commit = acc.run.commit ? ` at ${acc.run.commit.slice(0, 10)}` : "";
      head += `accepted ${acc.run.date}${commit}${acc.run.dirty ? " (dirty tree)" : ""}, ` +
        `--runs ${acc.run.runs}${acc.run.pooled > 1 ? `, ${acc.run.pooled} runs pooled` : ""}, ` +
        (b.hostDiff.length ? `other host (${b.hostDiff.join(", ")})` : "same host");
    }
    out.push(head);
    if (b.hostDiff.length) {
      out.push(
        "  Times and rates are shown but not flagged: measured on another machine they say more " +
          "about it than about volant. Ratios to the same-run baselines, sizes and memory are.",
      );
    }
    if (b.paramDiff.length) out.push(`  Parameters differ: ${b.paramDiff.join(", ")}.`);
    out.push(
      table(
        ["figure", "", "accepted", "now", "change", "noise", "verdict"],
        b.rows.map((r) => [
          r.key,
          r.kind === "ratio" ? "ratio" : "",
          formatValue(r.accepted, r.unit),
          formatValue(r.now, r.unit),
          pct(r.change),
          r.band === null ? "-" : `±${pct(r.band, false)}`,
          r.note ? `${r.verdict} (${r.note})` : r.verdict,
        ]),
      ),
    );
  }
  if (c.notRun.length) out.push(`\nNot run this time: ${c.notRun.join(", ")}.`);
  const n = c.counts;
  out.push(
    `\n${n.WORSE} WORSE, ${n.better} better, ${n["~"]} within noise, ${n["not flagged"]} not ` +
      `flagged, ${n.new} new, ${n.removed} removed. WORSE / better: changed by a factor beyond ` +
      "1 + the larger noise band of the two (±); ratio: the figure over its baseline measured " +
      "in the same run, the primary signal for timings.",
  );
  return out.join("\n");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { "fail-on-regression": { type: "boolean", default: false } },
  });
  if (positionals.length !== 2) {
    console.error(
      "usage: deno run -A bench/compare.ts [--fail-on-regression] <accepted.json> <run.json>",
    );
    Deno.exit(2);
  }
  try {
    const [accepted, current] = await Promise.all(positionals.map((p) => readResults(p)));
    const c = compare(accepted!, current!);
    console.log(formatComparison(c, positionals[0]!));
    if (values["fail-on-regression"] && hasRegression(c)) Deno.exit(1);
  } catch (e) {
    console.error(`bench compare: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
