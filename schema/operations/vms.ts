/**
 * VM operations: list, create, get, delete, start, stop, restart, wait, network policy.
 *
 * @module
 */
import { z } from "zod";
import { WaitQuery } from "../api.ts";
import { NetworkPolicy } from "../network_policy.ts";
import { defineOperation } from "../operation.ts";
import { VmCreateRequest, VmList, VmRecord } from "../vm.ts";
import { ByVm } from "./_params.ts";

/** `GET /api/v1/vms` */
export const ListVms = defineOperation({
  operationId: "listVms",
  method: "GET",
  path: "/api/v1/vms",
  summary: "List VMs",
  status: 200,
  response: VmList,
  errors: [],
  access: "read",
  mcp: {
    tool: "vm_list",
    title: "List VMs",
    description: "Every VM with its state, address, plugin or image, and workload health",
  },
});

/** `POST /api/v1/vms` */
export const CreateVm = defineOperation({
  operationId: "createVm",
  method: "POST",
  path: "/api/v1/vms",
  summary: "Create and boot a VM (returns in state starting)",
  body: VmCreateRequest,
  status: 201,
  response: VmRecord,
  errors: [
    "invalid_argument",
    "already_exists",
    "not_found",
    "ip_unavailable",
    "ip_pool_exhausted",
    "kernel_not_found",
    "signature_rejected",
    "checksum_mismatch",
    "artifact_unavailable",
    "unsupported",
    "network_error",
    "hypervisor_unavailable",
    "vmm_failed",
  ],
  access: "admin",
  mcp: {
    tool: "vm_create",
    title: "Create a VM",
    description: "Create and boot a microVM (a plugin's workload, an OCI image, or kestrel " +
      "alone); answers once its VMM runs (state starting) — use vm_wait for running",
  },
});

/** `GET /api/v1/vms/:name` */
export const GetVm = defineOperation({
  operationId: "getVm",
  method: "GET",
  path: "/api/v1/vms/:name",
  summary: "Get a VM",
  params: ByVm,
  status: 200,
  response: VmRecord,
  errors: ["invalid_argument", "not_found"],
  access: "read",
  mcp: {
    tool: "vm_get",
    title: "Show a VM",
    description: "One VM's record: state, IP, MAC, ports, hypervisor, KVM, workload, last error",
  },
});

/** `DELETE /api/v1/vms/:name` */
export const DeleteVm = defineOperation({
  operationId: "deleteVm",
  method: "DELETE",
  path: "/api/v1/vms/:name",
  summary: "Delete a VM (stopping it first); returns its last record",
  params: ByVm,
  status: 200,
  response: VmRecord,
  errors: ["invalid_argument", "not_found", "vmm_failed", "network_error"],
  access: "admin",
  mcp: {
    tool: "vm_delete",
    title: "Delete a VM",
    description: "Stop it and free its address, tap, ports, disks and logs",
    destructive: true,
  },
});

const lifecycleErrors = [
  "invalid_argument",
  "not_found",
  "invalid_state",
  "kernel_not_found",
  "ip_unavailable",
  "network_error",
  "hypervisor_unavailable",
  "vmm_failed",
] as const;

/** `POST /api/v1/vms/:name/start` */
export const StartVm = defineOperation({
  operationId: "startVm",
  method: "POST",
  path: "/api/v1/vms/:name/start",
  summary: "Start a stopped or crashed VM (returns in state starting)",
  params: ByVm,
  status: 200,
  response: VmRecord,
  errors: lifecycleErrors,
  access: "admin",
  mcp: { tool: "vm_start", title: "Start a VM", description: "Start a stopped or crashed VM" },
});

/** `POST /api/v1/vms/:name/stop` */
export const StopVm = defineOperation({
  operationId: "stopVm",
  method: "POST",
  path: "/api/v1/vms/:name/stop",
  summary: "Stop a VM: power button, then SIGTERM, then SIGKILL (returns in state stopped)",
  params: ByVm,
  status: 200,
  response: VmRecord,
  errors: ["invalid_argument", "not_found", "invalid_state", "vmm_failed", "network_error"],
  access: "admin",
  mcp: {
    tool: "vm_stop",
    title: "Stop a VM",
    description: "Power button, then SIGTERM, then SIGKILL",
  },
});

/** `POST /api/v1/vms/:name/restart` */
export const RestartVm = defineOperation({
  operationId: "restartVm",
  method: "POST",
  path: "/api/v1/vms/:name/restart",
  summary: "Stop (when running) and start a VM (returns in state starting)",
  params: ByVm,
  status: 200,
  response: VmRecord,
  errors: lifecycleErrors,
  access: "admin",
  mcp: { tool: "vm_restart", title: "Restart a VM", description: "Stop, then start" },
});

/** `GET /api/v1/vms/:name/wait` */
export const WaitVm = defineOperation({
  operationId: "waitVm",
  method: "GET",
  path: "/api/v1/vms/:name/wait",
  summary: "Wait until a VM is in a state (timeout error when not in time; invalid_state when " +
    "the state can no longer follow without a request)",
  params: ByVm,
  query: WaitQuery,
  status: 200,
  response: VmRecord,
  errors: ["invalid_argument", "not_found", "invalid_state", "timeout", "daemon_unreachable"],
  access: "read",
  mcp: {
    tool: "vm_wait",
    title: "Wait for a VM's state",
    description: "Wait until the VM is in a state (default running), up to timeout_ms",
  },
});

/** `PUT /api/v1/vms/:name/network-policy` */
export const SetVmNetworkPolicy = defineOperation({
  operationId: "setVmNetworkPolicy",
  method: "PUT",
  path: "/api/v1/vms/:name/network-policy",
  summary: "Replace a running VM's network policy (egress, allowed destinations, peers that " +
    "may reach it, host ports); it applies at once, all or nothing",
  params: ByVm,
  body: z.strictObject(NetworkPolicy.shape),
  status: 200,
  response: VmRecord,
  errors: ["invalid_argument", "not_found", "invalid_state", "network_error"],
  access: "admin",
  mcp: { tool: "vm_network_policy", title: "Set a VM's network policy" },
});
