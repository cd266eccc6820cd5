/**
 * `GET /v1/logs?tail=N&since=SEQ&follow=1`: the workload's output (and kestrel's events about
 * it) as NDJSON, one {@linkcode LogLine} a line. `since` keeps lines after that sequence number,
 * `tail` the last N of those (default all that are held). With `follow=1` the response stays
 * open and carries each new line as it comes, until the client goes away; a follower that
 * falls more than {@linkcode FOLLOW_MAX_BEHIND} lines behind is cut off (it reconnects with
 * `since=<the last seq it got>`).
 *
 * @module
 */
import type { LogLine } from "../../schema/agent.ts";
import { VolantError } from "../../schema/error.ts";
import type { LogBuffer } from "../workload/log_buffer.ts";
import type { Route } from "./router.ts";

/** Most lines a follower may have unread before it is cut off. */
export const FOLLOW_MAX_BEHIND = 10_000;

/** The query of `GET /v1/logs`. */
export interface LogsQuery {
  /** Last N lines. */
  tail: number | undefined;
  /** Lines after this seq. */
  since: number | undefined;
  /** Keep streaming new lines. */
  follow: boolean;
}

function count(params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null || raw === "") return undefined;
  if (!/^\d{1,15}$/.test(raw)) {
    throw new VolantError(
      "invalid_argument",
      `Query parameter ${name}=${JSON.stringify(raw)} must be a non-negative integer`,
      { field: name },
    );
  }
  return Number(raw);
}

/**
 * Reads and checks the query; throws `invalid_argument` naming the bad parameter.
 *
 * @example
 * ```ts
 * import { parseLogsQuery } from "./logs.ts";
 * const q = parseLogsQuery(new URLSearchParams("tail=5&follow=1"));
 * console.assert(q.tail === 5 && q.follow && q.since === undefined);
 * ```
 */
export function parseLogsQuery(params: URLSearchParams): LogsQuery {
  const follow = params.get("follow") ?? "0";
  if (!["", "0", "1", "true", "false"].includes(follow)) {
    throw new VolantError(
      "invalid_argument",
      `Query parameter follow=${JSON.stringify(follow)} must be 1 or 0 (true or false)`,
      { field: "follow" },
    );
  }
  return {
    tail: count(params, "tail"),
    since: count(params, "since"),
    follow: follow === "1" || follow === "true",
  };
}

const encoder = new TextEncoder();
const ndjson = (line: LogLine) => encoder.encode(`${JSON.stringify(line)}\n`);

/**
 * The body of a followed log: the selected backlog, then every new line until the client
 * cancels (or `signal` aborts); either way its subscription to `logs` ends.
 */
function followStream(
  logs: LogBuffer,
  backlog: LogLine[],
  since: number,
  signal: AbortSignal,
): ReadableStream<Uint8Array> {
  let unsubscribe = () => {};
  const end = () => {
    unsubscribe();
    signal.removeEventListener("abort", end);
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      let last = since;
      for (const line of backlog) {
        controller.enqueue(ndjson(line));
        last = line.seq;
      }
      // Lines pushed between the read and now are not lost: the subscription starts in the
      // same tick as the read, and seq filters out any overlap.
      unsubscribe = logs.subscribe((line) => {
        if (line.seq <= last) return;
        last = line.seq;
        if ((controller.desiredSize ?? 0) < -FOLLOW_MAX_BEHIND) {
          end();
          controller.close();
          return;
        }
        controller.enqueue(ndjson(line));
      });
      if (signal.aborted) end();
      else signal.addEventListener("abort", end);
    },
    cancel() {
      end();
    },
  });
}

/**
 * The `GET /v1/logs` route over `logs`.
 *
 * @example
 * ```ts ignore
 * import { logsRoute } from "./logs.ts";
 * const route = logsRoute(supervisor.logs);
 * ```
 */
export function logsRoute(logs: LogBuffer): Route {
  return {
    method: "GET",
    path: "/v1/logs",
    handle: (req, url) => {
      const query = parseLogsQuery(url.searchParams);
      const backlog = logs.read({
        ...(query.since === undefined ? {} : { since: query.since }),
        ...(query.tail === undefined ? {} : { tail: query.tail }),
      });
      const headers = { "content-type": "application/x-ndjson", "cache-control": "no-store" };
      if (!query.follow) {
        return new Response(backlog.map((l) => `${JSON.stringify(l)}\n`).join(""), { headers });
      }
      return new Response(followStream(logs, backlog, query.since ?? 0, req.signal), { headers });
    },
  };
}
