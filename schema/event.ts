/**
 * The daemon's event stream (`GET /api/v1/events`, server-sent events): a VM changed state, was
 * deleted, or its workload changed health. One schema for the daemon, `volar events` and the
 * OpenAPI document.
 *
 * @module
 */
import { z } from "zod";
import { VmRecord, VmState } from "./vm.ts";

/** A VM changed state (`from` is null when it was just created). */
export const VmStateEvent = z.object({
  type: z.literal("vm.state"),
  name: z.string(),
  from: VmState.nullable(),
  to: VmState,
  at: z.string().describe("RFC 3339 time of the change"),
  vm: VmRecord,
});

/** A VM was deleted; `vm` is its last record. */
export const VmDeletedEvent = z.object({
  type: z.literal("vm.deleted"),
  name: z.string(),
  at: z.string(),
  vm: VmRecord,
});

/** The workload kestrel supervises became healthy or unhealthy, restarted, or failed. */
export const VmWorkloadEvent = z.object({
  type: z.literal("vm.workload"),
  name: z.string(),
  change: z.enum(["healthy", "unhealthy", "restarted", "failed"]),
  at: z.string(),
  workload: z.object({
    state: z.string(),
    healthy: z.boolean(),
    restarts: z.number().int(),
    checked_at: z.string(),
    error: z.string().nullable(),
  }),
});

/** One event of the stream. */
export const VmEvent = z.discriminatedUnion("type", [
  VmStateEvent,
  VmDeletedEvent,
  VmWorkloadEvent,
]);
/** One event of the stream. */
export type VmEvent = z.infer<typeof VmEvent>;

/**
 * The last event of a stream the daemon ends itself: a subscriber that reads too slowly is
 * dropped (its queue is bounded) rather than buffered without limit.
 */
export const StreamError = z.object({
  type: z.literal("stream.error"),
  code: z.enum(["slow_consumer"]),
  message: z.string(),
  at: z.string(),
});
/** {@linkcode StreamError}. */
export type StreamError = z.infer<typeof StreamError>;

/** Query of `GET /api/v1/events`. */
export const EventsQuery = z.strictObject({
  vm: z.string().optional().describe("Only this VM's events"),
});
