/**
 * Routes that reach kestrel inside a VM: manifest actions, the workload's logs, and a
 * passthrough of anything under `/agent/*` to kestrel's API. Bodies and answers stream through
 * unchanged; the VM must be starting or running and hold an address.
 *
 * @module
 */
import { z } from "zod";
import { AGENT_PORT, VolantError } from "../../schema/mod.ts";
import { type ApiDeps, defineRoute, type Route } from "./route.ts";

const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "host"];

function defaultAgentFetch(ip: string, path: string, init: RequestInit): Promise<Response> {
  return fetch(`http://${ip}:${AGENT_PORT}${path}`, init);
}

/** Sends `init` to kestrel's `path` in VM `name`; maps connection failures to `agent_unreachable`. */
export async function toAgent(
  deps: ApiDeps,
  name: string,
  path: string,
  init: RequestInit,
): Promise<Response> {
  const vm = deps.service.get(name);
  if (vm.state !== "running" && vm.state !== "starting") {
    throw new VolantError(
      "invalid_state",
      `VM ${name} is ${vm.state}; start it first (volar vms start ${name})`,
      { name, state: vm.state },
    );
  }
  if (vm.ip === null) {
    throw new VolantError("invalid_state", `VM ${name} has no address to reach kestrel on`, {
      name,
    });
  }
  const headers = new Headers(init.headers);
  for (const h of HOP_BY_HOP) headers.delete(h);
  let res: Response;
  try {
    res = await (deps.agentFetch ?? defaultAgentFetch)(vm.ip, path, { ...init, headers });
  } catch (err) {
    throw new VolantError(
      "agent_unreachable",
      `kestrel in VM ${name} (${vm.ip}:${AGENT_PORT}) did not answer: ` +
        `${err instanceof Error ? err.message : err}`,
      { name, ip: vm.ip },
    );
  }
  const out = new Headers(res.headers);
  for (const h of HOP_BY_HOP) out.delete(h);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: out });
}

async function bodyOf(req: Request): Promise<BodyInit | undefined> {
  if (req.method === "GET" || req.method === "HEAD") return undefined;
  const bytes = new Uint8Array(await req.arrayBuffer());
  return bytes.length === 0 ? undefined : bytes;
}

/** `POST /api/v1/vms/:name/actions/:action` */
export const callAction: Route = defineRoute({
  method: "POST",
  path: "/api/v1/vms/:name/actions/:action",
  operationId: "callAction",
  summary: "Run a manifest action: kestrel calls the workload with the action's method and path",
  rawBody: true,
  status: 200,
  response: z.unknown().describe("The workload's answer, passed through"),
  handle: async ({ params, deps, request }) =>
    toAgent(deps, params.name!, `/v1/actions/${encodeURIComponent(params.action!)}`, {
      method: "POST",
      headers: request.headers,
      body: await bodyOf(request),
      signal: request.signal,
    }),
});

const LogsQuery = z.object({
  follow: z.enum(["0", "1", "true", "false"]).optional().describe("1: keep streaming new lines"),
  tail: z.string().regex(/^\d+$/, "must be a number of lines").optional(),
  since: z.string().regex(/^\d+$/, "must be a sequence number").optional(),
});

/** `GET /api/v1/vms/:name/logs` */
export const vmLogs: Route = defineRoute({
  method: "GET",
  path: "/api/v1/vms/:name/logs",
  operationId: "vmLogs",
  summary: "The workload's output as NDJSON lines ({seq, time, stream, line}); follow=1 streams",
  query: LogsQuery,
  status: 200,
  response: z.unknown(),
  handle: ({ params, deps, request }) => {
    const search = new URL(request.url).search;
    return toAgent(deps, params.name!, `/v1/logs${search}`, {
      method: "GET",
      signal: request.signal,
    });
  },
});

/** `ANY /api/v1/vms/:name/agent/*` */
export const agentProxy: Route = defineRoute({
  method: "ALL",
  path: "/api/v1/vms/:name/agent/*",
  operationId: "agentProxy",
  summary: "Pass a request through to kestrel's API in the VM (e.g. agent/healthz, agent/v1/...)",
  rawBody: true,
  status: 200,
  response: z.unknown(),
  handle: async ({ params, deps, request }) => {
    const url = new URL(request.url);
    const marker = `/api/v1/vms/${params.name}/agent`;
    const rest = url.pathname.slice(url.pathname.indexOf(marker) + marker.length) || "/";
    return toAgent(deps, params.name!, `${rest}${url.search}`, {
      method: request.method,
      headers: request.headers,
      body: await bodyOf(request),
      signal: request.signal,
    });
  },
});
