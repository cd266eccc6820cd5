/**
 * The AG-UI endpoint (https://docs.ag-ui.com): one run of the AG-UI protocol, for front-ends
 * that render and drive the fleet. The body is AG-UI's `RunAgentInput` (checked with
 * `@ag-ui/core`'s own schema, closed like every body of this API); volantd reads its
 * `forwardedProps` ({@linkcode AguiForwardedProps}) and answers AG-UI events as server-sent
 * events. REST only: a stream is no MCP tool, and its calls are MCP tools already.
 *
 * @module
 */
import { z } from "zod";
import { EventSchema, RunAgentInputSchema } from "@ag-ui/core/schemas";
import { defineOperation } from "../operation.ts";

/** Tool calls one run may make at most. */
export const AGUI_MAX_CALLS = 16;

/** The longest a run follows the fleet after its calls (one hour). */
export const AGUI_MAX_FOLLOW_MS = 3_600_000;

/** One tool call of a run: an MCP tool of volantd and its arguments. */
export const AguiCall = z.strictObject({
  tool: z.string().min(1).describe("An MCP tool of volantd (vm_create, vm_list, …; see /mcp)"),
  arguments: z.record(z.string(), z.unknown()).default({})
    .describe("The tool's arguments, as an MCP tools/call takes them"),
});
/** One tool call of a run. */
export type AguiCall = z.output<typeof AguiCall>;

/** What volantd reads of a run's `forwardedProps`. */
export const AguiForwardedProps = z.strictObject({
  calls: z.array(AguiCall).max(AGUI_MAX_CALLS).default([])
    .describe(
      "Tool calls to make, in order, after the state snapshot (each a TOOL_CALL_START, ARGS, " +
        "END and RESULT; state-changing tools need an admin token)",
    ),
  follow_ms: z.number().int().min(0).max(AGUI_MAX_FOLLOW_MS).default(0)
    .describe("How long to keep sending STATE_DELTAs after the calls, in ms (default 0)"),
}).prefault({});
/** What volantd reads of a run's `forwardedProps`. */
export type AguiForwardedProps = z.output<typeof AguiForwardedProps>;

/** The body of `POST /api/v1/agui`: AG-UI's `RunAgentInput`, with volantd's `forwardedProps`. */
export const AguiRunInput = z.strictObject({
  ...RunAgentInputSchema.shape,
  forwardedProps: AguiForwardedProps,
}).describe(
  "AG-UI RunAgentInput (threadId, runId, messages, tools, context, state, " +
    "forwardedProps); volantd reads forwardedProps and answers for threadId and runId",
);
/** A run's input, validated. */
export type AguiRunInput = z.output<typeof AguiRunInput>;

/** `POST /api/v1/agui` */
export const RunAgui = defineOperation({
  operationId: "runAgui",
  method: "POST",
  path: "/api/v1/agui",
  summary: "Run the AG-UI protocol (server-sent events): the fleet's state as a snapshot and " +
    "deltas, and the run's tool calls",
  body: AguiRunInput,
  status: 200,
  response: EventSchema.describe("An AG-UI event: the data of each server-sent event"),
  stream: {
    kind: "sse",
    description: "text/event-stream of AG-UI events (`data: <json>`): RUN_STARTED, " +
      "STATE_SNAPSHOT of {vms, deployments}, per call TOOL_CALL_START, TOOL_CALL_ARGS, " +
      "TOOL_CALL_END and TOOL_CALL_RESULT (the answer or the error as JSON), STATE_DELTA (JSON " +
      "Patch) as the fleet changes until follow_ms has passed, then RUN_FINISHED; RUN_ERROR " +
      "(code slow_consumer for a client that reads too slowly) ends it early",
  },
  errors: ["invalid_argument"],
  // The run reads; each call that changes state is checked against the caller's token.
  access: "read",
  mcp: {
    restOnly: "An AG-UI event stream for front-ends; its calls are MCP tools already",
  },
});
