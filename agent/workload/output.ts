/**
 * The workload's output, line by line: {@linkcode pumpLines} splits a pipe into lines (a line
 * longer than {@linkcode MAX_LINE_BYTES} is cut into pieces), and {@linkcode ConsoleEcho}
 * copies them to kestrel's console without ever blocking PID 1 on a slow serial port (lines
 * that do not fit its queue are counted and reported, not written).
 *
 * @module
 */

/** Longest line kept whole, in bytes; longer ones are split. */
export const MAX_LINE_BYTES = 16 * 1024;

/** Default bound of the console queue, in bytes. */
export const ECHO_QUEUE_BYTES = 64 * 1024;

const NEWLINE = 0x0a;

/**
 * Reads `stream` to its end and calls `onLine(text, bytes)` for every line, without its `\n`
 * (or `\r\n`); a last line without a newline is delivered at the end. Invalid UTF-8 becomes
 * U+FFFD. Resolves when the stream ends; a read error ends it quietly.
 *
 * @example
 * ```ts
 * import { pumpLines } from "./output.ts";
 * const lines: string[] = [];
 * await pumpLines(new Blob(["a\r\nb\nc"]).stream(), (l) => lines.push(l));
 * console.assert(lines.join("|") === "a|b|c");
 * ```
 */
export async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string, bytes: number) => void,
  maxLineBytes = MAX_LINE_BYTES,
): Promise<void> {
  const decoder = new TextDecoder();
  const pending = new Uint8Array(maxLineBytes);
  let used = 0;
  const emit = (bytes: Uint8Array) => {
    const end = bytes.byteLength > 0 && bytes[bytes.byteLength - 1] === 0x0d
      ? bytes.byteLength - 1
      : bytes.byteLength;
    onLine(decoder.decode(bytes.subarray(0, end)), end);
  };
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      let at = 0;
      while (at < value.byteLength) {
        const nl = value.indexOf(NEWLINE, at);
        const end = nl < 0 ? value.byteLength : nl;
        while (at < end) {
          if (used === maxLineBytes) {
            emit(pending);
            used = 0;
          }
          const take = Math.min(end - at, maxLineBytes - used);
          pending.set(value.subarray(at, at + take), used);
          used += take;
          at += take;
        }
        if (nl < 0) break;
        emit(pending.subarray(0, used));
        used = 0;
        at = nl + 1;
      }
    }
  } catch {
    // The pipe broke (the process is gone): keep what was read.
  } finally {
    reader.releaseLock();
  }
  if (used > 0) emit(pending.subarray(0, used));
}

/** Where the echo writes: kestrel's stdout (the serial console in the guest). */
export interface EchoSink {
  /** Writes some of `data`; resolves to how many bytes were written. */
  write(data: Uint8Array): Promise<number>;
}

const encoder = new TextEncoder();

/**
 * Copies lines to the console through a bounded queue written by one async loop: a chatty
 * workload on a 115200-baud serial console cannot stall PID 1. Lines arriving while the queue
 * is full are dropped and counted; a note saying how many is written once it drains.
 *
 * @example
 * ```ts
 * import { ConsoleEcho } from "./output.ts";
 * const got: string[] = [];
 * const echo = new ConsoleEcho({ write: (d) => (got.push(new TextDecoder().decode(d)), Promise.resolve(d.length)) });
 * echo.line("[web] hello");
 * await echo.flush();
 * console.assert(got.join("") === "[web] hello\n");
 * ```
 */
export class ConsoleEcho {
  #sink: EchoSink;
  #max: number;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #dropped = 0;
  #droppedTotal = 0;
  #writing: Promise<void> | undefined;

  /** An echo to `sink` (default `Deno.stdout`) holding at most `maxQueuedBytes`. */
  constructor(sink: EchoSink = Deno.stdout, maxQueuedBytes = ECHO_QUEUE_BYTES) {
    this.#sink = sink;
    this.#max = maxQueuedBytes;
  }

  /** Lines dropped so far because the console was too slow. */
  get dropped(): number {
    return this.#droppedTotal;
  }

  /** Queues `text` and a newline for the console. */
  line(text: string): void {
    const data = encoder.encode(`${text}\n`);
    if (this.#queued + data.byteLength > this.#max) {
      this.#dropped++;
      this.#droppedTotal++;
      return;
    }
    this.#queue.push(data);
    this.#queued += data.byteLength;
    this.#writing ??= this.#drain().finally(() => {
      this.#writing = undefined;
    });
  }

  /** Resolves once everything queued so far is written (or dropped). */
  async flush(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#dropped > 0) {
      const chunks = this.#queue.splice(0);
      const taken = chunks.reduce((n, c) => n + c.byteLength, 0);
      if (this.#dropped > 0) {
        const note = `kestrel: ${this.#dropped} workload lines not echoed (console too slow)\n`;
        chunks.push(encoder.encode(note));
        this.#dropped = 0;
      }
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.byteLength;
      }
      try {
        for (let off = 0; off < all.byteLength;) off += await this.#sink.write(all.subarray(off));
      } catch {
        // A closed console must never take PID 1 down; the lines are still in the log buffer.
      }
      this.#queued -= taken;
    }
  }
}
