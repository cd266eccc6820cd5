/**
 * One AG-UI run (`POST /api/v1/agui`) as server-sent events encoded by `@ag-ui/encoder`:
 *
 * 1. `RUN_STARTED`;
 * 2. `STATE_SNAPSHOT` of the fleet ({@linkcode fleetState});
 * 3. per call of `forwardedProps.calls`, in order: `TOOL_CALL_START`, `TOOL_CALL_ARGS` (the
 *    arguments as JSON), `TOOL_CALL_END`, then `TOOL_CALL_RESULT` whose content is the tool's
 *    answer as JSON, or its error (`{code, message, details}`) — each call runs through the MCP
 *    server's tool runner ({@linkcode callTool}), so a read-only token cannot change state;
 * 4. `STATE_DELTA`s (RFC 6902 JSON Patch) as the daemon's events come, bursts coalesced, from
 *    the snapshot until `forwardedProps.follow_ms` has passed after the calls;
 * 5. `RUN_FINISHED`, after a last delta.
 *
 * Like the event stream, a run buffers a bounded queue for its client: one that reads slower
 * than the fleet changes gets `RUN_ERROR` (`slow_consumer`) and is dropped. A run whose daemon
 * stops ends with `RUN_ERROR` (`shutting_down`); one whose client goes away just stops (a call
 * under way is signalled to stop).
 *
 * @module
 */
import { type Event as AguiEvent, EventType } from "@ag-ui/core";
import { EventEncoder } from "@ag-ui/encoder";
import { VolantError } from "../../schema/mod.ts";
import type { AguiCall, AguiRunInput } from "../../schema/operations/mod.ts";
import type { Caller } from "../api/access.ts";
import { boundedStream } from "../api/bounded_stream.ts";
import { errorResponse } from "../api/errors.ts";
import { KEEPALIVE_MS, SUBSCRIBER_QUEUE_BYTES } from "../api/event_stream.ts";
import type { ApiDeps } from "../api/route.ts";
import { callTool, type McpTool, mcpTools } from "../mcp/tools.ts";
import { fleetState } from "./fleet_state.ts";
import { type Json, jsonDiff } from "./json_patch.ts";

/** Milliseconds a burst of the daemon's events is gathered into one `STATE_DELTA`. */
export const AGUI_COALESCE_MS = 50;

/** Options of {@linkcode aguiRun}. */
export interface AguiRunOptions {
  /** The run's input, validated (`POST /api/v1/agui`'s body). */
  input: AguiRunInput;
  /** The app's dependencies (the VM service, its events, the logger; the tools use them all). */
  deps: ApiDeps;
  /** Who runs it: each call is checked against its scope. */
  caller: Caller;
  /** Bytes queued for the client at most; default the event stream's bound. */
  queueBytes?: number;
  /** Milliseconds events are coalesced into one delta; default {@linkcode AGUI_COALESCE_MS}. */
  coalesceMs?: number;
}

/** A call with its tool, resolved before the run starts. */
interface ResolvedCall {
  tool: McpTool;
  arguments: Record<string, unknown>;
}

/**
 * The tools of `calls`; an unknown one is `invalid_argument` naming its field
 * (`forwardedProps.calls.<i>.tool`), before anything runs.
 */
function resolveCalls(calls: readonly AguiCall[]): ResolvedCall[] {
  const tools = mcpTools();
  const issues: Array<{ field: string; message: string }> = [];
  const resolved = calls.flatMap((call, i) => {
    const tool = tools.find((t) => t.name === call.tool);
    if (tool) return [{ tool, arguments: call.arguments }];
    issues.push({
      field: `forwardedProps.calls.${i}.tool`,
      message: `unknown tool ${
        JSON.stringify(call.tool)
      } (the tools are those of /mcp's tools/list)`,
    });
    return [];
  });
  if (issues.length > 0) {
    const text = issues.map((i) => `${i.field}: ${i.message}`).join("; ");
    throw new VolantError("invalid_argument", `Invalid input: ${text}`, { issues });
  }
  return resolved;
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/**
 * The `text/event-stream` response of one AG-UI run. Throws (before any event) an
 * `invalid_argument` error when a call names no tool of volantd.
 *
 * @example
 * ```ts ignore
 * import { aguiRun } from "./run.ts";
 * const res = aguiRun({ input, deps, caller });
 * ```
 */
export function aguiRun(options: AguiRunOptions): Response {
  const { input, deps, caller } = options;
  const calls = resolveCalls(input.forwardedProps.calls);
  const coalesceMs = options.coalesceMs ?? AGUI_COALESCE_MS;
  const events = deps.service.events;
  const encoder = new EventEncoder();
  /** Aborted when the run ends, however it ends: stops a call under way and the follow wait. */
  const stopped = new AbortController();
  /** The state the client holds (after the last snapshot or delta sent). */
  let state: Json = null;
  /** Whether deltas go out as the fleet changes (once the client has read the snapshot). */
  let live = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let keepalive: ReturnType<typeof setInterval> | undefined;
  let off = () => {};
  const onClosing = () =>
    fail("shutting_down", "volantd is shutting down; run again once it is back");
  const stream = boundedStream({
    queueBytes: options.queueBytes ?? SUBSCRIBER_QUEUE_BYTES,
    onEnd() {
      off();
      clearTimeout(timer);
      clearInterval(keepalive);
      events.closing.removeEventListener("abort", onClosing);
      stopped.abort();
    },
  });

  const encode = (event: AguiEvent) => encoder.encodeSSE(event);
  const send = (event: AguiEvent) => stream.enqueue(encode(event));

  /** Ends the run with `RUN_ERROR` (past any bound: it is the last event). */
  function fail(code: string, message: string): void {
    stream.end(encode({ type: EventType.RUN_ERROR, code, message }));
  }

  /** Sends what changed since the state the client holds, if anything did. */
  function flush(): void {
    clearTimeout(timer);
    timer = undefined;
    if (!live || stream.ended) return;
    const next = fleetState(deps) as unknown as Json;
    const delta = jsonDiff(state, next);
    if (delta.length === 0) return;
    if (stream.full) {
      deps.logger.warn("agui run dropped", { reason: "slow_consumer", run: input.runId });
      return fail(
        "slow_consumer",
        `This client read too slowly: more than ${
          options.queueBytes ?? SUBSCRIBER_QUEUE_BYTES
        } bytes of events were waiting for it; run again for a fresh snapshot`,
      );
    }
    state = next;
    send({ type: EventType.STATE_DELTA, delta });
  }

  /** One call: its events, and its answer or error as the result. */
  async function runCall(call: ResolvedCall, parentMessageId: string): Promise<void> {
    const toolCallId = crypto.randomUUID();
    await stream.room();
    if (stream.ended) return;
    send({
      type: EventType.TOOL_CALL_START,
      toolCallId,
      toolCallName: call.tool.name,
      parentMessageId,
    });
    send({
      type: EventType.TOOL_CALL_ARGS,
      toolCallId,
      delta: JSON.stringify(call.arguments),
    });
    send({ type: EventType.TOOL_CALL_END, toolCallId });
    let answer: unknown;
    try {
      answer = await callTool(call.tool, call.arguments, { deps, caller, signal: stopped.signal });
    } catch (err) {
      answer = errorResponse(err).body;
      deps.logger.info("agui tool failed", {
        tool: call.tool.name,
        code: err instanceof VolantError ? err.code : "internal",
      });
    }
    await stream.room();
    send({
      type: EventType.TOOL_CALL_RESULT,
      messageId: crypto.randomUUID(),
      toolCallId,
      content: JSON.stringify(answer ?? null),
      role: "tool",
    });
  }

  async function run(): Promise<void> {
    const { threadId, runId } = input;
    send({ type: EventType.RUN_STARTED, threadId, runId });
    // Listening before the snapshot is taken: no change falls between the two.
    off = events.subscribe(() => {
      timer ??= setTimeout(flush, coalesceMs);
    });
    state = fleetState(deps) as unknown as Json;
    send({ type: EventType.STATE_SNAPSHOT, snapshot: state });
    // Deltas from when the client has read the snapshot: a large one is no slow reader.
    await stream.room();
    if (stream.ended) return;
    live = true;
    flush();
    keepalive = setInterval(() => {
      if (!stream.full) stream.enqueue(": keep-alive\n\n");
    }, KEEPALIVE_MS);
    const parentMessageId = crypto.randomUUID();
    for (const call of calls) {
      if (stream.ended) return;
      await runCall(call, parentMessageId);
    }
    await wait(input.forwardedProps.follow_ms, stopped.signal);
    flush();
    stream.end(encode({ type: EventType.RUN_FINISHED, threadId, runId }));
  }

  events.closing.addEventListener("abort", onClosing);
  if (events.closing.aborted) onClosing();
  else {
    run().catch((err) => {
      const { body } = errorResponse(err);
      deps.logger.error("agui run failed", { run: input.runId, error: err });
      fail(body.code, body.message);
    });
  }
  return new Response(stream.body, {
    headers: { "content-type": encoder.getContentType(), "cache-control": "no-store" },
  });
}
