/**
 * Where volar writes and what it knows of its terminal: an {@linkcode Io} object passed to
 * every command, so tests capture output instead of reading the real stdout and stderr.
 *
 * @module
 */

/** Output streams, terminal facts, environment and clock of one volar run. */
export interface Io {
  /** Writes text to standard output as is (no newline added). */
  out(text: string): void;
  /** Writes text to standard error as is (no newline added). */
  err(text: string): void;
  /** Whether standard output is a terminal (colours, tables for humans). */
  readonly outIsTerminal: boolean;
  /** Whether standard error is a terminal (spinner instead of plain progress lines). */
  readonly errIsTerminal: boolean;
  /** Reads an environment variable; `undefined` when unset. */
  env(key: string): string | undefined;
  /** Milliseconds since the epoch (ages, elapsed times). */
  now(): number;
  /** Standard input, for the commands that read it; absent: the process's own. */
  readonly stdin?: { readable: ReadableStream<Uint8Array>; isTerminal: boolean };
}

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
}

/**
 * The process's own streams, environment and clock.
 *
 * @example
 * ```ts
 * import { denoIo } from "./io.ts";
 * const io = denoIo();
 * console.assert(typeof io.now() === "number");
 * ```
 */
export function denoIo(): Io {
  return {
    out: (text) => writeAll(Deno.stdout, text),
    err: (text) => writeAll(Deno.stderr, text),
    outIsTerminal: Deno.stdout.isTerminal(),
    errIsTerminal: Deno.stderr.isTerminal(),
    env: (key) => Deno.env.get(key),
    now: () => Date.now(),
  };
}

/**
 * Whether stdout may carry ANSI colours: it is a terminal and `NO_COLOR` is unset or empty
 * (https://no-color.org).
 *
 * @example
 * ```ts
 * import { colorEnabled, type Io } from "./io.ts";
 * const io = { outIsTerminal: true, env: (k: string) => (k === "NO_COLOR" ? "1" : undefined) };
 * console.assert(colorEnabled(io as Io) === false);
 * ```
 */
export function colorEnabled(io: Io): boolean {
  const noColor = io.env("NO_COLOR");
  return io.outIsTerminal && (noColor === undefined || noColor === "");
}
