/**
 * `GET /api/v1/events`: the VM event stream as server-sent events (`event: vm.state`,
 * `id: <n>`, `data: <json>`), from the moment the client connects, with a comment every 15 s
 * to keep idle connections open, until the client goes away.
 *
 * @module
 */
import { EventsQuery, type StreamError, VmEvent } from "../../schema/event.ts";
import { defineRoute, type Route } from "./route.ts";

/** Seconds between keep-alive comments. */
export const KEEPALIVE_MS = 15_000;

/**
 * Bytes of events queued for one subscriber, at most: one that reads slower than events come is
 * sent a final `stream.error` event and dropped, so the daemon never buffers without limit.
 */
export const SUBSCRIBER_QUEUE_BYTES = 256 * 1024;

/** `GET /api/v1/events` */
export const vmEvents: Route = defineRoute({
  method: "GET",
  path: "/api/v1/events",
  operationId: "vmEvents",
  summary: "VM events as server-sent events (text/event-stream): state changes, deletions, " +
    "workload health",
  query: EventsQuery,
  status: 200,
  response: VmEvent.describe("The data of each event"),
  handle: ({ query, deps, request }) => {
    const encoder = new TextEncoder();
    let off = () => {};
    let timer: ReturnType<typeof setInterval> | undefined;
    const stop = () => {
      off();
      if (timer !== undefined) clearInterval(timer);
    };
    let id = 0;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        let dropped = false;
        const send = (text: string) => {
          if (dropped) return;
          try {
            if ((controller.desiredSize ?? 1) <= 0) {
              dropped = true;
              stop();
              const end: StreamError = {
                type: "stream.error",
                code: "slow_consumer",
                message: `this subscriber read too slowly: more than ${SUBSCRIBER_QUEUE_BYTES} ` +
                  "bytes of events were waiting for it; reconnect to follow events again",
                at: new Date().toISOString(),
              };
              deps.logger.warn("event subscriber dropped", { reason: end.code });
              controller.enqueue(
                encoder.encode(`event: ${end.type}\ndata: ${JSON.stringify(end)}\n\n`),
              );
              controller.close();
              return;
            }
            controller.enqueue(encoder.encode(text));
          } catch {
            stop();
          }
        };
        send(": volantd events\n\n");
        off = deps.service.events.subscribe((event) => {
          if (query.vm !== undefined && event.name !== query.vm) return;
          send(`event: ${event.type}\nid: ${++id}\ndata: ${JSON.stringify(event)}\n\n`);
        });
        timer = setInterval(() => send(": keep-alive\n\n"), KEEPALIVE_MS);
        request.signal.addEventListener("abort", () => {
          stop();
          try {
            controller.close();
          } catch {
            // Already closed.
          }
        });
      },
      cancel: stop,
    }, new ByteLengthQueuingStrategy({ highWaterMark: SUBSCRIBER_QUEUE_BYTES }));
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
      },
    });
  },
});
