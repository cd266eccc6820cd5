/**
 * `GET /api/v1/events`: the daemon's events as server-sent events (`event: vm.state`,
 * `id: <durable id>`, `data: <json>`). With `Last-Event-ID` (or `?since=`) the events after that
 * id are replayed from the event log first, then live ones follow; without, from the moment the
 * client connects. A comment every 15 s keeps idle connections open. See `event_stream.ts`.
 *
 * @module
 */
import type { VmEvents } from "../../schema/operations/mod.ts";
import type { Handler } from "./route.ts";
import { eventStream, resumeFrom } from "./event_stream.ts";

export { KEEPALIVE_MS, SUBSCRIBER_QUEUE_BYTES } from "./event_stream.ts";

/** `GET /api/v1/events` (declared in `schema/operations/events.ts`). */
export const vmEvents: Handler<typeof VmEvents> = ({ query, deps, request }) =>
  eventStream({
    events: deps.service.events,
    logger: deps.logger,
    ...(query.vm === undefined ? {} : { vm: query.vm }),
    since: resumeFrom(request, query.since),
    // No request.signal: a client that goes away cancels the body (and Deno.serve aborts the
    // signal of a response that ended well too, warning whoever listens to it).
  });
