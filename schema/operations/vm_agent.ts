/**
 * Operations that reach kestrel inside a VM through volantd — a manifest action, the
 * workload's logs, a passthrough to kestrel's API — and the VM's serial console. Their REST
 * answers are streams or passed through; the tools `vm_action` and `vm_logs` are their bounded,
 * non-streaming forms.
 *
 * @module
 */
import { z } from "zod";
import { GuestStats, LogLine } from "../agent.ts";
import { ConsoleInfo } from "../api.ts";
import { defineOperation } from "../operation.ts";
import { VmName } from "../vm.ts";
import { ByVm } from "./_params.ts";

const agentErrors = [
  "invalid_argument",
  "not_found",
  "invalid_state",
  "agent_unreachable",
] as const;

/** What the tool `vm_action` answers: the workload's status and body. */
export const ActionAnswer = z.object({
  status: z.number().int().describe("The workload's HTTP status"),
  body: z.string().describe("The workload's answer, as text"),
});

/** `POST /api/v1/vms/:name/actions/:action` */
export const CallAction = defineOperation({
  operationId: "callAction",
  method: "POST",
  path: "/api/v1/vms/:name/actions/:action",
  summary: "Run a manifest action: kestrel calls the workload with the action's method and path",
  params: z.strictObject({
    name: VmName.describe("The VM's name"),
    action: z.string().min(1).describe("The action's name (see the plugin's actions)"),
  }),
  rawBody: { accepts: ["*/*"], description: "Request body passed to the workload" },
  status: 200,
  response: z.unknown().describe("The workload's answer, passed through"),
  stream: {
    kind: "passthrough",
    description: "The workload's answer: its status, content type and body as they are",
  },
  errors: agentErrors,
  access: "admin",
  mcp: {
    tool: "vm_action",
    title: "Run a manifest action",
    description:
      "Run one of the plugin's actions in the VM; the workload's answer comes back as text",
    output: ActionAnswer,
  },
});

/** Query of `GET /api/v1/vms/:name/logs` (what kestrel's `/v1/logs` takes). */
export const LogsQuery = z.object({
  follow: z.enum(["0", "1", "true", "false"]).optional().describe("1: keep streaming new lines"),
  tail: z.coerce.number({ error: "must be a number of lines" }).int().min(0).max(1_000_000)
    .optional().describe("Only the last N lines (default all kestrel keeps)"),
  since: z.coerce.number({ error: "must be a sequence number" }).int().min(0).optional()
    .describe("Only lines after this sequence number"),
});

/** What the tool `vm_logs` answers. */
export const LogTail = z.object({ lines: z.array(LogLine) });

/** `GET /api/v1/vms/:name/logs` */
export const VmLogs = defineOperation({
  operationId: "vmLogs",
  method: "GET",
  path: "/api/v1/vms/:name/logs",
  summary: "The workload's output as NDJSON lines ({seq, time, stream, line}); follow=1 streams",
  params: ByVm,
  query: LogsQuery,
  status: 200,
  response: LogLine,
  stream: {
    kind: "ndjson",
    description: "application/x-ndjson, one line each; with follow=1 the answer stays open and " +
      "carries each new line until the client goes away",
  },
  errors: agentErrors,
  access: "read",
  mcp: {
    tool: "vm_logs",
    title: "Read a VM's workload output",
    description:
      "The last lines of the workload's output (stdout and stderr) as kestrel keeps them",
    omit: ["follow"],
    defaults: { tail: 100 },
    output: LogTail,
  },
});

/** `GET /api/v1/vms/:name/console` (WebSocket) */
export const VmConsole = defineOperation({
  operationId: "vmConsole",
  method: "GET",
  path: "/api/v1/vms/:name/console",
  summary: "Attach to the VM's serial console: a WebSocket carrying raw bytes both ways " +
    "(one client at a time)",
  params: ByVm,
  status: 200,
  response: ConsoleInfo.describe(
    "Without `Upgrade: websocket`: whether the console can be attached now (the same checks " +
      "and errors as the upgrade, which answers 101 Switching Protocols instead)",
  ),
  stream: {
    kind: "websocket",
    description: "With Upgrade: websocket, 101 and then the serial console's bytes both ways, " +
      "until either side closes or the VM stops",
  },
  errors: ["invalid_argument", "not_found", "invalid_state", "unsupported", "vmm_failed"],
  // A root shell in the guest: admin tokens only, even to ask whether it is attachable.
  access: "admin",
  mcp: {
    restOnly: "An interactive byte stream (a root shell) over a WebSocket; a tool call " +
      "carries one request and one answer",
  },
});

/** `ANY /api/v1/vms/:name/agent/*` */
export const AgentProxy = defineOperation({
  operationId: "agentProxy",
  method: "ANY",
  path: "/api/v1/vms/:name/agent/*",
  summary: "Pass a request through to kestrel's API in the VM (e.g. agent/healthz, agent/v1/...)",
  params: z.strictObject({
    name: VmName.describe("The VM's name"),
    path: z.string().describe("The rest of the path, passed through"),
  }),
  rawBody: { accepts: ["*/*"], description: "Request body passed to kestrel" },
  status: 200,
  response: z.unknown(),
  stream: {
    kind: "passthrough",
    description: "kestrel's answer: its status, content type and body as they are",
  },
  errors: agentErrors,
  access: "by_method",
  mcp: {
    restOnly: "Any method and path of kestrel's API, bodies of any type; vm_action and " +
      "vm_logs are the bounded forms agents get",
  },
});

/** `GET /api/v1/vms/:name/stats` */
export const GetVmStats = defineOperation({
  operationId: "getVmStats",
  method: "GET",
  path: "/api/v1/vms/:name/stats",
  summary: "The guest's memory now (in use = MemTotal − MemAvailable) and kestrel's resident " +
    "memory split into anonymous, file-backed and shared, read in the guest when asked",
  params: ByVm,
  status: 200,
  response: GuestStats,
  errors: agentErrors,
  access: "read",
  mcp: {
    tool: "vm_stats",
    title: "A VM's memory",
    description: "Guest memory in use and kestrel's RSS (anonymous, file-backed, shared), now",
  },
});
