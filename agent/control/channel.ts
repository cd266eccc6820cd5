/**
 * The guest side of the control channel: reads one JSON object per line from the control port,
 * checks it against {@linkcode IdentityMessage}, hands it to a handler and writes the handler's
 * {@linkcode IdentityReply} back as one line. Strictly one request, then its reply: it never
 * reads and writes at the same time (one Deno file handle does not allow both at once).
 *
 * Port semantics it is built for: while no host end is connected, `read()` returns end of
 * file, so EOF means "wait a little and read again" (never "stop"); a line over
 * {@linkcode CONTROL_MAX_LINE} bytes is dropped whole and answered with nothing.
 *
 * @module
 */
import type * as z from "zod/mini";
import {
  CONTROL_MAX_LINE,
  IdentityMessage,
  type IdentityReply,
} from "../../schema/guest_control.ts";
import { LineSplitter } from "./lines.ts";

/** The byte stream the channel runs over (the raw serial port, `tty.ts`, or a test double). */
export interface ControlStream {
  /** Reads into `p`; resolves to the count read, or `null` (or 0) at end of file. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves to the count written. */
  write(p: Uint8Array): Promise<number>;
}

/** Applies an identity and says how it went. A throw is answered as `identity_failed`. */
export type IdentityHandler = (message: IdentityMessage) => Promise<IdentityReply>;

/** How long the channel waits after an end of file before reading again, in ms. */
export const EOF_RETRY_MS = 100;

/** Longest `error` an {@linkcode IdentityReply} carries (characters). */
export const REPLY_ERROR_MAX = 2048;

/** Options of {@linkcode serveControl}. */
export interface ServeControlOptions {
  /** Stops the loop: a pending read or wait is abandoned and the promise resolves. */
  signal?: AbortSignal;
  /** Wait after an end of file, in ms; default {@linkcode EOF_RETRY_MS}. */
  eofRetryMs?: number;
  /** The wait itself (tests); default a timer that the signal cuts short. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Longest line taken, in bytes; default {@linkcode CONTROL_MAX_LINE}. */
  maxLine?: number;
  /** kestrel's console log; default nothing. */
  log?: (message: string) => void;
}

const ABORTED: unique symbol = Symbol("aborted");

/** `p`, or {@linkcode ABORTED} as soon as `signal` fires (without leaking a listener). */
function unlessAborted<T>(p: Promise<T>, signal?: AbortSignal): Promise<T | typeof ABORTED> {
  if (signal === undefined) return p;
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.resolve(ABORTED);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(ABORTED);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then((value) => {
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    }, (err) => {
      signal.removeEventListener("abort", onAbort);
      reject(err);
    });
  });
}

/** A timer of `ms` that `signal` ends early. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `identity_failed` for `generation`, its error capped at {@linkcode REPLY_ERROR_MAX}. */
export function identityFailed(generation: number, error: string): IdentityReply {
  const capped = error.length > REPLY_ERROR_MAX ? `${error.slice(0, REPLY_ERROR_MAX - 1)}…` : error;
  return { kind: "identity_failed", generation, error: capped };
}

/** The value at `path` inside `root`, or undefined. */
function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** One issue in words, e.g. `network.ip: missing`, `entropy: has the wrong format`. */
function describeIssue(issue: z.core.$ZodIssue, input: unknown): string[] {
  const field = (path: readonly PropertyKey[]) => path.map(String).join(".") || "(message)";
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => `${field([...issue.path, key])}: unknown field`);
    case "invalid_type": {
      const missing = valueAt(input, issue.path) === undefined;
      return [`${field(issue.path)}: ${missing ? "missing" : `expected ${issue.expected}`}`];
    }
    case "too_small":
      return [`${field(issue.path)}: must be at least ${issue.minimum}`];
    case "too_big":
      return [`${field(issue.path)}: must be at most ${issue.maximum}`];
    case "invalid_format":
      return [`${field(issue.path)}: has the wrong format`];
    case "invalid_value":
      return [
        `${field(issue.path)}: must be ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}`,
      ];
    default:
      return [`${field(issue.path)}: ${issue.message}`];
  }
}

/** The `generation` of a message that failed the schema, when it has a usable one; else 0. */
function generationOf(value: unknown): number {
  const g = valueAt(value, ["generation"]);
  return typeof g === "number" && Number.isSafeInteger(g) ? g : 0;
}

const decoder = new TextDecoder();

/**
 * The reply to one line: `undefined` for a blank line (nothing is answered), else the handler's
 * reply, or `identity_failed` for invalid JSON or a message the schema refuses (naming the
 * fields), with the message's generation when it is readable (else 0).
 *
 * @example
 * ```ts
 * import { answerLine } from "./channel.ts";
 * const reply = await answerLine(new TextEncoder().encode("{]"), () => Promise.reject());
 * console.assert(reply?.kind === "identity_failed" && reply.generation === 0);
 * ```
 */
export async function answerLine(
  line: Uint8Array,
  handle: IdentityHandler,
): Promise<IdentityReply | undefined> {
  const text = decoder.decode(line).trim();
  if (text === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the line, which may hold a secret.
    return identityFailed(0, `invalid JSON: a line of ${line.length} bytes that is no JSON value`);
  }
  const parsed = IdentityMessage.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.flatMap((issue) => describeIssue(issue, value));
    return identityFailed(generationOf(value), `invalid identity message: ${issues.join("; ")}`);
  }
  try {
    return await handle(parsed.data);
  } catch (err) {
    return identityFailed(parsed.data.generation, message(err));
  }
}

const encoder = new TextEncoder();

async function writeAll(
  stream: ControlStream,
  data: Uint8Array,
  signal?: AbortSignal,
): Promise<boolean> {
  for (let off = 0; off < data.length;) {
    const n = await unlessAborted(stream.write(data.subarray(off)), signal);
    if (n === ABORTED) return false;
    off += n;
  }
  return true;
}

/**
 * Serves the control channel over `stream` until `options.signal` aborts (or a read fails,
 * which is logged): each line is answered by {@linkcode answerLine} before the next is read.
 * Never throws.
 *
 * @example
 * ```ts ignore
 * import { serveControl } from "./channel.ts";
 * import { openRawTty } from "./tty.ts";
 * const port = openRawTty("/dev/ttyS1");
 * const stop = new AbortController();
 * await serveControl(port, (msg) => applyIdentity(msg, deps), { signal: stop.signal });
 * ```
 */
export async function serveControl(
  stream: ControlStream,
  handle: IdentityHandler,
  options: ServeControlOptions = {},
): Promise<void> {
  const { signal } = options;
  const log = options.log ?? (() => {});
  const sleep = options.sleep ?? abortableSleep;
  const maxLine = options.maxLine ?? CONTROL_MAX_LINE;
  const splitter = new LineSplitter(maxLine);
  const buffer = new Uint8Array(16 * 1024);
  const pending: Uint8Array[] = [];
  while (!signal?.aborted) {
    const line = pending.shift();
    if (line !== undefined) {
      const reply = await answerLine(line, handle);
      if (reply === undefined || signal?.aborted) continue;
      try {
        await writeAll(stream, encoder.encode(`${JSON.stringify(reply)}\n`), signal);
      } catch (err) {
        log(`control port: cannot send the reply: ${message(err)}`);
      }
      continue;
    }
    let n: number | null | typeof ABORTED;
    try {
      n = await unlessAborted(stream.read(buffer), signal);
    } catch (err) {
      if (!signal?.aborted) {
        log(`control port: read failed: ${message(err)}; no further identity can be applied`);
      }
      return;
    }
    if (n === ABORTED) return;
    if (n === null || n === 0) {
      await sleep(options.eofRetryMs ?? EOF_RETRY_MS, signal);
      continue;
    }
    const { lines, dropped } = splitter.push(buffer.subarray(0, n));
    if (dropped > 0) {
      log(`control port: discarded ${dropped} line(s) over ${maxLine} bytes, unanswered`);
    }
    pending.push(...lines);
  }
}
