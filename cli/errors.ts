/**
 * How volar fails: {@linkcode UsageError} (exit 2: the command line is wrong, nothing was
 * sent) versus {@linkcode VolantError} (exit 1: the daemon or the connection refused), and
 * how either is printed: `volar: <message>` on stderr, or the `ErrorBody` JSON with `--json`.
 *
 * @module
 */
import { type ErrorBody, VolantError } from "../schema/mod.ts";
import type { Io } from "./io.ts";

/** Exit code of a usage error (unknown command or flag, bad or missing value). */
export const EXIT_USAGE = 2;
/** Exit code of an API or connection error. */
export const EXIT_ERROR = 1;

/**
 * The command line is wrong: an unknown command or flag, a missing argument, or a value
 * the schemas reject. Reported before any request is sent.
 *
 * @example
 * ```ts
 * import { UsageError } from "./errors.ts";
 * const err = new UsageError("--cpu: expected a whole number", { command: "volar vms create" });
 * console.assert(err.toJSON().code === "invalid_argument");
 * ```
 */
export class UsageError extends Error {
  /** The command that failed, e.g. `volar vms create`. */
  readonly command: string | undefined;
  /** Its usage line, e.g. `volar vms create [options] <name>`. */
  readonly usage: string | undefined;
  /** Structured context (the flag, the value, the schema issues). */
  readonly details: Record<string, unknown> | undefined;

  /** Creates a usage error. */
  constructor(
    message: string,
    options: { command?: string; usage?: string; details?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.name = "UsageError";
    this.command = options.command;
    this.usage = options.usage;
    this.details = options.details;
  }

  /** The wire form, as `--json` prints it (code `invalid_argument`). */
  toJSON(): ErrorBody {
    const details = { ...this.details, ...(this.usage ? { usage: this.usage } : {}) };
    return Object.keys(details).length === 0
      ? { code: "invalid_argument", message: this.message }
      : { code: "invalid_argument", message: this.message, details };
  }
}

/**
 * The exit code for a thrown value: 2 for {@linkcode UsageError}, else 1.
 *
 * @example
 * ```ts
 * import { exitCodeFor, UsageError } from "./errors.ts";
 * console.assert(exitCodeFor(new UsageError("bad")) === 2 && exitCodeFor(new Error("x")) === 1);
 * ```
 */
export function exitCodeFor(err: unknown): number {
  return err instanceof UsageError ? EXIT_USAGE : EXIT_ERROR;
}

function bodyOf(err: unknown): ErrorBody {
  if (err instanceof UsageError || err instanceof VolantError) return err.toJSON();
  const message = err instanceof Error ? err.message : String(err);
  return { code: "internal", message: `Internal error: ${message}` };
}

/**
 * Prints an error on stderr (`volar: <message>`, plus the usage line for usage errors, or
 * the `ErrorBody` JSON when `json`) and returns the exit code.
 *
 * @example
 * ```ts ignore
 * import { reportError } from "./errors.ts";
 * return reportError(io, err, json);
 * ```
 */
export function reportError(io: Io, err: unknown, json: boolean): number {
  const body = bodyOf(err);
  if (json) {
    io.err(JSON.stringify(body) + "\n");
  } else {
    io.err(`volar: ${body.message}\n`);
    if (err instanceof UsageError && err.usage) io.err(`usage: ${err.usage}\n`);
    if (err instanceof UsageError && err.command) io.err(`(see '${err.command} --help')\n`);
  }
  return exitCodeFor(err);
}
