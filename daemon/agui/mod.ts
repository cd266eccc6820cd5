/**
 * volantd's AG-UI endpoint (`POST /api/v1/agui`, https://docs.ag-ui.com): a run streams the
 * fleet's state to an AG-UI front-end — a `STATE_SNAPSHOT` of `{vms, deployments}`, then
 * `STATE_DELTA`s (JSON Patch) as it changes — and makes the tool calls of its
 * `forwardedProps.calls` with the MCP server's tool runner, each as `TOOL_CALL_*` events.
 *
 * ```ts ignore
 * import { HttpAgent } from "@ag-ui/client";
 * const agent = new HttpAgent({ url: "http://127.0.0.1:7777/api/v1/agui", headers });
 * await agent.runAgent({ forwardedProps: { follow_ms: 10_000 } });
 * console.log(agent.state.vms);
 * ```
 *
 * @module
 */
export { runAgui } from "./handler.ts";
export { AGUI_COALESCE_MS, aguiRun, type AguiRunOptions } from "./run.ts";
export { type FleetState, fleetState } from "./fleet_state.ts";
export { type Json, jsonDiff, jsonEqual, type JsonPatchOp } from "./json_patch.ts";
