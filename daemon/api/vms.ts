/** VM routes: list, create, get, delete, start, stop, restart, wait, network policy. @module */
import { VmCreateRequest, VmList, VmRecord, WaitQuery } from "../../schema/mod.ts";
import { SetVmNetworkPolicy } from "../../schema/operation.ts";
import { defineRoute, type Route } from "./route.ts";

/** `GET /api/v1/vms` */
export const listVms: Route = defineRoute({
  method: "GET",
  path: "/api/v1/vms",
  operationId: "listVms",
  summary: "List VMs",
  status: 200,
  response: VmList,
  handle: ({ deps }) => ({ vms: deps.service.list() }),
});

/** `POST /api/v1/vms` */
export const createVm: Route = defineRoute({
  method: "POST",
  path: "/api/v1/vms",
  operationId: "createVm",
  summary: "Create and boot a VM (returns in state starting)",
  body: VmCreateRequest,
  status: 201,
  response: VmRecord,
  handle: ({ body, deps }) => deps.service.create(body),
});

/** `GET /api/v1/vms/:name` */
export const getVm: Route = defineRoute({
  method: "GET",
  path: "/api/v1/vms/:name",
  operationId: "getVm",
  summary: "Get a VM",
  status: 200,
  response: VmRecord,
  handle: ({ params, deps }) => deps.service.get(params.name!),
});

/** `DELETE /api/v1/vms/:name` */
export const deleteVm: Route = defineRoute({
  method: "DELETE",
  path: "/api/v1/vms/:name",
  operationId: "deleteVm",
  summary: "Delete a VM (stopping it first); returns its last record",
  status: 200,
  response: VmRecord,
  handle: ({ params, deps }) => deps.service.delete(params.name!),
});

/** `POST /api/v1/vms/:name/start` */
export const startVm: Route = defineRoute({
  method: "POST",
  path: "/api/v1/vms/:name/start",
  operationId: "startVm",
  summary: "Start a stopped or crashed VM (returns in state starting)",
  status: 200,
  response: VmRecord,
  handle: ({ params, deps }) => deps.service.start(params.name!),
});

/** `POST /api/v1/vms/:name/stop` */
export const stopVm: Route = defineRoute({
  method: "POST",
  path: "/api/v1/vms/:name/stop",
  operationId: "stopVm",
  summary: "Stop a VM: power button, then SIGTERM, then SIGKILL (returns in state stopped)",
  status: 200,
  response: VmRecord,
  handle: ({ params, deps }) => deps.service.stop(params.name!),
});

/** `POST /api/v1/vms/:name/restart` */
export const restartVm: Route = defineRoute({
  method: "POST",
  path: "/api/v1/vms/:name/restart",
  operationId: "restartVm",
  summary: "Stop (when running) and start a VM (returns in state starting)",
  status: 200,
  response: VmRecord,
  handle: ({ params, deps }) => deps.service.restart(params.name!),
});

/** `GET /api/v1/vms/:name/wait` */
export const waitVm: Route = defineRoute({
  method: "GET",
  path: "/api/v1/vms/:name/wait",
  operationId: "waitVm",
  summary: "Wait until a VM is in a state (timeout error when not in time; invalid_state when " +
    "the state can no longer follow without a request)",
  query: WaitQuery,
  status: 200,
  response: VmRecord,
  handle: ({ params, query, deps }) =>
    deps.service.wait(params.name!, query.state, query.timeout_ms),
});

/** `PUT /api/v1/vms/:name/network-policy` (also the MCP tool `vm_network_policy`). */
export const setVmNetworkPolicy: Route = defineRoute({
  ...SetVmNetworkPolicy,
  handle: ({ params, body, deps }) => deps.service.setNetworkPolicy(params.name!, body),
});
