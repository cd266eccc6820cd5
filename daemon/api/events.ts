/**
 * `GET /api/v1/events`: the VM event stream as server-sent events (`event: vm.state`,
 * `id: <n>`, `data: <json>`), from the moment the client connects, with a comment every 15 s
 * to keep idle connections open, until the client goes away.
 *
 * @module
 */
import { EventsQuery, VmEvent } from "../../schema/event.ts";
import { defineRoute, type Route } from "./route.ts";

/** Seconds between keep-alive comments. */
export const KEEPALIVE_MS = 15_000;

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
        const send = (text: string) => {
          try {
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
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
      },
    });
  },
});
