/**
 * A JSON-lines logger: one object per line, `{ts, level, msg, ...fields}`, written to stderr
 * (or a file, or any sink for tests). Errors in fields are rendered as `{name, code, message}`.
 *
 * @module
 */

/** Log levels, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Extra structured fields of one log line. */
export type LogFields = Record<string, unknown>;

/** A structured logger. */
export interface Logger {
  /** Logs at debug level. */
  debug(msg: string, fields?: LogFields): void;
  /** Logs at info level. */
  info(msg: string, fields?: LogFields): void;
  /** Logs at warn level. */
  warn(msg: string, fields?: LogFields): void;
  /** Logs at error level. */
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Lowest level written; default `info`. */
  level?: LogLevel;
  /** Receives each line (without the newline); default: stderr, or `file` when given. */
  sink?: (line: string) => void;
  /** Append lines to this file instead of stderr. */
  file?: string;
  /** Fields added to every line. */
  fields?: LogFields;
  /** Clock; default `new Date()`. */
  now?: () => Date;
}

function writeAll(target: { writeSync(p: Uint8Array): number }, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += target.writeSync(data.subarray(off));
}

function renderValue(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined
      ? { name: value.name, message: value.message }
      : { name: value.name, code, message: value.message };
  }
  return value;
}

function defaultSink(file: string | undefined): (line: string) => void {
  const encoder = new TextEncoder();
  if (file === undefined) return (line) => writeAll(Deno.stderr, encoder.encode(line + "\n"));
  return (line) => {
    const f = Deno.openSync(file, { append: true, create: true });
    try {
      writeAll(f, encoder.encode(line + "\n"));
    } finally {
      f.close();
    }
  };
}

/**
 * Creates a JSON-lines logger.
 *
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger({ sink: (l) => lines.push(l) }).child({ vm: "web" });
 * log.info("vm started", { pid: 42 });
 * console.assert(JSON.parse(lines[0]!).vm === "web");
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = LEVELS[options.level ?? "info"];
  const sink = options.sink ?? defaultSink(options.file);
  const now = options.now ?? (() => new Date());
  function make(base: LogFields): Logger {
    function write(level: LogLevel, msg: string, fields?: LogFields): void {
      if (LEVELS[level] < min) return;
      const line: LogFields = { ts: now().toISOString(), level, msg };
      for (const [k, v] of Object.entries({ ...base, ...fields })) line[k] = renderValue(v);
      try {
        sink(JSON.stringify(line));
      } catch {
        // A broken log sink must never take the daemon down.
      }
    }
    return {
      debug: (msg, fields) => write("debug", msg, fields),
      info: (msg, fields) => write("info", msg, fields),
      warn: (msg, fields) => write("warn", msg, fields),
      error: (msg, fields) => write("error", msg, fields),
      child: (fields) => make({ ...base, ...fields }),
    };
  }
  return make(options.fields ?? {});
}

/**
 * A logger that drops everything (tests, library use).
 *
 * @example
 * ```ts
 * import { silentLogger } from "./log.ts";
 * silentLogger().info("nobody hears this");
 * ```
 */
export function silentLogger(): Logger {
  return createLogger({ sink: () => {} });
}
