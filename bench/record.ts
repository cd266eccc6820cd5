/**
 * What `bench/main.ts` does with a run's results besides printing them (issue 17): write the
 * results document (`--out`, default `bench/results/latest.json`, not in git), compare it with
 * the accepted one (`--compare [file]`, default `bench/accepted.json`; `--fail-on-regression`)
 * and accept it (`--accept`: its benchmarks replace theirs in `bench/accepted.json`).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { compare, formatComparison, hasRegression } from "./compare.ts";
import { type RawResults, toBenchmarks } from "./figures.ts";
import {
  accept,
  collectRun,
  readResults,
  type Results,
  resultsDocument,
  writeResults,
} from "./results.ts";

/** `bench/accepted.json`. */
export const ACCEPTED_PATH: string = fileURLToPath(new URL("./accepted.json", import.meta.url));
/** Where a run's results go without `--out`. */
export const DEFAULT_OUT: string = fileURLToPath(
  new URL("./results/latest.json", import.meta.url),
);

/** `--compare` takes an optional file: a bare `--compare` becomes `--compare=<accepted>`. */
export function compareArgs(args: string[]): string[] {
  return args.map((a, i) =>
    a === "--compare" && (i + 1 === args.length || args[i + 1]!.startsWith("-"))
      ? `--compare=${ACCEPTED_PATH}`
      : a
  );
}

/** The flags `bench/main.ts` passes on. */
export interface RecordOptions {
  /** `--runs`. */
  runs: number;
  /** `--out`. */
  out?: string;
  /** `--accept`. */
  accept?: boolean;
  /** `--compare [file]` (a bare `--compare` already made the accepted path). */
  compare?: string;
  /** `--fail-on-regression` (implies `--compare`). */
  failOnRegression?: boolean;
  /** The accepted results `--accept` merges into (default {@linkcode ACCEPTED_PATH}). */
  acceptedPath?: string;
  /** Where the comparison is printed (stderr when stdout carries `--json`). */
  print?: (text: string) => void;
}

/**
 * Reads what the run will be compared with and merged into before any benchmark runs (a missing
 * or malformed file fails now, not after the run), and returns the step that records the run's
 * results: it resolves to the exit code (1: `--fail-on-regression` and something got worse).
 */
export async function prepareRecord(
  opts: RecordOptions,
): Promise<(raw: RawResults) => Promise<number>> {
  const run = await collectRun(opts.runs);
  const acceptedPath = opts.acceptedPath ?? ACCEPTED_PATH;
  const comparePath = opts.compare ?? (opts.failOnRegression ? acceptedPath : undefined);
  const against = comparePath === undefined ? null : await readResults(comparePath);
  let accepted: Results | null = null;
  if (opts.accept) {
    try {
      accepted = await readResults(acceptedPath);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const print = opts.print ?? console.log;
  return async (raw) => {
    const current = resultsDocument(await toBenchmarks(raw, run));
    const out = opts.out ?? DEFAULT_OUT;
    await writeResults(out, current);
    console.error(`bench: results written to ${out}`);
    let code = 0;
    if (against !== null) {
      const c = compare(against, current);
      print(formatComparison(c, comparePath!));
      if (opts.failOnRegression && hasRegression(c)) code = 1;
    }
    if (opts.accept) {
      await writeResults(acceptedPath, accept(accepted, current));
      console.error(
        `bench: accepted ${Object.keys(current.benchmarks).join(", ")} into ${acceptedPath}`,
      );
    }
    return code;
  };
}
