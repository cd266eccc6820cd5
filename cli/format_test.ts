import { deepEqual, equal } from "node:assert/strict";
import {
  ageSince,
  formatAge,
  formatBoot,
  formatDuration,
  formatKeyValues,
  formatPorts,
  formatSeconds,
  formatTable,
  paint,
  parseDuration,
  stripAnsi,
  visibleWidth,
} from "./format.ts";

Deno.test("formatTable() aligns columns to the widest cell and leaves no trailing spaces", () => {
  const text = formatTable(["NAME", "STATE", "PID"], [
    ["web", "running", "4242"],
    ["a-much-longer-name", "stopped", "-"],
  ]);
  deepEqual(text.split("\n"), [
    "NAME                STATE    PID",
    "web                 running  4242",
    "a-much-longer-name  stopped  -",
    "",
  ]);
});

Deno.test("formatTable() measures coloured cells by their visible width", () => {
  const green = paint("green", "running", true);
  const text = formatTable(["STATE", "AGE"], [[green, "5s"], ["stopped", "3m"]]);
  const [header, first, second] = text.split("\n");
  equal(visibleWidth(first!), visibleWidth(second!));
  equal(stripAnsi(first!).indexOf("5s"), header!.indexOf("AGE"));
});

Deno.test("formatTable() with no rows prints the header only", () => {
  equal(formatTable(["A", "BB"], []), "A  BB\n");
});

Deno.test("formatKeyValues() aligns values after the longest key", () => {
  equal(
    formatKeyValues([["name", "web"], ["last error", "boom"], ["pid", "-"]]),
    "name:        web\nlast error:  boom\npid:         -\n",
  );
});

Deno.test("formatAge() uses the largest whole unit", () => {
  const cases: [number, string][] = [
    [0, "0s"],
    [999, "0s"],
    [5_000, "5s"],
    [59_999, "59s"],
    [60_000, "1m"],
    [3 * 60_000 + 59_000, "3m"],
    [3_600_000, "1h"],
    [2 * 3_600_000 + 59 * 60_000, "2h"],
    [24 * 3_600_000, "1d"],
    [4 * 24 * 3_600_000 + 5, "4d"],
    [-5_000, "0s"],
  ];
  for (const [ms, want] of cases) equal(formatAge(ms), want, `${ms} ms`);
});

Deno.test("ageSince() reads RFC 3339 times and survives garbage", () => {
  const now = Date.parse("2026-01-02T03:04:05Z");
  equal(ageSince("2026-01-02T03:04:00Z", now), "5s");
  equal(ageSince("2026-01-01T03:04:05.000Z", now), "1d");
  equal(ageSince("yesterday-ish", now), "-");
});

Deno.test("formatBoot(), formatSeconds() and formatDuration() render durations", () => {
  equal(formatBoot(null), "-");
  equal(formatBoot(65), "65ms");
  equal(formatBoot(3_412), "3.4s");
  equal(formatBoot(12_049), "12.0s");
  equal(formatSeconds(3_412), "3.41 s");
  equal(formatSeconds(70), "0.07 s");
  equal(formatDuration(400), "400ms");
  equal(formatDuration(1_500), "1500ms");
  equal(formatDuration(90_000), "90s");
  equal(formatDuration(120_000), "2m");
  equal(formatDuration(150_000), "150s");
  equal(formatDuration(7_200_000), "2h");
});

Deno.test("parseDuration() accepts ms, s, m, h and bare seconds; rejects the rest", () => {
  const good: [string, number][] = [
    ["500ms", 500],
    ["90s", 90_000],
    ["1.5m", 90_000],
    ["2h", 7_200_000],
    ["45", 45_000],
    [" 10s ", 10_000],
  ];
  for (const [text, ms] of good) equal(parseDuration(text), ms, text);
  for (const bad of ["", "soon", "-1s", "0", "0s", "10 s", "1d", "1e3", "ms"]) {
    equal(parseDuration(bad), undefined, JSON.stringify(bad));
  }
});

Deno.test("paint() wraps only when enabled", () => {
  equal(paint("bold", "NAME", false), "NAME");
  equal(paint("red", "crashed", true), "\x1b[31mcrashed\x1b[39m");
  equal(visibleWidth(paint("dim", "stopped", true)), 7);
});

Deno.test("formatPorts() prints ports the way --publish takes them", () => {
  equal(formatPorts([]), "-");
  equal(
    formatPorts([
      { host_port: 8080, guest_port: 80, protocol: "tcp" },
      { host_port: 5353, guest_port: 53, protocol: "udp" },
    ]),
    "8080:80/tcp, 5353:53/udp",
  );
});
