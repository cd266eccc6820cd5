/**
 * The event stream as server-sent events: `id:` is the event's durable id, `event:` its type,
 * `data:` its JSON. A client resuming from an id (`Last-Event-ID`, or `?since=`) first gets the
 * events after it from the store's log — read a page at a time, only as fast as it reads, so a
 * replay larger than its queue is never buffered — then follows live events. The listener is
 * subscribed before the replay starts and the switch to live happens in the same synchronous
 * step as the last (short) page read, and every event is committed to the log before it is
 * heard: so nothing falls between replay and live, and an id already sent is never sent again.
 *
 * A live subscriber that reads slower than events come is sent a final `stream.error`
 * (`slow_consumer`) and dropped. An id older than what retention keeps gets `events_expired`
 * (naming the oldest id still kept), an id newer than any recorded `events_unknown`; both end the
 * stream, and their `id:` is where a client that reconnects anyway goes on from.
 *
 * @module
 */
import { parseEventId, type StreamError, type VolantEvent } from "../../schema/event.ts";
import { VolantError } from "../../schema/mod.ts";
import type { Logger } from "../log.ts";
import type { VmEvents } from "../services/mod.ts";
import { boundedStream } from "./bounded_stream.ts";

/** Milliseconds between keep-alive comments. */
export const KEEPALIVE_MS = 15_000;

/**
 * Bytes of events queued for one subscriber, at most: one that reads slower than events come is
 * sent a final `stream.error` event and dropped, so the daemon never buffers without limit.
 */
export const SUBSCRIBER_QUEUE_BYTES = 256 * 1024;

/** Events read from the log at a time while replaying. */
export const REPLAY_PAGE = 100;

/** Options of {@linkcode eventStream}. */
export interface EventStreamOptions {
  /** The daemon's events (log and listeners). */
  events: VmEvents;
  /** Where dropped subscribers are logged. */
  logger: Logger;
  /** Only this VM's events. */
  vm?: string;
  /** Replay the events after this id first (0: every event kept); null: live events only. */
  since: number | null;
  /** Aborted when the client goes away (a cancelled body ends the stream as well). */
  signal?: AbortSignal;
  /** Queue bound; default {@linkcode SUBSCRIBER_QUEUE_BYTES}. */
  queueBytes?: number;
  /** Replay page size; default {@linkcode REPLAY_PAGE}. */
  page?: number;
}

/**
 * Where a client resumes: its `Last-Event-ID` header when it sends one (an `EventSource`
 * reconnecting sends it, and it is newer than the URL's `?since=`), else `since`; null: no
 * replay. A header that is not an event id is `invalid_argument` naming it.
 *
 * @example
 * ```ts
 * import { resumeFrom } from "./event_stream.ts";
 * const req = new Request("http://volant/", { headers: { "last-event-id": "7" } });
 * console.assert(resumeFrom(req, "3") === 7 && resumeFrom(new Request("http://volant/")) === null);
 * ```
 */
export function resumeFrom(request: Request, since?: string): number | null {
  const header = request.headers.get("last-event-id");
  if (header !== null && header.trim() !== "") {
    const id = parseEventId(header);
    if (id === null) {
      throw new VolantError(
        "invalid_argument",
        `Last-Event-ID: expected an event id (a whole number), got ${JSON.stringify(header)}`,
        { field: "Last-Event-ID", value: header },
      );
    }
    return id;
  }
  return since === undefined ? null : parseEventId(since);
}

function block(type: string, id: number, data: unknown): string {
  return `event: ${type}\nid: ${id}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The stream's end when it cannot resume from `since`, or null when it can. */
function resumeError(since: number, events: VmEvents): { id: number; error: StreamError } | null {
  const { oldest, latest, prunedThrough } = events.bounds();
  const at = new Date().toISOString();
  if (since > latest) {
    return {
      id: latest,
      error: {
        type: "stream.error",
        code: "events_unknown",
        message: `event ${since} is newer than any this volantd recorded (the newest is ` +
          `${latest}): its event log was reset; resume from ${latest} (or 0 for every event kept)`,
        at,
        oldest_id: oldest,
        latest_id: latest,
      },
    };
  }
  if (since > 0 && since < prunedThrough) {
    const kept = oldest === null
      ? `none is kept now; the next will be after ${latest}`
      : `the oldest still kept is ${oldest}`;
    return {
      id: prunedThrough,
      error: {
        type: "stream.error",
        code: "events_expired",
        message: `the events after ${since} are no longer all kept (retention removed those up ` +
          `to ${prunedThrough}; ${kept}); resume from ${prunedThrough}, or 0 for every event kept`,
        at,
        oldest_id: oldest,
        latest_id: latest,
      },
    };
  }
  return null;
}

/**
 * The `text/event-stream` response for one subscriber.
 *
 * @example
 * ```ts ignore
 * const res = eventStream({ events: service.events, logger, since: 41 });
 * ```
 */
export function eventStream(options: EventStreamOptions): Response {
  const { events, logger, vm, signal } = options;
  const queueBytes = options.queueBytes ?? SUBSCRIBER_QUEUE_BYTES;
  const page = options.page ?? REPLAY_PAGE;
  let mode: "replay" | "live" = options.since === null ? "live" : "replay";
  /** The newest id sent (or, live only, the newest before the stream began). */
  let last = 0;
  let off = () => {};
  let timer: ReturnType<typeof setInterval> | undefined;
  const stream = boundedStream({
    queueBytes,
    signals: [signal, events.closing],
    pull() {
      if (mode === "replay") replayPage();
    },
    onEnd() {
      off();
      if (timer !== undefined) clearInterval(timer);
    },
  });

  /** Ends the stream, with a last `stream.error` event (and its `id:`) when given. */
  function end(final: { id: number | null; error: StreamError } | null): void {
    if (final === null) return stream.end();
    const id = final.id === null ? "" : `id: ${final.id}\n`;
    stream.end(`event: ${final.error.type}\n${id}data: ${JSON.stringify(final.error)}\n\n`);
  }

  /** Enqueues live text, dropping the subscriber when its queue is full. */
  function sendLive(text: string): void {
    if (mode !== "live" || stream.ended) return;
    if (stream.full) {
      logger.warn("event subscriber dropped", { reason: "slow_consumer" });
      return end({
        id: null,
        error: {
          type: "stream.error",
          code: "slow_consumer",
          message: `this subscriber read too slowly: more than ${queueBytes} bytes of events ` +
            `were waiting for it; reconnect (Last-Event-ID: ${last}) to go on from the last ` +
            "event it was sent",
          at: new Date().toISOString(),
        },
      });
    }
    stream.enqueue(text);
  }

  const wanted = (event: VolantEvent) =>
    vm === undefined || (event.name === vm && event.type.startsWith("vm."));

  /**
   * One page of the log; live once a read finds nothing more after `last`. That read runs only
   * when the queue has room (the stream pulls then), so a client still draining its replay is
   * not taken for a slow one by the first live event.
   */
  function replayPage(): void {
    // Retention may have gone past `last` while this subscriber was not reading.
    const gone = last > 0 ? resumeError(last, events) : null;
    if (gone) return end(gone);
    const rows = events.replay(last, page, vm === undefined ? {} : { vm });
    for (const event of rows) {
      stream.enqueue(block(event.type, event.id, event));
      last = event.id;
    }
    if (rows.length === 0) mode = "live";
  }

  if (options.since === null) {
    // Live from here: the client learns where it stands, to resume from it.
    last = events.bounds().latest;
    stream.enqueue(`: volantd events\nid: ${last}\n\n`);
  } else {
    stream.enqueue(": volantd events\n\n");
    const refused = resumeError(options.since, events);
    if (refused) end(refused);
    last = options.since;
  }
  if (!stream.ended) {
    off = events.subscribe((event) => {
      // While replaying, the log has every event heard: the replay sends it.
      if (mode !== "live" || event.id <= last || !wanted(event)) return;
      sendLive(block(event.type, event.id, event));
      last = event.id;
    });
    timer = setInterval(() => {
      if (mode === "live") sendLive(": keep-alive\n\n");
      else if (!stream.full) stream.enqueue(": keep-alive\n\n");
    }, KEEPALIVE_MS);
  }
  return new Response(stream.body, {
    headers: { "content-type": "text/event-stream", "cache-control": "no-store" },
  });
}
