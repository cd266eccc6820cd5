/**
 * Line framing of the control channel: bytes in, complete lines out, each at most a given
 * number of bytes (newline excluded). A longer line is dropped whole, up to and including its
 * newline, without keeping more than the limit in memory.
 *
 * @module
 */

/** What one {@linkcode LineSplitter.push} produced. */
export interface Pushed {
  /** The lines completed, without their newline (copies: the input may be reused). */
  lines: Uint8Array[];
  /** How many overlong lines ended (and were dropped) in this chunk. */
  dropped: number;
}

/**
 * Splits a byte stream into `\n`-terminated lines of at most `maxLine` bytes.
 *
 * @example
 * ```ts
 * import { LineSplitter } from "./lines.ts";
 * const split = new LineSplitter(4);
 * const bytes = (s: string) => new TextEncoder().encode(s);
 * const a = split.push(bytes("ab\ncdefgh"));
 * const b = split.push(bytes("ij\nkl\n"));
 * console.assert(a.lines.length === 1 && b.dropped === 1 && b.lines.length === 1);
 * ```
 */
export class LineSplitter {
  readonly #max: number;
  #parts: Uint8Array[] = [];
  #size = 0;
  #discarding = false;

  /** A splitter for lines of at most `maxLine` bytes. */
  constructor(maxLine: number) {
    this.#max = maxLine;
  }

  /** Feeds `chunk`; returns the lines it completes and how many overlong ones it ended. */
  push(chunk: Uint8Array): Pushed {
    const lines: Uint8Array[] = [];
    let dropped = 0;
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      const segment = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.#discarding || this.#size + segment.length > this.#max) {
        dropped++;
      } else {
        lines.push(this.#join(segment));
      }
      this.#reset();
    }
    const tail = chunk.subarray(start);
    if (!this.#discarding && tail.length > 0) {
      if (this.#size + tail.length > this.#max) {
        this.#reset();
        this.#discarding = true;
      } else {
        this.#parts.push(tail.slice());
        this.#size += tail.length;
      }
    }
    return { lines, dropped };
  }

  #join(last: Uint8Array): Uint8Array {
    const out = new Uint8Array(this.#size + last.length);
    let offset = 0;
    for (const part of this.#parts) {
      out.set(part, offset);
      offset += part.length;
    }
    out.set(last, offset);
    return out;
  }

  #reset(): void {
    this.#parts = [];
    this.#size = 0;
    this.#discarding = false;
  }
}
