/**
 * The event stream: server-sent events, REST only (an MCP tool call carries one answer).
 *
 * @module
 */
import { z } from "zod";
import { EventsQuery, VolantEvent } from "../event.ts";
import { defineOperation } from "../operation.ts";

/** `GET /api/v1/events` */
export const VmEvents = defineOperation({
  operationId: "vmEvents",
  method: "GET",
  path: "/api/v1/events",
  summary: "Events as server-sent events (text/event-stream): VM state changes, deletions and " +
    "workload health, deployment, plugin and image changes; replays from Last-Event-ID or ?since=, then follows",
  query: EventsQuery,
  headers: z.object({
    "Last-Event-ID": z.string().regex(/^[0-9]{1,15}$/).optional().describe(
      "Resume after this event id (what a reconnecting EventSource sends); wins over ?since=; " +
        "not a number: 400",
    ),
  }),
  status: 200,
  response: VolantEvent.describe("The data of each event"),
  stream: {
    kind: "sse",
    description: "text/event-stream: `event: <type>`, `id: <event id>`, `data: <json>` per " +
      "event (Last-Event-ID resumes), a comment every 15 s, until the client goes away; a " +
      "final stream.error event when the daemon ends the stream",
  },
  errors: ["invalid_argument"],
  access: "read",
  mcp: {
    restOnly: "An unbounded stream; agents read state with vm_list and vm_get",
  },
});
