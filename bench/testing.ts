/**
 * Fixtures for the results and comparison tests: benchmark results as the fake-driver
 * benchmarks return them, a fixed run and host.
 *
 * @module
 */
import type { ApiBenchResult } from "./api_bench.ts";
import type { EventsBenchResult } from "./events_bench.ts";
import {
  type Benchmark,
  figure,
  type FigureSpec,
  type Host,
  type Results,
  resultsDocument,
  type Run,
} from "./results.ts";

/** A fixed run. */
export const RUN: Run = {
  date: "2026-01-02T03:04:05.000Z",
  commit: "0123456789abcdef0123456789abcdef01234567",
  dirty: false,
  deno: "2.9.6",
  runs: 5,
  pooled: 1,
};

/** A fixed host. */
export const HOST: Host = {
  hostname: "bench-host",
  os: "linux",
  arch: "x86_64",
  cpus: 2,
  cpuModel: "Test CPU",
  kernel: "6.1.0",
  accel: "none",
};

/** `n` samples around `center`, deterministic, ±`spread` (relative). */
export function around(center: number, n: number, spread = 0.02): number[] {
  return Array.from({ length: n }, (_, i) => center * (1 + spread * Math.sin(i * 2.399)));
}

/** An events benchmark result. */
export function eventsResult(scale = 1): EventsBenchResult {
  return {
    subscribers: 50,
    sseDurableMs: around(2.6 * scale, 100),
    sseMemoryMs: around(2.5, 100),
    durableUs: around(30 * scale, 100),
    memoryUs: around(1.1, 100),
    replayPerSec: 19_000 / scale,
    eventBytes: 820,
  };
}

/** An API benchmark result. */
export function apiResult(scale = 1): ApiBenchResult {
  return {
    vms: 200,
    listBytes: 144_300,
    listMs: around(5.5 * scale, 200, 0.1),
    healthMs: around(0.3, 200, 0.1),
    createMs: around(23 * scale, 100, 0.1),
    getMs: around(0.6, 100, 0.1),
    setupMs: 5000,
  };
}

/** A benchmark with the given figures (keys relative to `name`), on `host`. */
export function bench(
  name: string,
  specs: Record<string, FigureSpec>,
  host: Partial<Host> = {},
): Benchmark {
  return {
    run: RUN,
    host: { ...HOST, ...host },
    params: {},
    figures: Object.fromEntries(
      Object.entries(specs).map(([k, s]) => [`${name}.${k}`, figure(s)]),
    ),
  };
}

/** A document of benchmarks. */
export function doc(benchmarks: Record<string, Benchmark>): Results {
  return resultsDocument(benchmarks, new Date(RUN.date));
}
