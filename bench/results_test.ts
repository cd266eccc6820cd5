import { deepEqual, equal, match, ok, rejects, throws } from "node:assert/strict";
import { join } from "node:path";
import { acceptRuns } from "./accept.ts";
import { type RawResults, toBenchmarks } from "./figures.ts";
import { ACCEPTED_PATH, compareArgs, prepareRecord } from "./record.ts";
import {
  accept,
  bootstrapNoise,
  figure,
  formatResults,
  hostDifferences,
  NOISE_FLOOR,
  noiseFloor,
  parseResults,
  pool,
  poolFigure,
  RATIO_NOISE_FLOOR,
  readResults,
  relativeSpread,
  Results,
  SCHEMA,
  SINGLE_NOISE_FLOOR,
  TAIL_NOISE_FLOOR,
} from "./results.ts";
import { apiResult, around, bench, doc, eventsResult, HOST, RUN } from "./testing.ts";

Deno.test("a figure: median of rounded samples, the ratio, noise bands with their floors", () => {
  const f = figure({
    label: "x",
    unit: "ms",
    direction: "lower",
    samples: [1.23456, 2, 3, 4, 100],
    baseline: { label: "b", samples: [1, 1, 1, 1, 1] },
  });
  deepEqual(f.samples, [1.235, 2, 3, 4, 100]);
  equal(f.statistic, "median");
  equal(f.value, 3);
  deepEqual(f.baseline, { label: "b", value: 1, samples: [1, 1, 1, 1, 1] });
  equal(f.ratio?.value, 3);
  ok(f.noise >= NOISE_FLOOR.time);
  ok(f.ratio!.noise >= RATIO_NOISE_FLOOR);
  // The samples' own spread: max(|p90 − median|, |median − p10|) / median.
  equal(f.spread, (100 - 3) / 3);
  equal(relativeSpread([1, 2, 3, 4, 100], 3), f.spread);
});

Deno.test("a single measurement: the unit kind's floor, no spread", () => {
  const f = figure({ label: "x", unit: "bytes", direction: "lower", samples: 1234567 });
  equal(f.statistic, "single");
  equal(f.value, 1235000);
  equal(f.noise, NOISE_FLOOR.size);
  equal(f.spread, null);
  equal(f.ratio, null);
  const rate = figure({
    label: "x",
    unit: "/s",
    direction: "higher",
    samples: 100,
    baseline: { label: "b", samples: 50 },
  });
  equal(rate.noise, SINGLE_NOISE_FLOOR);
  equal(rate.ratio?.noise, SINGLE_NOISE_FLOOR);
});

Deno.test("floors: per unit kind; wider for p99s and single timings; ratios of timings", () => {
  equal(noiseFloor("ms", "median"), NOISE_FLOOR.time);
  equal(noiseFloor("ms", "median", true), RATIO_NOISE_FLOOR);
  equal(noiseFloor("ms", "p99"), TAIL_NOISE_FLOOR);
  equal(noiseFloor("ms", "p99", true), TAIL_NOISE_FLOOR);
  equal(noiseFloor("/s", "single"), SINGLE_NOISE_FLOOR);
  equal(noiseFloor("bytes", "single"), NOISE_FLOOR.size);
  equal(noiseFloor("KiB", "median", true), NOISE_FLOOR.memory);
});

Deno.test("the noise band is the statistic's, not the samples': more samples, narrower", () => {
  const few = bootstrapNoise("median", around(10, 5, 0.3));
  const many = bootstrapNoise("median", around(10, 500, 0.3));
  ok(few > many, `${few} > ${many}`);
  ok(many < relativeSpread(around(10, 500, 0.3), 10) / 3);
  equal(
    bootstrapNoise("median", around(10, 50, 0.3)),
    bootstrapNoise("median", around(10, 50, 0.3)),
  );
  equal(bootstrapNoise("median", [1, 2]), 0);
});

Deno.test("paired samples: drift both sides saw cancels in the ratio's band", () => {
  // A machine slowing down over the run: both sides drift together.
  const drift = Array.from({ length: 40 }, (_, i) => 1 + i / 20);
  const v = drift.map((d) => 2 * d);
  const b = drift.map((d) => d);
  ok(bootstrapNoise("median", v, b) < 1e-9);
  ok(bootstrapNoise("median", v, b.slice(1)) > 0.05); // unpaired: the drift shows
});

Deno.test("p50 and p99 figures take nearest-rank percentiles, as the tables print them", () => {
  const samples = Array.from({ length: 100 }, (_, i) => i + 1);
  const spec = { label: "x", unit: "ms", direction: "lower", samples } as const;
  equal(figure({ ...spec, statistic: "p50" }).value, 51);
  equal(figure({ ...spec, statistic: "p99" }).value, 100);
  equal(figure(spec).value, 50.5);
});

Deno.test("fake-driver results become figures under their stable keys", async () => {
  const b = await toBenchmarks({ events: eventsResult(), api: apiResult() }, RUN);
  deepEqual(Object.keys(b), ["events", "api"]);
  deepEqual(Object.keys(b.events!.figures), [
    "events.sse_durable_ms",
    "events.sse_durable_p99_ms",
    "events.record_us",
    "events.replay_per_s",
  ]);
  deepEqual(Object.keys(b.api!.figures), [
    "api.list_p50_ms",
    "api.list_p99_ms",
    "api.create_p50_ms",
    "api.create_p99_ms",
    "api.list_bytes",
  ]);
  const list = b.api!.figures["api.list_p50_ms"]!;
  equal(list.statistic, "p50");
  equal(list.samples.length, 200);
  equal(list.baseline?.samples.length, 200);
  ok(Math.abs(list.ratio!.value - 5.5 / 0.3) < 0.5);
  equal(b.events!.figures["events.replay_per_s"]!.direction, "higher");
  equal(b.events!.host.accel, "none");
  deepEqual(b.events!.run, RUN);
});

Deno.test("schema round trip: written, read back, equal; the key order is stable", async () => {
  const d = doc(await toBenchmarks({ events: eventsResult(), api: apiResult() }, RUN));
  const text = formatResults(d);
  deepEqual(parseResults(text, "x"), d);
  equal(formatResults(parseResults(text, "x")), text);
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "nested", "results.json");
    const { writeResults } = await import("./results.ts");
    await writeResults(path, d);
    deepEqual(await readResults(path), d);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("malformed documents are refused with the path named", () => {
  const good = doc({ events: bench("events", { a_ms: around1() }) });
  const bad = (f: (d: Record<string, unknown>) => void) => {
    const d = structuredClone(good) as unknown as Record<string, unknown>;
    f(d);
    return JSON.stringify(d);
  };
  // deno-lint-ignore no-explicit-any
  type Any = any;
  throws(() => parseResults("{", "f.json"), /f\.json: not JSON/);
  throws(() => parseResults(bad((d) => (d.schema = "volant-bench/0")), "f.json"), /f\.json/);
  throws(
    () => parseResults(bad((d: Any) => (d.benchmarks.api = d.benchmarks.events)), "f"),
    /keyed api\.<figure>/,
  );
  throws(
    () =>
      parseResults(bad((d: Any) => (d.benchmarks.events.figures["events.a_ms"].unit = "h")), "f"),
    /unit/,
  );
  throws(
    () =>
      parseResults(bad((d: Any) => (d.benchmarks.events.figures["events.a_ms"].extra = 1)), "f"),
    /extra/,
  );
  throws(() => parseResults(bad((d: Any) => delete d.benchmarks.events.host), "f"), /host/);
  parseResults(JSON.stringify(good), "f");
});

function around1() {
  return { label: "a", unit: "ms", direction: "lower", samples: around(1, 9) } as const;
}

Deno.test("--accept: the benchmarks that ran replace theirs, the others are kept", () => {
  const old = doc({
    boot: bench("boot", { post_to_ready_ms: around1() }, { accel: "kvm" }),
    events: bench("events", { old_ms: around1() }),
  });
  const now = doc({
    api: bench("api", { list_p50_ms: around1() }),
    events: bench("events", { sse_durable_ms: around1() }),
  });
  const merged = accept(old, now, new Date("2026-02-01T00:00:00Z"));
  deepEqual(Object.keys(merged.benchmarks), ["boot", "events", "api"]);
  deepEqual(merged.benchmarks.boot, old.benchmarks.boot);
  deepEqual(merged.benchmarks.events, now.benchmarks.events);
  deepEqual(merged.benchmarks.api, now.benchmarks.api);
  equal(merged.updated, "2026-02-01T00:00:00.000Z");
  deepEqual(Object.keys(accept(null, now).benchmarks), ["events", "api"]);
  Results.parse(merged);
});

Deno.test("pooling runs: samples pooled, the band at least the spread between the runs", () => {
  const run = (center: number, base: number) =>
    figure({
      label: "t",
      unit: "ms",
      direction: "lower",
      samples: around(center, 50, 0.01),
      baseline: { label: "b", samples: around(base, 50, 0.01) },
    });
  // The second run caught the machine busy: twice as slow on both sides.
  const runs = [run(10, 5), run(20, 10), run(10.4, 5)];
  const pooled = poolFigure(runs);
  equal(pooled.samples.length, 150);
  equal(pooled.baseline?.samples.length, 150);
  ok(Math.abs(pooled.value - 10.2) < 0.3, `${pooled.value}`); // the busy run barely moves it
  ok(pooled.noise >= runs[1]!.value / pooled.value - 1 - 1e-9, "the band covers the busy run");
  ok(pooled.ratio!.noise < 0.1, "the ratios agreed, so their band stays narrow");
  equal(poolFigure([runs[0]!]), runs[0]);
  throws(() => poolFigure([runs[0]!, { ...runs[1]!, unit: "us" }]), /differ/);
});

Deno.test("pooling documents: each benchmark from the runs that have it, hosts must agree", () => {
  const one = (name: string, date: string, center: number, host = {}) => {
    const b = bench(name, { t_ms: { ...around1(), samples: around(center, 9) } }, host);
    b.run = { ...b.run, date };
    return b;
  };
  const a = doc({ events: one("events", "2026-01-01T00:00:00.000Z", 1) });
  const b = doc({
    events: one("events", "2026-01-02T00:00:00.000Z", 1.1),
    api: one("api", "2026-01-02T00:00:00.000Z", 5),
  });
  const p = pool([b, a]);
  deepEqual(Object.keys(p.benchmarks), ["events", "api"]);
  equal(p.benchmarks.events!.run.pooled, 2);
  equal(p.benchmarks.events!.run.date, "2026-01-02T00:00:00.000Z");
  equal(p.benchmarks.events!.figures["events.t_ms"]!.samples.length, 18);
  equal(p.benchmarks.api!.run.pooled, 1);
  Results.parse(p);
  const c = doc({ events: one("events", "2026-01-03T00:00:00.000Z", 1, { kernel: "7.0" }) });
  throws(() => pool([a, c]), /events: runs on different hosts \(kernel 6\.1\.0 → 7\.0\)/);
});

Deno.test("bench/accept.ts: runs pooled into the accepted file, other benchmarks kept", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const into = join(dir, "accepted.json");
    const { writeResults } = await import("./results.ts");
    await writeResults(into, doc({ boot: bench("boot", { x_ms: around1() }, { accel: "kvm" }) }));
    const files = [1, 1.2].map((_, i) => join(dir, `run${i}.json`));
    for (const [i, scale] of [1, 1.2].entries()) {
      await writeResults(files[i]!, doc(await toBenchmarks({ events: eventsResult(scale) }, RUN)));
    }
    await acceptRuns(files, into);
    const accepted = await readResults(into);
    deepEqual(Object.keys(accepted.benchmarks), ["boot", "events"]);
    equal(accepted.benchmarks.events!.run.pooled, 2);
    ok(accepted.benchmarks.events!.figures["events.record_us"]!.noise >= 0.09);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hosts: the same when every field is", () => {
  deepEqual(hostDifferences(HOST, { ...HOST }), []);
  deepEqual(hostDifferences(HOST, { ...HOST, accel: "kvm", cpus: 8 }), [
    "cpus 2 → 8",
    "accel none → kvm",
  ]);
});

Deno.test("a bare --compare means the accepted file", () => {
  deepEqual(compareArgs(["--compare"]), [`--compare=${ACCEPTED_PATH}`]);
  deepEqual(compareArgs(["--compare", "--accept"]), [`--compare=${ACCEPTED_PATH}`, "--accept"]);
  deepEqual(compareArgs(["--compare", "x.json"]), ["--compare", "x.json"]);
  deepEqual(compareArgs(["--compare=x.json"]), ["--compare=x.json"]);
});

Deno.test("a run recorded: written, compared, accepted (merged), failing on a regression", async () => {
  const dir = await Deno.makeTempDir();
  const printed: string[] = [];
  const print = (t: string) => void printed.push(t);
  const acceptedPath = join(dir, "accepted.json");
  const out = join(dir, "results", "latest.json");
  try {
    // Nothing accepted yet: --accept creates it.
    const first = await prepareRecord({ runs: 5, out, accept: true, acceptedPath, print });
    equal(await first({ events: eventsResult() }), 0);
    deepEqual(Object.keys((await readResults(acceptedPath)).benchmarks), ["events"]);
    deepEqual((await readResults(out)).benchmarks, (await readResults(acceptedPath)).benchmarks);

    // Events twice as slow, API new: compared, flagged, merged.
    const raw: RawResults = { events: eventsResult(2), api: apiResult() };
    const second = await prepareRecord({
      runs: 5,
      out,
      compare: acceptedPath,
      failOnRegression: true,
      accept: true,
      acceptedPath,
      print,
    });
    equal(await second(raw), 1);
    match(
      printed.join("\n"),
      /events\.sse_durable_ms +\| +\| 2\.6 ms +\| 5\.2 ms +\| \+100\.0%.*WORSE/,
    );
    match(printed.join("\n"), /api: nothing accepted yet/);
    const merged = await readResults(acceptedPath);
    deepEqual(Object.keys(merged.benchmarks), ["events", "api"]);
    equal(merged.benchmarks.events!.figures["events.sse_durable_ms"]!.value, 5.2);

    // Without --fail-on-regression the same comparison exits 0.
    const third = await prepareRecord({ runs: 5, out, compare: acceptedPath, print });
    equal(await third({ events: eventsResult() }), 0);

    await rejects(
      prepareRecord({ runs: 5, compare: join(dir, "missing.json") }),
      Deno.errors.NotFound,
    );
    await Deno.writeTextFile(join(dir, "bad.json"), "{}");
    await rejects(prepareRecord({ runs: 5, compare: join(dir, "bad.json") }), new RegExp(SCHEMA));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench/accepted.json is a valid results document", async () => {
  const accepted = await readResults(ACCEPTED_PATH);
  ok(Object.keys(accepted.benchmarks).length > 0);
  for (const [name, b] of Object.entries(accepted.benchmarks)) {
    for (const [key, f] of Object.entries(b.figures)) {
      ok(key.startsWith(`${name}.`));
      ok(f.samples.length > 0, key);
    }
  }
  // As --accept writes it, so a hand edit that reorders or reformats shows up here.
  equal(formatResults(accepted), await Deno.readTextFile(ACCEPTED_PATH));
});
