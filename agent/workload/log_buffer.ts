/**
 * The workload's recent output: a ring of {@linkcode LogLine}s bounded by bytes and by lines
 * (the oldest go first), each numbered for the life of kestrel, with listeners for new lines.
 *
 * @module
 */
import type { LogLine, LogStream } from "../../schema/agent.ts";

/** Default bound of the ring, in bytes of line text (UTF-8). */
export const LOG_MAX_BYTES = 1024 * 1024;

/** Default bound of the ring, in lines. */
export const LOG_MAX_LINES = 10_000;

/** Options of {@linkcode LogBuffer}. */
export interface LogBufferOptions {
  /** Most bytes of text kept; default {@linkcode LOG_MAX_BYTES}. */
  maxBytes?: number;
  /** Most lines kept; default {@linkcode LOG_MAX_LINES}. */
  maxLines?: number;
  /** The clock (tests); default `Date.now`. */
  now?: () => number;
}

/** What {@linkcode LogBuffer.read} selects. */
export interface LogQuery {
  /** Only lines with a larger `seq`. */
  since?: number;
  /** Only the last `tail` of those. */
  tail?: number;
}

const encoder = new TextEncoder();

/**
 * A bounded, numbered ring of log lines with subscribers.
 *
 * @example
 * ```ts
 * import { LogBuffer } from "./log_buffer.ts";
 * const logs = new LogBuffer({ maxLines: 2 });
 * const seen: string[] = [];
 * const stop = logs.subscribe((l) => seen.push(l.line));
 * logs.push("stdout", "a");
 * logs.push("stdout", "b");
 * logs.push("stderr", "c");
 * stop();
 * console.assert(logs.read().map((l) => l.line).join() === "b,c" && seen.length === 3);
 * ```
 */
export class LogBuffer {
  #lines: Array<LogLine & { bytes: number }> = [];
  #head = 0;
  #bytes = 0;
  #seq = 0;
  #maxBytes: number;
  #maxLines: number;
  #now: () => number;
  #listeners = new Set<(line: LogLine) => void>();

  /** Creates an empty buffer. */
  constructor(options: LogBufferOptions = {}) {
    this.#maxBytes = options.maxBytes ?? LOG_MAX_BYTES;
    this.#maxLines = options.maxLines ?? LOG_MAX_LINES;
    this.#now = options.now ?? Date.now;
  }

  /** The `seq` of the newest line (0 before the first). */
  get lastSeq(): number {
    return this.#seq;
  }

  /** Lines held now. */
  get size(): number {
    return this.#lines.length - this.#head;
  }

  /** Bytes of text held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Listeners following new lines now. */
  get subscribers(): number {
    return this.#listeners.size;
  }

  /**
   * Appends one line (without its newline) and tells every subscriber. `bytes` is its size in
   * UTF-8 when the caller knows it.
   */
  push(stream: LogStream, line: string, bytes?: number): LogLine {
    const size = bytes ?? encoder.encode(line).byteLength;
    const entry = {
      seq: ++this.#seq,
      time: new Date(this.#now()).toISOString(),
      stream,
      line,
    };
    this.#lines.push({ ...entry, bytes: size });
    this.#bytes += size;
    while (this.size > this.#maxLines || (this.#bytes > this.#maxBytes && this.size > 1)) {
      const old = this.#lines[this.#head++];
      this.#bytes -= old?.bytes ?? 0;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#lines.length) {
      this.#lines = this.#lines.slice(this.#head);
      this.#head = 0;
    }
    for (const listener of [...this.#listeners]) {
      try {
        listener(entry);
      } catch {
        // A broken listener must not stop the others or the workload's output.
      }
    }
    return entry;
  }

  /** The held lines matching `query`, oldest first. */
  read(query: LogQuery = {}): LogLine[] {
    const since = query.since ?? 0;
    const out: LogLine[] = [];
    for (let i = this.#head; i < this.#lines.length; i++) {
      const l = this.#lines[i];
      if (l !== undefined && l.seq > since) {
        out.push({ seq: l.seq, time: l.time, stream: l.stream, line: l.line });
      }
    }
    return query.tail === undefined ? out : out.slice(Math.max(0, out.length - query.tail));
  }

  /** Calls `listener` for every new line until the returned function is called. */
  subscribe(listener: (line: LogLine) => void): () => void {
    const own = (line: LogLine) => listener(line);
    this.#listeners.add(own);
    return () => {
      this.#listeners.delete(own);
    };
  }
}
