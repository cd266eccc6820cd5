/**
 * Following volantd's event stream (`GET /api/v1/events`, server-sent events) across
 * reconnections: when the stream ends or breaks (volantd restarted, or dropped a slow reader),
 * it connects again with `Last-Event-ID` set to the last id it saw, so the daemon replays exactly
 * the events it missed. Internal to the CLI's commands.
 *
 * @module
 */
import { VolantError } from "../../schema/error.ts";
import { parseEventId } from "../../schema/event.ts";
import { VmEvents } from "../../schema/operations/mod.ts";
import type { VolantClient } from "../client.ts";
import { bodyLines } from "./_ndjson.ts";

/** One server-sent event: its fields (`data` lines joined by newlines; "" when none). */
export interface SseBlock {
  event: string | null;
  id: string | null;
  data: string;
}

/**
 * The server-sent events of a streamed body, comments skipped; blocks with only an `id:` are
 * yielded too (they move the client's last event id).
 *
 * @example
 * ```ts
 * import { sseBlocks } from "./_event_follow.ts";
 * const body = ": hi\nid: 4\n\nevent: x\nid: 5\ndata: {}\n\n";
 * const ids: (string | null)[] = [];
 * for await (const b of sseBlocks(new Response(body))) ids.push(b.id);
 * console.assert(ids.join() === "4,5");
 * ```
 */
export async function* sseBlocks(res: Response): AsyncGenerator<SseBlock> {
  for await (const text of bodyLines(res, "\n\n")) {
    let event: string | null = null;
    let id: string | null = null;
    const data: string[] = [];
    for (const line of text.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
      else if (field === "id") id = value;
    }
    if (event !== null || id !== null || data.length > 0) {
      yield { event, id, data: data.join("\n") };
    }
  }
}

/** Options of {@linkcode followEvents}. */
export interface FollowOptions {
  /** Only this VM's events, when given. */
  vm?: string;
  /** Replay the events after this id first (0: every event kept); null: from now on. */
  since: number | null;
  /**
   * Each event's data and id. A throw ends the follow with that error (e.g. a `stream.error`
   * the caller will not resume from).
   */
  onEvent(data: string, id: number | null): void;
  /**
   * Told before each reconnection: why, the last id it saw (sent as `Last-Event-ID`) and the
   * attempt (1 for the first since the stream was last connected).
   */
  onReconnect?(reason: string, lastId: number | null, attempt: number): void;
  /** Aborting it ends the follow (resolves). */
  signal?: AbortSignal;
  /** How long to keep trying to reconnect, in ms; default 60 000. */
  reconnectMs?: number;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const id = setTimeout(done, ms);
    function done() {
      clearTimeout(id);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done);
  });
}

/** Marks an error thrown by `onEvent`: it ends the follow instead of a reconnection. */
class Fatal {
  constructor(readonly error: unknown) {}
}

/**
 * Follows the event stream until `signal` aborts, an `onEvent` throws, the first connection
 * fails, or reconnecting keeps failing for `reconnectMs`.
 *
 * @example
 * ```ts ignore
 * await followEvents(client, { since: 41, onEvent: (data) => console.log(data) });
 * ```
 */
export async function followEvents(client: VolantClient, options: FollowOptions): Promise<void> {
  const { signal } = options;
  const window = options.reconnectMs ?? 60_000;
  let last = options.since;
  let connected = false;
  let failingSince: number | null = null;
  let delay = 100;
  let attempt = 0;
  for (;;) {
    let reason: string;
    try {
      const headers: Record<string, string> = last === null
        ? {}
        : { "last-event-id": String(last) };
      const res = await client.open(VmEvents, { vm: options.vm }, undefined, {
        headers,
        ...(signal ? { signal } : {}),
      });
      if (!res.ok) {
        throw new VolantError(
          "internal",
          `volantd answered GET /api/v1/events with HTTP ${res.status}`,
          { status: res.status },
        );
      }
      connected = true;
      failingSince = null;
      delay = 100;
      attempt = 0;
      for await (const block of sseBlocks(res)) {
        const id = block.id === null ? null : parseEventId(block.id);
        if (id !== null) last = id;
        if (block.data === "") continue;
        try {
          options.onEvent(block.data, id);
        } catch (err) {
          throw new Fatal(err);
        }
      }
      reason = "volantd ended the event stream";
    } catch (err) {
      if (err instanceof Fatal) throw err.error;
      if (signal?.aborted) return;
      const unreachable = err instanceof VolantError && err.code === "daemon_unreachable";
      // Refusals (bad input, no permission) and a daemon never reached end it at once.
      if (!connected || (err instanceof VolantError && !unreachable)) throw err;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > window) throw err;
      reason = err instanceof Error ? err.message.split("\n")[0]! : String(err);
    }
    if (signal?.aborted) return;
    options.onReconnect?.(reason, last, ++attempt);
    await sleep(delay, signal);
    if (signal?.aborted) return;
    delay = Math.min(delay * 2, 2_000);
  }
}
