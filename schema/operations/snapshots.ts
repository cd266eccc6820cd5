/**
 * Snapshot operations: take one of a running VM, list, show, delete, and restore a VM to one.
 *
 * @module
 */
import { defineOperation } from "../operation.ts";
import { VmRecord } from "../vm.ts";
import {
  SnapshotCreateRequest,
  SnapshotList,
  SnapshotRecord,
  VmCloneRequest,
  VmCloneResult,
  VmRestoreRequest,
} from "../snapshot.ts";
import { BySnapshot, ByVm } from "./_params.ts";

/** `POST /api/v1/vms/:name/snapshots` */
export const CreateSnapshot = defineOperation({
  operationId: "createSnapshot",
  method: "POST",
  path: "/api/v1/vms/:name/snapshots",
  summary: "Snapshot a running VM: pause, save its memory, vCPU and device state and its " +
    "writable disks, resume (it keeps running)",
  params: ByVm,
  body: SnapshotCreateRequest,
  status: 201,
  response: SnapshotRecord,
  errors: ["invalid_argument", "not_found", "invalid_state", "already_exists", "unsupported"],
  access: "admin",
  mcp: {
    tool: "vm_snapshot",
    title: "Snapshot a VM",
    description: "Save a running VM's whole state (memory, devices, writable disks) under a " +
      "name; the VM pauses for the save and then runs on",
  },
});

/** `GET /api/v1/snapshots` */
export const ListSnapshots = defineOperation({
  operationId: "listSnapshots",
  method: "GET",
  path: "/api/v1/snapshots",
  summary: "List snapshots",
  status: 200,
  response: SnapshotList,
  errors: [],
  access: "read",
  mcp: { tool: "snapshot_list", title: "List snapshots" },
});

/** `GET /api/v1/snapshots/:snapshot` */
export const GetSnapshot = defineOperation({
  operationId: "getSnapshot",
  method: "GET",
  path: "/api/v1/snapshots/:snapshot",
  summary: "Show a snapshot: its VM, hypervisor, size and files with their checksums",
  params: BySnapshot,
  status: 200,
  response: SnapshotRecord,
  errors: ["invalid_argument", "not_found"],
  access: "read",
  mcp: { tool: "snapshot_get", title: "Show a snapshot" },
});

/** `DELETE /api/v1/snapshots/:snapshot` */
export const DeleteSnapshot = defineOperation({
  operationId: "deleteSnapshot",
  method: "DELETE",
  path: "/api/v1/snapshots/:snapshot",
  summary: "Delete a snapshot and its files; returns its last record",
  params: BySnapshot,
  status: 200,
  response: SnapshotRecord,
  errors: ["invalid_argument", "not_found", "invalid_state"],
  access: "admin",
  mcp: { tool: "snapshot_delete", title: "Delete a snapshot", destructive: true },
});

/** `POST /api/v1/vms/:name/restore` */
export const RestoreVm = defineOperation({
  operationId: "restoreVm",
  method: "POST",
  path: "/api/v1/vms/:name/restore",
  summary: "Put a VM back to a snapshot of it: its memory, devices and writable disks as they " +
    "were (a running VM only with force); resolves at starting",
  params: ByVm,
  body: VmRestoreRequest,
  status: 200,
  response: VmRecord,
  errors: ["invalid_argument", "not_found", "invalid_state", "unsupported"],
  access: "admin",
  mcp: {
    tool: "vm_restore",
    title: "Restore a VM from a snapshot",
    description: "Go back to the moment a snapshot of this VM was taken (its running state " +
      "is replaced)",
    destructive: true,
  },
});

/** `POST /api/v1/vms/:name/clone` */
export const CloneVm = defineOperation({
  operationId: "cloneVm",
  method: "POST",
  path: "/api/v1/vms/:name/clone",
  summary: "Clone a running VM: snapshot it (it runs on) and resume the snapshot as count new " +
    "VMs, each with its own address, MAC, hostname and kestrel secret; resolves at starting",
  params: ByVm,
  body: VmCloneRequest,
  status: 201,
  response: VmCloneResult,
  errors: [
    "invalid_argument",
    "not_found",
    "invalid_state",
    "already_exists",
    "unsupported",
    "ip_pool_exhausted",
  ],
  access: "admin",
  mcp: {
    tool: "vm_clone",
    title: "Clone a VM",
    description: "Fork a running VM into new VMs that start where it is now (memory, " +
      "processes, disks) with their own network identity",
  },
});
