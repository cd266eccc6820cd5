/**
 * The daemon's event stream (`GET /api/v1/events`, server-sent events): every change the daemon
 * makes, each a row of its event log with a durable id. One schema for the daemon, `volar events`
 * and the OpenAPI document.
 *
 * Every event has `id` (durable and increasing: the SSE `id:`, what `Last-Event-ID` and `?since=`
 * name), `type` (`<kind>.<change>`: `vm.state`, `plugin.installed`, `image.pulled`, `snapshot.created`, …), `name`
 * (the name of what changed: a VM, plugin or image reference) and `at` (RFC 3339), plus the
 * kind's own payload (the record after the change, or its last record when it went away).
 *
 * @module
 */
import { z } from "zod";
import { VmRecord, VmState } from "./vm.ts";
import { PluginRecord } from "./plugin.ts";
import { ImageRecord } from "./image.ts";
import { DeploymentRecord } from "./deployment.ts";
import { SnapshotRecord } from "./snapshot.ts";

/** An event's durable id: increasing, never reused (also after pruning). */
export const EventId = z.number().int().positive().describe(
  "Durable event id: increasing, never reused; the SSE id (resume with Last-Event-ID or ?since=)",
);

const at = z.string().describe("RFC 3339 time of the change");

/** A VM changed state (`from` is null when it was just created). */
export const VmStateEvent = z.object({
  id: EventId,
  type: z.literal("vm.state"),
  name: z.string(),
  from: VmState.nullable(),
  to: VmState,
  at,
  vm: VmRecord,
});

/** A VM was deleted; `vm` is its last record. */
export const VmDeletedEvent = z.object({
  id: EventId,
  type: z.literal("vm.deleted"),
  name: z.string(),
  at,
  vm: VmRecord,
});

/** The workload kestrel supervises became healthy or unhealthy, restarted, or failed. */
export const VmWorkloadEvent = z.object({
  id: EventId,
  type: z.literal("vm.workload"),
  name: z.string(),
  change: z.enum(["healthy", "unhealthy", "restarted", "failed"]),
  at,
  workload: z.object({
    state: z.string(),
    healthy: z.boolean(),
    restarts: z.number().int(),
    checked_at: z.string(),
    error: z.string().nullable(),
  }),
});

/** The changes a plugin event reports. */
export const PluginEventType = z.enum([
  "plugin.installed",
  "plugin.enabled",
  "plugin.disabled",
  "plugin.removed",
]);
/** {@linkcode PluginEventType}. */
export type PluginEventType = z.infer<typeof PluginEventType>;

/** A plugin was installed, enabled, disabled or removed; `plugin` is its record (the last one when removed). */
export const PluginEvent = z.object({
  id: EventId,
  type: PluginEventType,
  name: z.string(),
  at,
  plugin: PluginRecord,
});

/** The changes an image event reports. */
export const ImageEventType = z.enum(["image.pulled", "image.removed"]);
/** {@linkcode ImageEventType}. */
export type ImageEventType = z.infer<typeof ImageEventType>;

/**
 * An image was pulled (or imported from a local source) or removed; `name` is the reference it
 * was pulled as, `image` its record (the last one when removed).
 */
export const ImageEvent = z.object({
  id: EventId,
  type: ImageEventType,
  name: z.string(),
  at,
  image: ImageRecord,
});

/** The changes a snapshot event reports. */
export const SnapshotEventType = z.enum(["snapshot.created", "snapshot.deleted"]);
/** {@linkcode SnapshotEventType}. */
export type SnapshotEventType = z.infer<typeof SnapshotEventType>;

/**
 * A snapshot was taken (of `snapshot.vm`, by `vms snapshot` or a clone) or deleted; `name` is
 * the snapshot's, `snapshot` its record (the last one when deleted).
 */
export const SnapshotEvent = z.object({
  id: EventId,
  type: SnapshotEventType,
  name: z.string(),
  at,
  snapshot: SnapshotRecord,
});
/** {@linkcode SnapshotEvent}. */
export type SnapshotEvent = z.infer<typeof SnapshotEvent>;

/** The changes a deployment event reports. */
export const DeploymentEventType = z.enum([
  "deployment.created",
  "deployment.scaled",
  "deployment.updated",
  "deployment.deleting",
  "deployment.deleted",
]);
/** {@linkcode DeploymentEventType}. */
export type DeploymentEventType = z.infer<typeof DeploymentEventType>;

/**
 * A deployment was created, scaled, updated (its template or max_unavailable), began deleting
 * or was deleted; `deployment` is its record after the change (the last one when deleted).
 */
export const DeploymentEvent = z.object({
  id: EventId,
  type: DeploymentEventType,
  name: z.string(),
  at,
  deployment: DeploymentRecord,
});
/** {@linkcode DeploymentEvent}. */
export type DeploymentEvent = z.infer<typeof DeploymentEvent>;

/**
 * The reconciler acted on a replica (`name` is the deployment): created, replaced (rolling
 * update), restarted (unhealthy too long, or stopped), removed (scale down), or an action on it
 * failed (`message` says why; it is retried with backoff).
 */
export const DeploymentReplicaEvent = z.object({
  id: EventId,
  type: z.literal("deployment.replica"),
  name: z.string(),
  at,
  replica: z.string(),
  change: z.enum(["created", "replaced", "restarted", "started", "removed", "failed"]),
  message: z.string().nullable(),
});
/** {@linkcode DeploymentReplicaEvent}. */
export type DeploymentReplicaEvent = z.infer<typeof DeploymentReplicaEvent>;

/** One VM event of the stream. */
export const VmEvent = z.discriminatedUnion("type", [
  VmStateEvent,
  VmDeletedEvent,
  VmWorkloadEvent,
]);
/** One VM event of the stream. */
export type VmEvent = z.infer<typeof VmEvent>;
/** {@linkcode PluginEvent}. */
export type PluginEvent = z.infer<typeof PluginEvent>;
/** {@linkcode ImageEvent}. */
export type ImageEvent = z.infer<typeof ImageEvent>;

/** Any event of the stream. */
export const VolantEvent = z.discriminatedUnion("type", [
  VmStateEvent,
  VmDeletedEvent,
  VmWorkloadEvent,
  PluginEvent,
  ImageEvent,
  DeploymentEvent,
  DeploymentReplicaEvent,
  SnapshotEvent,
]);
/** Any event of the stream. */
export type VolantEvent = z.infer<typeof VolantEvent>;

/** `Omit` over each member of a union. */
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event before it is recorded: the event log gives it its id. */
export type NewEvent = OmitEach<VolantEvent, "id">;
/** A VM event before it is recorded. */
export type NewVmEvent = OmitEach<VmEvent, "id">;

/**
 * The last event of a stream the daemon ends itself: `slow_consumer` (a subscriber that reads
 * too slowly is dropped rather than buffered without limit), `events_expired` (the id it resumes
 * from is older than what retention keeps: events after it were pruned) or `events_unknown` (the
 * id is newer than any event this daemon recorded: its event log was reset).
 */
export const StreamError = z.object({
  type: z.literal("stream.error"),
  code: z.enum(["slow_consumer", "events_expired", "events_unknown"]),
  message: z.string(),
  at: z.string(),
  oldest_id: z.number().int().nullable().optional().describe(
    "events_expired, events_unknown: the oldest event id still kept (null: none is kept)",
  ),
  latest_id: z.number().int().optional().describe(
    "events_expired, events_unknown: the newest event id recorded (0: none yet)",
  ),
});
/** {@linkcode StreamError}. */
export type StreamError = z.infer<typeof StreamError>;

/** Query of `GET /api/v1/events`. */
export const EventsQuery = z.strictObject({
  vm: z.string().optional().describe("Only this VM's events (vm.*)"),
  since: z.string().regex(/^[0-9]{1,15}$/, "expected an event id (a whole number)").optional()
    .describe(
      "Replay the events after this id, then follow (0: every event kept); the Last-Event-ID " +
        "header, when sent, wins",
    ),
});

/**
 * An event id as a client sent it (`Last-Event-ID`, `?since=`), or `null` when it is not one: a
 * whole number of at most 15 digits.
 *
 * @example
 * ```ts
 * import { parseEventId } from "./event.ts";
 * console.assert(parseEventId("42") === 42 && parseEventId("4x") === null);
 * ```
 */
export function parseEventId(text: string): number | null {
  const trimmed = text.trim();
  return /^[0-9]{1,15}$/.test(trimmed) ? Number(trimmed) : null;
}
