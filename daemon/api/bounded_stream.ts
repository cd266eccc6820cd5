/**
 * A response body with a bounded queue, for streams that follow the daemon's events (the event
 * stream, AG-UI runs): text is queued for the client as it comes, and the queue holds at most
 * `queueBytes` before {@linkcode BoundedStream.full} says so — the producer then drops the
 * client (a final message, then the end) instead of buffering without limit. The stream ends
 * when the producer ends it, the client cancels the body, or one of the given signals aborts
 * (the client went away, the daemon is closing).
 *
 * @module
 */

/** Options of {@linkcode boundedStream}. */
export interface BoundedStreamOptions {
  /** Bytes queued for the client at most before the stream is {@linkcode BoundedStream.full}. */
  queueBytes: number;
  /** Called when the client has room for more (the stream pulls), until the stream ends. */
  pull?: () => void;
  /** Called once when the stream ends, however it ends. */
  onEnd?: () => void;
  /** Signals that end the stream when they abort. */
  signals?: ReadonlyArray<AbortSignal | undefined>;
}

/** A response body with a bounded queue; see {@linkcode boundedStream}. */
export interface BoundedStream {
  /** The body to answer with. */
  readonly body: ReadableStream<Uint8Array>;
  /** Whether the stream has ended. */
  readonly ended: boolean;
  /** Whether the client's queue is full: it reads slower than text comes. */
  readonly full: boolean;
  /** Queues text (whatever the queue holds: callers check {@linkcode full} first for live text). */
  enqueue(text: string): void;
  /** Ends the stream, with a last text when given. */
  end(last?: string): void;
  /** Resolves when the client has room for more text, or the stream has ended. */
  room(): Promise<void>;
  /** Resolves when the stream has ended. */
  readonly done: Promise<void>;
}

/**
 * A body whose queue holds at most `queueBytes` before it is {@linkcode BoundedStream.full}.
 *
 * @example
 * ```ts
 * import { boundedStream } from "./bounded_stream.ts";
 * const stream = boundedStream({ queueBytes: 8 });
 * stream.enqueue("0123456789");
 * console.assert(stream.full);
 * stream.end("!");
 * console.assert(await new Response(stream.body).text() === "0123456789!");
 * ```
 */
export function boundedStream(options: BoundedStreamOptions): BoundedStream {
  const encoder = new TextEncoder();
  const signals = (options.signals ?? []).filter((s): s is AbortSignal => s !== undefined);
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let ended = false;
  let waiting: Array<() => void> = [];
  const { promise: done, resolve: resolveDone } = Promise.withResolvers<void>();
  const onAbort = () => stream.end();

  function wake(): void {
    const wakers = waiting;
    waiting = [];
    for (const w of wakers) w();
  }

  function stop(): void {
    if (ended) return;
    ended = true;
    for (const s of signals) s.removeEventListener("abort", onAbort);
    wake();
    resolveDone();
    options.onEnd?.();
  }

  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    pull() {
      if (ended) return;
      wake();
      options.pull?.();
    },
    cancel: stop,
  }, new ByteLengthQueuingStrategy({ highWaterMark: options.queueBytes }));

  const stream: BoundedStream = {
    body,
    done,
    get ended() {
      return ended;
    },
    get full() {
      return (controller.desiredSize ?? 1) <= 0;
    },
    enqueue(text) {
      if (ended) return;
      try {
        controller.enqueue(encoder.encode(text));
      } catch {
        stop();
      }
    },
    end(last) {
      if (ended) return;
      stop();
      try {
        if (last !== undefined) controller.enqueue(encoder.encode(last));
        controller.close();
      } catch {
        // Already closed (the client went away).
      }
    },
    room() {
      if (ended || (controller.desiredSize ?? 0) > 0) return Promise.resolve();
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
  };
  for (const s of signals) s.addEventListener("abort", onAbort);
  if (signals.some((s) => s.aborted)) stream.end();
  return stream;
}
