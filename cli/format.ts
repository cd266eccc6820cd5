/**
 * Human output: aligned tables, key/value views, relative ages, boot and elapsed
 * durations, published ports, `--timeout` parsing and the few ANSI styles volar uses.
 *
 * @module
 */

/** ANSI styles volar uses. */
export type Style = "bold" | "dim" | "red" | "green" | "yellow";

const STYLE_CODES: Record<Style, [number, number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
};

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Wraps `text` in an ANSI style when `enabled` (see `colorEnabled` in `io.ts`).
 *
 * @example
 * ```ts
 * import { paint } from "./format.ts";
 * console.assert(paint("red", "x", false) === "x");
 * console.assert(paint("red", "x", true) === "\x1b[31mx\x1b[39m");
 * ```
 */
export function paint(style: Style, text: string, enabled: boolean): string {
  if (!enabled) return text;
  const [open, close] = STYLE_CODES[style];
  return `\x1b[${open}m${text}\x1b[${close}m`;
}

/**
 * `text` without its ANSI styles.
 *
 * @example
 * ```ts
 * import { paint, stripAnsi } from "./format.ts";
 * console.assert(stripAnsi(paint("green", "running", true)) === "running");
 * ```
 */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/**
 * The width of `text` on a terminal, ignoring ANSI styles.
 *
 * @example
 * ```ts
 * import { visibleWidth } from "./format.ts";
 * console.assert(visibleWidth("\x1b[32mrunning\x1b[39m") === 7);
 * ```
 */
export function visibleWidth(text: string): number {
  return [...stripAnsi(text)].length;
}

/**
 * Lays out rows under headers in left-aligned columns separated by two spaces. Lines have
 * no trailing spaces and end with a newline.
 *
 * @example
 * ```ts
 * import { formatTable } from "./format.ts";
 * const text = formatTable(["NAME", "STATE"], [["web", "running"]]);
 * console.assert(text === "NAME  STATE\nweb   running\n");
 * ```
 */
export function formatTable(headers: readonly string[], rows: readonly string[][]): string {
  const widths = headers.map((h, i) =>
    Math.max(visibleWidth(h), ...rows.map((r) => visibleWidth(r[i] ?? "")))
  );
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) =>
      i === cells.length - 1 ? cell : cell + " ".repeat(widths[i]! - visibleWidth(cell))
    ).join("  ");
  return [headers, ...rows].map((r) => line(r) + "\n").join("");
}

/**
 * Lays out `key: value` pairs with the values aligned.
 *
 * @example
 * ```ts
 * import { formatKeyValues } from "./format.ts";
 * console.assert(formatKeyValues([["name", "web"], ["state", "running"]]) ===
 *   "name:   web\nstate:  running\n");
 * ```
 */
export function formatKeyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length + 1));
  return pairs.map(([k, v]) => `${(k + ":").padEnd(width)}  ${v}\n`).join("");
}

/**
 * A relative age in its largest whole unit: `5s`, `3m`, `2h`, `4d` (negative ages, from
 * clock skew, count as `0s`).
 *
 * @example
 * ```ts
 * import { formatAge } from "./format.ts";
 * console.assert(formatAge(5_400) === "5s" && formatAge(7_200_000) === "2h");
 * ```
 */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/**
 * The age of an RFC 3339 time at `now` (see {@linkcode formatAge}); `-` when unparseable.
 *
 * @example
 * ```ts
 * import { ageSince } from "./format.ts";
 * console.assert(ageSince("2020-01-01T00:00:00Z", Date.parse("2020-01-01T00:03:10Z")) === "3m");
 * ```
 */
export function ageSince(time: string, now: number): string {
  const at = Date.parse(time);
  return Number.isNaN(at) ? "-" : formatAge(now - at);
}

/**
 * A boot time for the table: `3.4s`, `850ms` under a second, `-` when unknown.
 *
 * @example
 * ```ts
 * import { formatBoot } from "./format.ts";
 * console.assert(formatBoot(3412) === "3.4s" && formatBoot(null) === "-");
 * ```
 */
export function formatBoot(ms: number | null): string {
  if (ms === null) return "-";
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/**
 * Seconds with two decimals, for "ready in 3.41 s" and elapsed times.
 *
 * @example
 * ```ts
 * import { formatSeconds } from "./format.ts";
 * console.assert(formatSeconds(3412) === "3.41 s");
 * ```
 */
export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * A duration the way a user would write it: `500ms`, `90s`, `2m`, `1h30m`.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./format.ts";
 * console.assert(formatDuration(90_000) === "90s" && formatDuration(120_000) === "2m");
 * ```
 */
export function formatDuration(ms: number): string {
  if (ms < 1000 || ms % 1000 !== 0) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 120 || s % 60 !== 0) return `${s}s`;
  const m = s / 60;
  if (m < 120 || m % 60 !== 0) return `${m}m`;
  return `${m / 60}h`;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses `500ms`, `90s`, `1.5m`, `2h` or a bare number of seconds into milliseconds;
 * `undefined` when the text is not a positive duration.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./format.ts";
 * console.assert(parseDuration("90s") === 90_000 && parseDuration("2") === 2_000);
 * console.assert(parseDuration("soon") === undefined);
 * ```
 */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * UNIT_MS[m[2] ?? "s"]!);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/**
 * Published ports the way `--publish` takes them: `8080:80/tcp, 5353:53/udp`; `-` for none.
 *
 * @example
 * ```ts
 * import { formatPorts } from "./format.ts";
 * console.assert(formatPorts([{ host_port: 8080, guest_port: 80, protocol: "tcp" }]) ===
 *   "8080:80/tcp");
 * console.assert(formatPorts([]) === "-");
 * ```
 */
export function formatPorts(
  ports: readonly { host_port: number; guest_port: number; protocol: string }[],
): string {
  if (ports.length === 0) return "-";
  return ports.map((p) => `${p.host_port}:${p.guest_port}/${p.protocol}`).join(", ");
}

/**
 * A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`, `1.2 GiB`.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./format.ts";
 * console.assert(formatBytes(1536) === "1.5 KiB");
 * ```
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`;
}

/**
 * A text progress bar with the byte counts, or just the count when the total is unknown.
 *
 * @example
 * ```ts
 * import { progressBar } from "./format.ts";
 * console.assert(progressBar(512, 1024, 4) === "[##--] 512 B/1.0 KiB");
 * ```
 */
export function progressBar(received: number, total: number | null, width = 24): string {
  if (!total) return formatBytes(received);
  const done = Math.min(width, Math.round((received / total) * width));
  return `[${"#".repeat(done)}${"-".repeat(width - done)}] ${formatBytes(received)}/${
    formatBytes(total)
  }`;
}
