/**
 * Benchmark results as one JSON document with a stable schema (issue 17): every figure a
 * benchmark reports under a stable key (`boot.post_to_ready_ms`, `api.list_p50_ms`, …) with its
 * value, unit, direction, raw samples, noise band and, when it has one, the baseline measured in
 * the same run and the ratio to it; each benchmark with the run and host it was measured on.
 *
 * `bench/accepted.json` holds the last accepted results in this shape; `bench/compare.ts`
 * compares a run against it.
 *
 * Noise band: the relative spread of the figure's statistic (the median, a p99, the ratio of two
 * medians) over a seeded bootstrap of its samples — max(|p90 − value|, |value − p10|) / value of
 * the resampled statistic — with a floor ({@linkcode noiseFloor}), since one run cannot see the
 * drift between runs; results pooled from several runs ({@linkcode pool}, `bench/accept.ts`)
 * widen it to the drift they saw. The raw samples' own spread (the same formula over the samples)
 * is kept as `spread` for reference: on a loaded machine it is 40–300 % of the median, far wider
 * than the median itself wanders, so it is not the band.
 *
 * @module
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";

/** The schema version written in every results document. */
export const SCHEMA = "volant-bench/1";

/** Units a figure can be in. */
export const Unit = z.enum(["ms", "us", "bytes", "KiB", "/s", "MiB/s"]);
/** A figure's unit. */
export type Unit = z.infer<typeof Unit>;

/** Which way is better. */
export const Direction = z.enum(["lower", "higher"]);
/** Which way is better. */
export type Direction = z.infer<typeof Direction>;

/** How the value is taken from the samples (`single`: one measurement, no spread). */
export const Statistic = z.enum(["median", "p50", "p99", "single"]);
/** How the value is taken from the samples. */
export type Statistic = z.infer<typeof Statistic>;

/** The kind of quantity a unit measures: it picks the noise floor and whether it is host-bound. */
export type UnitKind = "time" | "rate" | "size" | "memory";

/** The kind of each unit. */
export const UNIT_KIND: Record<Unit, UnitKind> = {
  ms: "time",
  us: "time",
  "/s": "rate",
  "MiB/s": "rate",
  bytes: "size",
  KiB: "memory",
};

/**
 * Smallest noise band per unit kind (relative), for medians. Back-to-back fake-driver runs of
 * the same code on a shared 2-core machine (a CI run booting TCG VMs beside them) moved most
 * medians by up to ±15 % while each run's bootstrap said ±5 %: a run cannot see the drift
 * between runs, the floor stands for part of it. Sizes are near-deterministic; resident memory
 * wanders a little.
 */
export const NOISE_FLOOR: Record<UnitKind, number> = {
  time: 0.1,
  rate: 0.1,
  size: 0.01,
  memory: 0.03,
};

/**
 * Smallest noise band of a median's ratio to its same-run baseline (interleaved, so load both
 * sides saw cancels): the same runs moved most of these by up to ±7 %. Not all: a ratio over a
 * 1 µs baseline moved by 25 % when the machine's load changed; pooling runs that saw such drift
 * widens that figure's band.
 */
export const RATIO_NOISE_FLOOR = 0.08;

/**
 * Smallest noise band of a p99, value or ratio: in the same runs p99s moved by −56 % to +250 %
 * (a handful of slow requests decide them), and the bootstrap of so few tail samples says far
 * less. (`bench/compare.ts` does not flag ratios of p99s at all.)
 */
export const TAIL_NOISE_FLOOR = 0.5;

/**
 * Smallest noise band of a single timing or rate (no samples to take a spread from): the one
 * replay measurement moved by −43 % in the same runs.
 */
export const SINGLE_NOISE_FLOOR = 0.25;

/** The smallest noise band of a figure's value (`ratio`: of its ratio to the baseline). */
export function noiseFloor(unit: Unit, stat: Statistic, ratio = false): number {
  const kind = NOISE_FLOOR[UNIT_KIND[unit]];
  if (stat === "p99") return Math.max(kind, TAIL_NOISE_FLOOR);
  if (stat === "single" && hostBound(unit)) return Math.max(kind, SINGLE_NOISE_FLOOR);
  return ratio && hostBound(unit) ? RATIO_NOISE_FLOOR : kind;
}

/** Whether figures of this kind depend on the machine's speed (not compared across hosts). */
export function hostBound(unit: Unit): boolean {
  const kind = UNIT_KIND[unit];
  return kind === "time" || kind === "rate";
}

/** Where a benchmark ran. Two runs are on the same host when every field is equal. */
export const Host = z.strictObject({
  hostname: z.string(),
  os: z.string(),
  arch: z.string(),
  cpus: z.number().int().positive(),
  cpuModel: z.string().nullable(),
  kernel: z.string(),
  /** The accelerator the benchmark's VMs ran under; `none` when it boots no VM. */
  accel: z.enum(["kvm", "tcg", "none"]),
});
/** Where a benchmark ran. */
export type Host = z.infer<typeof Host>;

/** When and from what a benchmark ran. */
export const Run = z.strictObject({
  /** ISO 8601. */
  date: z.iso.datetime(),
  /** `git rev-parse HEAD`, null outside a git checkout. */
  commit: z.string().nullable(),
  /** Uncommitted changes in the work tree (`git status --porcelain`), null when unknown. */
  dirty: z.boolean().nullable(),
  deno: z.string(),
  /** `--runs`. */
  runs: z.number().int().positive(),
  /** How many runs' samples the benchmark holds (`bench/accept.ts` pools several). */
  pooled: z.number().int().positive(),
});
/** When and from what a benchmark ran. */
export type Run = z.infer<typeof Run>;

const Samples = z.array(z.number().finite());

/** A figure's same-run baseline. */
export const Baseline = z.strictObject({
  label: z.string(),
  value: z.number().finite(),
  samples: Samples,
});
/** A figure's same-run baseline. */
export type Baseline = z.infer<typeof Baseline>;

/** One figure. */
export const Figure = z.strictObject({
  /** What is measured (the table's wording). */
  label: z.string(),
  unit: Unit,
  direction: Direction,
  statistic: Statistic,
  /** The statistic of `samples`. */
  value: z.number().finite(),
  /** Raw samples (4 significant digits), one per run, round or request. */
  samples: Samples,
  /** Relative noise band of `value` (≥ {@linkcode noiseFloor}). */
  noise: z.number().nonnegative(),
  /** Relative spread of the raw samples around the median; null with fewer than 3. */
  spread: z.number().nonnegative().nullable(),
  baseline: Baseline.nullable(),
  /** `value / baseline.value`, better in the same direction as `value`, with its noise band. */
  ratio: z.strictObject({ value: z.number().finite(), noise: z.number().nonnegative() })
    .nullable(),
});
/** One figure. */
export type Figure = z.infer<typeof Figure>;

/** Benchmark parameters worth knowing when comparing (sizes, counts, settings). */
export const Params = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean(), z.null()]),
);

/** One benchmark's results. */
export const Benchmark = z.strictObject({
  run: Run,
  host: Host,
  params: Params,
  /** By stable key, `<benchmark>.<figure>_<unit>`. */
  figures: z.record(z.string().regex(/^[a-z]+\.[a-z0-9_]+$/), Figure),
});
/** One benchmark's results. */
export type Benchmark = z.infer<typeof Benchmark>;

/** A results document: `bench/results/latest.json`, `bench/accepted.json`. */
export const Results = z.strictObject({
  schema: z.literal(SCHEMA),
  /** When this document was written. */
  updated: z.iso.datetime(),
  benchmarks: z.record(z.string().regex(/^[a-z]+$/), Benchmark),
}).superRefine((doc, ctx) => {
  for (const [name, bench] of Object.entries(doc.benchmarks)) {
    for (const key of Object.keys(bench.figures)) {
      if (!key.startsWith(`${name}.`)) {
        ctx.addIssue({
          code: "custom",
          path: ["benchmarks", name, "figures", key],
          message: `a figure of ${name} must be keyed ${name}.<figure>`,
        });
      }
    }
  }
});
/** A results document. */
export type Results = z.infer<typeof Results>;

// --- statistics ---------------------------------------------------------------------------

/** The median (mean of the middle two for an even count), as the tables print it. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The `p`-quantile (nearest rank, p in [0, 1]), as the tables print it. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** `statistic` of `samples`. */
export function statistic(stat: Statistic, samples: number[]): number {
  switch (stat) {
    case "median":
    case "single":
      return median(samples);
    case "p50":
      return percentile(samples, 0.5);
    case "p99":
      return percentile(samples, 0.99);
  }
}

/** Relative spread of `values` around `center`: max(|p90 − c|, |c − p10|) / c. */
export function relativeSpread(values: number[], center: number): number {
  if (center === 0) return 0;
  const hi = percentile(values, 0.9);
  const lo = percentile(values, 0.1);
  return Math.max(Math.abs(hi - center), Math.abs(center - lo)) / Math.abs(center);
}

/** Rounds to 4 significant digits (samples are stored so). */
export function round4(v: number): number {
  return v === 0 || !Number.isFinite(v) ? v : Number(v.toPrecision(4));
}

/** A small seeded PRNG (mulberry32): the bootstrap gives the same band for the same samples. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RESAMPLES = 400;

/**
 * Relative noise band of `stat(samples)` (or, with `baseline`, of the ratio
 * `stat(samples) / stat(baseline)`) from a seeded bootstrap: the statistic recomputed over
 * {@linkcode RESAMPLES} resamples, and the relative spread of those around the value. Samples of
 * the same length are taken as interleaved pairs and resampled together, so drift both sides saw
 * cancels in the ratio. 0 with fewer than 3 samples a side (the floor applies).
 */
export function bootstrapNoise(stat: Statistic, samples: number[], baseline?: number[]): number {
  if (samples.length < 3 || (baseline !== undefined && baseline.length < 3)) return 0;
  const of = (v: number[], b?: number[]) =>
    b === undefined ? statistic(stat, v) : statistic(stat, v) / statistic(stat, b);
  const value = of(samples, baseline);
  const paired = baseline !== undefined && baseline.length === samples.length;
  const random = prng(samples.length * 7919 + (baseline?.length ?? 0));
  const pick = (v: number[], idx: number[]) => idx.map((i) => v[i]!);
  const draw = (n: number) => Array.from({ length: n }, () => Math.floor(random() * n));
  const resampled: number[] = [];
  for (let r = 0; r < RESAMPLES; r++) {
    const idx = draw(samples.length);
    const v = pick(samples, idx);
    if (baseline === undefined) resampled.push(of(v));
    else resampled.push(of(v, pick(baseline, paired ? idx : draw(baseline.length))));
  }
  return relativeSpread(resampled, value);
}

/** What {@linkcode figure} needs. */
export interface FigureSpec {
  label: string;
  unit: Unit;
  direction: Direction;
  /** Default `median` (`single` when `samples` is one number). */
  statistic?: Statistic;
  /** The samples, or one measurement. */
  samples: number[] | number;
  /** The baseline measured in the same run, taken with the same statistic. */
  baseline?: { label: string; samples: number[] | number };
}

/** Builds a figure: rounds the samples, takes the statistic, the ratio and the noise bands. */
export function figure(spec: FigureSpec): Figure {
  const list = (s: number[] | number) => (typeof s === "number" ? [s] : s).map(round4);
  const stat = spec.statistic ?? (typeof spec.samples === "number" ? "single" : "median");
  return build(
    { label: spec.label, unit: spec.unit, direction: spec.direction, statistic: stat },
    list(spec.samples),
    spec.baseline ? { label: spec.baseline.label, samples: list(spec.baseline.samples) } : null,
  );
}

/**
 * A figure from rounded samples; `drift` widens the bands to the spread seen between runs
 * ({@linkcode pool}).
 */
function build(
  meta: Pick<Figure, "label" | "unit" | "direction" | "statistic">,
  samples: number[],
  base: { label: string; samples: number[] } | null,
  drift = { value: 0, ratio: 0 },
): Figure {
  const stat = meta.statistic;
  if (samples.length === 0) throw new Error(`${meta.label}: no samples`);
  const value = statistic(stat, samples);
  let baseline: Baseline | null = null;
  let ratio: Figure["ratio"] = null;
  if (base) {
    if (base.samples.length === 0) throw new Error(`${meta.label}: no baseline samples`);
    const baseValue = statistic(stat, base.samples);
    baseline = { label: base.label, value: baseValue, samples: base.samples };
    if (baseValue !== 0) {
      ratio = {
        value: value / baseValue,
        noise: Math.max(
          noiseFloor(meta.unit, stat, true),
          bootstrapNoise(stat, samples, base.samples),
          drift.ratio,
        ),
      };
    }
  }
  return {
    ...meta,
    value,
    samples,
    noise: Math.max(noiseFloor(meta.unit, stat), bootstrapNoise(stat, samples), drift.value),
    spread: samples.length >= 3 ? relativeSpread(samples, median(samples)) : null,
    baseline,
    ratio,
  };
}

/** The largest relative distance of `values` from `center`. */
function drift(values: number[], center: number): number {
  return center === 0 ? 0 : Math.max(...values.map((v) => Math.abs(v - center) / Math.abs(center)));
}

/**
 * One figure from the same figure of several runs: the samples pooled (a run with the machine
 * busier than usual moves the value less), and the noise band at least as wide as the values
 * (and ratios) of the runs spread around the pooled one, so the band carries the drift between
 * runs that one run cannot see.
 */
export function poolFigure(figures: Figure[]): Figure {
  const last = figures.at(-1);
  if (last === undefined) throw new Error("nothing to pool");
  if (figures.length === 1) return last;
  for (const f of figures) {
    if (f.unit !== last.unit || f.statistic !== last.statistic) {
      throw new Error(`${last.label}: runs differ in unit or statistic`);
    }
  }
  const samples = figures.flatMap((f) => f.samples);
  const bases = figures.every((f) => f.baseline) ? figures.map((f) => f.baseline!) : null;
  const base = bases && { label: last.baseline!.label, samples: bases.flatMap((b) => b.samples) };
  const value = statistic(last.statistic, samples);
  const ratios = figures.flatMap((f) => f.ratio ? [f.ratio.value] : []);
  const ratio = base ? value / statistic(last.statistic, base.samples) : 0;
  return build(
    { label: last.label, unit: last.unit, direction: last.direction, statistic: last.statistic },
    samples,
    base,
    {
      value: drift(figures.map((f) => f.value), value),
      ratio: ratios.length === figures.length ? drift(ratios, ratio) : 0,
    },
  );
}

// --- run metadata -------------------------------------------------------------------------

async function git(...args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", {
      args,
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

/** The run's metadata: date, git commit and dirtiness, Deno version, `--runs`. */
export async function collectRun(runs: number, date = new Date()): Promise<Run> {
  const commit = await git("rev-parse", "HEAD");
  const status = commit === null
    ? null
    : await git("status", "--porcelain", "--untracked-files=no");
  return {
    date: date.toISOString(),
    commit,
    dirty: status === null ? null : status.length > 0,
    deno: Deno.version.deno,
    runs,
    pooled: 1,
  };
}

/** This machine, with the accelerator a benchmark determined (`none` when it boots no VM). */
export async function collectHost(accel: string | undefined): Promise<Host> {
  let cpuModel: string | null = null;
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? null;
  } catch {
    // Not Linux, or no /proc.
  }
  return {
    hostname: Deno.hostname(),
    os: Deno.build.os,
    arch: Deno.build.arch,
    cpus: navigator.hardwareConcurrency,
    cpuModel,
    kernel: Deno.osRelease(),
    accel: accel === "kvm" || accel === "tcg" ? accel : "none",
  };
}

/** The fields in which two hosts differ (empty: the same host). */
export function hostDifferences(a: Host, b: Host): string[] {
  return (Object.keys(a) as (keyof Host)[])
    .filter((k) => a[k] !== b[k])
    .map((k) => `${k} ${a[k]} → ${b[k]}`);
}

// --- documents ------------------------------------------------------------------------------

/** The order benchmarks run and print in; others follow by name. */
export const BENCH_ORDER = [
  "net",
  "boot",
  "appliance",
  "image",
  "probe",
  "policy",
  "jail",
  "events",
  "api",
  "deploy",
];

/** The benchmark names of `doc`, in {@linkcode BENCH_ORDER}. */
export function benchNames(benchmarks: Record<string, unknown>): string[] {
  const rank = (n: string) => {
    const i = BENCH_ORDER.indexOf(n);
    return i < 0 ? BENCH_ORDER.length : i;
  };
  return Object.keys(benchmarks).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** A results document of `benchmarks`, in order. */
export function resultsDocument(
  benchmarks: Record<string, Benchmark>,
  updated = new Date(),
): Results {
  return {
    schema: SCHEMA,
    updated: updated.toISOString(),
    benchmarks: Object.fromEntries(benchNames(benchmarks).map((n) => [n, benchmarks[n]!])),
  };
}

/** Parses a results document, with a readable error naming `source`. */
export function parseResults(text: string, source: string): Results {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: not JSON: ${(e as Error).message}`);
  }
  const parsed = Results.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`${source}: not a ${SCHEMA} document:\n${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** Reads and parses a results document. */
export async function readResults(path: string | URL): Promise<Results> {
  return parseResults(await Deno.readTextFile(path), String(path));
}

/**
 * The document as written to disk: 2-space JSON with every array of numbers (the samples) on
 * one line, so a figure reads at a glance and a diff shows which figures changed (`deno fmt`
 * leaves `bench/accepted.json` alone: it is excluded in deno.json).
 *
 * @example
 * ```ts ignore
 * console.log(formatResults(doc));
 * ```
 */
export function formatResults(doc: Results): string {
  const text = JSON.stringify(Results.parse(doc), null, 2);
  return `${
    text.replace(/\[\n\s*(-?[\d.e+-]+(?:,\n\s*-?[\d.e+-]+)*)\n\s*\]/g, (_, body: string) =>
      `[${body.split(/,\n\s*/).join(", ")}]`)
  }\n`;
}

/** Writes a results document, creating its directory. */
export async function writeResults(path: string | URL, doc: Results): Promise<void> {
  await Deno.mkdir(dirname(path instanceof URL ? fileURLToPath(path) : path), { recursive: true });
  await Deno.writeTextFile(path, formatResults(doc));
}

/**
 * Several runs' results as one ({@linkcode poolFigure} for every figure): each benchmark from
 * the runs that have it, with the latest run's metadata and parameters. Runs of one benchmark on
 * different hosts are refused.
 */
export function pool(docs: Results[], updated = new Date()): Results {
  const names = benchNames(Object.assign({}, ...docs.map((d) => d.benchmarks)));
  const benchmarks: Record<string, Benchmark> = {};
  for (const name of names) {
    const runs = docs.flatMap((d) => d.benchmarks[name] ?? [])
      .sort((a, b) => a.run.date.localeCompare(b.run.date));
    const last = runs.at(-1)!;
    for (const r of runs) {
      const diff = hostDifferences(r.host, last.host);
      if (diff.length) throw new Error(`${name}: runs on different hosts (${diff.join(", ")})`);
    }
    const keys = [...new Set(runs.toReversed().flatMap((r) => Object.keys(r.figures)))];
    benchmarks[name] = {
      ...last,
      run: { ...last.run, pooled: runs.reduce((n, r) => n + r.run.pooled, 0) },
      figures: Object.fromEntries(
        keys.map((k) => [k, poolFigure(runs.flatMap((r) => r.figures[k] ?? []))]),
      ),
    };
  }
  return resultsDocument(benchmarks, updated);
}

/**
 * `--accept`: the accepted document with every benchmark of `current` replaced (those that did
 * not run this time are kept as they were).
 */
export function accept(accepted: Results | null, current: Results, updated = new Date()): Results {
  return resultsDocument({ ...accepted?.benchmarks, ...current.benchmarks }, updated);
}
