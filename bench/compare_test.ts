import { deepEqual, equal, match, ok } from "node:assert/strict";
import { compare, formatComparison, hasRegression, judge, type Row } from "./compare.ts";
import type { FigureSpec } from "./results.ts";
import { around, bench, doc } from "./testing.ts";

const ms = (center: number, base?: number): FigureSpec => ({
  label: "t",
  unit: "ms",
  direction: "lower",
  samples: around(center, 50, 0.01),
  ...(base === undefined ? {} : { baseline: { label: "b", samples: around(base, 50, 0.01) } }),
});

function rows(accepted: Record<string, FigureSpec>, now: Record<string, FigureSpec>, host = {}) {
  const c = compare(doc({ x: bench("x", accepted) }), doc({ x: bench("x", now, host) }));
  return { c, rows: c.benchmarks[0]!.rows };
}

function row(rs: Row[], key: string, kind: Row["kind"] = "value"): Row {
  const r = rs.find((r) => r.key === `x.${key}` && r.kind === kind);
  ok(r, `${key} ${kind}`);
  return r;
}

Deno.test("judge: worse and better by more than the band, in the figure's direction", () => {
  deepEqual(judge(10, 12, "lower", 0.1), { change: 0.2, verdict: "WORSE" });
  deepEqual(judge(10, 8, "lower", 0.1), { change: -0.2, verdict: "better" });
  deepEqual(judge(10, 10.5, "lower", 0.1), { change: 0.05, verdict: "~" });
  deepEqual(judge(10, 8, "higher", 0.1), { change: -0.2, verdict: "WORSE" });
  deepEqual(judge(10, 12, "higher", 0.1), { change: 0.2, verdict: "better" });
  // Symmetric: twice as slow and twice as fast are the same step.
  deepEqual(judge(10, 20, "lower", 0.9), { change: 1, verdict: "WORSE" });
  deepEqual(judge(10, 5, "lower", 0.9), { change: -0.5, verdict: "better" });
  deepEqual(judge(10, 5, "higher", 0.9), { change: -0.5, verdict: "WORSE" });
  deepEqual(judge(10, 5, "lower", 1.1), { change: -0.5, verdict: "~" });
  equal(judge(0, 1, "lower", 0.1).verdict, "WORSE");
  equal(judge(0, 0, "lower", 0.1).verdict, "~");
});

Deno.test("same host: values and ratios flagged; within noise is ~", () => {
  const { c, rows: rs } = rows(
    { slower: ms(10, 5), same: ms(10, 5), faster: ms(10, 5), noisy: ms(10) },
    {
      slower: ms(13, 5), // value and ratio worse
      same: ms(10.2, 5),
      faster: ms(8, 5),
      noisy: { ...ms(11), samples: around(11, 5, 0.5) }, // +10 %, but a wide band now
    },
  );
  equal(row(rs, "slower").verdict, "WORSE");
  equal(row(rs, "slower", "ratio").verdict, "WORSE");
  ok(Math.abs(row(rs, "slower", "ratio").change! - 0.3) < 1e-3);
  equal(row(rs, "same").verdict, "~");
  equal(row(rs, "same", "ratio").verdict, "~");
  equal(row(rs, "faster").verdict, "better");
  equal(row(rs, "faster", "ratio").verdict, "better");
  const noisy = row(rs, "noisy");
  equal(noisy.verdict, "~");
  ok(noisy.band! > 0.1, "the larger of the two bands");
  ok(hasRegression(c));
  equal(c.counts.WORSE, 2);
  equal(c.counts.better, 2);
});

Deno.test("the ratio catches what the absolute misses, and machine speed cancels in it", () => {
  const { rows: rs } = rows(
    { list: ms(10, 5), everything: ms(10, 5) },
    // list: same absolute, baseline got faster (the list's own cost grew); everything: the
    // machine is 30 % slower on both sides.
    { list: ms(10, 4), everything: ms(13, 6.5) },
  );
  equal(row(rs, "list").verdict, "~");
  equal(row(rs, "list", "ratio").verdict, "WORSE");
  equal(row(rs, "everything").verdict, "WORSE");
  equal(row(rs, "everything", "ratio").verdict, "~");
});

Deno.test("ratios of p99s are shown, not flagged; the p99 itself is", () => {
  const p99 = (center: number, base: number): FigureSpec => ({
    ...ms(center, base),
    statistic: "p99",
  });
  const { rows: rs } = rows({ tail: p99(10, 5) }, { tail: p99(30, 5) });
  equal(row(rs, "tail").verdict, "WORSE");
  const ratio = row(rs, "tail", "ratio");
  equal(ratio.verdict, "not flagged");
  equal(ratio.note, "p99s");
  ok(ratio.change! > 1.9);
});

Deno.test("another host: times and rates shown, not flagged; ratios and sizes still are", () => {
  const size: FigureSpec = { label: "s", unit: "bytes", direction: "lower", samples: 1000 };
  const rate: FigureSpec = { label: "r", unit: "/s", direction: "higher", samples: 1000 };
  const { c, rows: rs } = rows(
    { t: ms(10, 5), size, rate },
    { t: ms(20, 5), size: { ...size, samples: 1500 }, rate: { ...rate, samples: 100 } },
    { hostname: "ci-runner", accel: "kvm" },
  );
  const t = row(rs, "t");
  equal(t.verdict, "not flagged");
  equal(t.note, "other host");
  ok(Math.abs(t.change! - 1) < 1e-3, "the change is still shown");
  equal(row(rs, "t", "ratio").verdict, "WORSE");
  equal(row(rs, "rate").verdict, "not flagged");
  equal(row(rs, "size").verdict, "WORSE");
  deepEqual(c.benchmarks[0]!.hostDiff, ["hostname bench-host → ci-runner", "accel none → kvm"]);
  const text = formatComparison(c, "accepted.json");
  match(text, /other host \(hostname bench-host → ci-runner, accel none → kvm\)/);
  match(text, /not flagged \(other host\)/);
  match(text, /Times and rates are shown but not flagged/);
});

Deno.test("figures on one side only: new and removed, ratios too", () => {
  const { c, rows: rs } = rows(
    { kept: ms(10, 5), gone: ms(10, 5), lost_baseline: ms(10, 5) },
    { kept: ms(10, 5), added: ms(10, 5), lost_baseline: ms(10) },
  );
  equal(row(rs, "gone").verdict, "removed");
  equal(row(rs, "gone").now, null);
  equal(row(rs, "gone", "ratio").verdict, "removed");
  equal(row(rs, "added").verdict, "new");
  equal(row(rs, "added").accepted, null);
  equal(row(rs, "added", "ratio").verdict, "new");
  equal(row(rs, "lost_baseline").verdict, "~");
  equal(row(rs, "lost_baseline", "ratio").verdict, "removed");
  ok(!hasRegression(c));
  equal(c.counts.new, 2);
  equal(c.counts.removed, 3);
  // The current run's figures first, in its order, then the removed ones.
  deepEqual(
    rs.filter((r) => r.kind === "value").map((r) => r.key),
    ["x.kept", "x.added", "x.lost_baseline", "x.gone"],
  );
});

Deno.test("benchmarks: one that did not run is skipped, a new one is all new", () => {
  const accepted = doc({
    boot: bench("boot", { post_to_ready_ms: ms(1000, 900) }, { accel: "kvm" }),
    events: bench("events", { sse_durable_ms: ms(2, 2) }),
  });
  const current = doc({
    events: bench("events", { sse_durable_ms: ms(2, 2) }),
    api: bench("api", { list_p50_ms: ms(5, 0.3) }),
  });
  const c = compare(accepted, current);
  deepEqual(c.benchmarks.map((b) => b.name), ["events", "api"]);
  deepEqual(c.notRun, ["boot"]);
  deepEqual(c.benchmarks[1]!.rows.map((r) => r.verdict), ["new", "new"]);
  const text = formatComparison(c, "bench/accepted.json");
  match(text, /Compared with bench\/accepted\.json/);
  match(text, /api: nothing accepted yet/);
  match(text, /Not run this time: boot\./);
  match(text, /0 WORSE, 0 better, 2 within noise, 0 not flagged, 2 new, 0 removed/);
});

Deno.test("a changed unit is shown, not compared; changed parameters are listed", () => {
  const a = bench("x", { t: ms(10) });
  const n = bench("x", { t: { ...ms(10000), unit: "us" } });
  a.params = { vms: 200 };
  n.params = { vms: 300, extra: "y" };
  const c = compare(doc({ x: a }), doc({ x: n }));
  const r = c.benchmarks[0]!.rows[0]!;
  equal(r.verdict, "not flagged");
  equal(r.note, "unit ms → us");
  equal(r.change, null);
  deepEqual(c.benchmarks[0]!.paramDiff, ["vms 200 → 300", "extra (none) → y"]);
  match(formatComparison(c, "a"), /Parameters differ: vms 200 → 300, extra \(none\) → y\./);
});
