/**
 * Snapshots of running VMs: what `POST /api/v1/vms/:name/snapshots` makes (the guest's memory,
 * vCPU and device state as the VMM saves it, plus copies of the VM's writable disks, all taken
 * while the guest is paused) and `POST /api/v1/vms/:name/restore` puts back.
 *
 * @module
 */
import { z } from "zod";
import { HypervisorName, VmName, VmRecord } from "./vm.ts";

/** A snapshot's name: a DNS label, like a VM's. */
export const SnapshotName = z.string().regex(
  /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
  "must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit",
);

/** One file of a snapshot, as the daemon checks it before a restore. */
export const SnapshotFile = z.object({
  path: z.string().describe(
    "Path inside the snapshot (e.g. state/qemu-state.bin, disks/writable.ext4)",
  ),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^sha256:[0-9a-f]{64}$/),
});

/** {@linkcode SnapshotFile}. */
export type SnapshotFile = z.infer<typeof SnapshotFile>;

/** A snapshot as the API returns it. */
export const SnapshotRecord = z.object({
  name: SnapshotName,
  vm: VmName.describe("The VM it was taken of"),
  created_at: z.string().describe("RFC 3339"),
  hypervisor: HypervisorName.describe("The driver that saved it (only it can restore it)"),
  kvm: z.boolean(),
  cpu_cores: z.number().int(),
  memory_mb: z.number().int(),
  plugin: z.string().nullable(),
  image: z.string().nullable(),
  bytes: z.number().int().min(0).describe("Size of all its files"),
  save_ms: z.number().int().min(0).describe("How long the guest was paused for it"),
  files: z.array(SnapshotFile),
});
/** {@linkcode SnapshotRecord}. */
export type SnapshotRecord = z.infer<typeof SnapshotRecord>;

/** Body of `GET /api/v1/snapshots`. */
export const SnapshotList = z.object({ snapshots: z.array(SnapshotRecord) });

/** Body of `POST /api/v1/vms/:name/snapshots`. */
export const SnapshotCreateRequest = z.strictObject({
  snapshot: SnapshotName.optional().describe("The snapshot's name; default <vm>-<UTC time>"),
});
/** {@linkcode SnapshotCreateRequest}. */
export type SnapshotCreateRequest = z.infer<typeof SnapshotCreateRequest>;

/** Body of `POST /api/v1/vms/:name/restore`. */
export const VmRestoreRequest = z.strictObject({
  from: SnapshotName.describe("The snapshot to go back to (one of this VM)"),
  force: z.boolean().default(false).describe("Replace a running VM's state (it is stopped first)"),
});
/** {@linkcode VmRestoreRequest}. */
export type VmRestoreRequest = z.infer<typeof VmRestoreRequest>;

/** Body of `POST /api/v1/vms/:name/clone`. */
export const VmCloneRequest = z.strictObject({
  clone: VmName.describe(
    "The clone's name; with count > 1 the clones are <clone>-1 … <clone>-<count>",
  ),
  count: z.number().int().min(1).max(16).default(1).describe("How many clones (1-16)"),
  keep_snapshot: z.boolean().default(false).describe(
    "Keep the snapshot the clones were made from (named <clone>-base); default: deleted once " +
      "they run",
  ),
}).superRefine((r, ctx) => {
  const longest = r.count === 1 ? r.clone : `${r.clone}-${r.count}`;
  if (longest.length > 63) {
    ctx.addIssue({
      code: "custom",
      path: ["clone"],
      message: `with count ${r.count} the names reach ${longest}, over 63 characters`,
    });
  }
});
/** {@linkcode VmCloneRequest}. */
export type VmCloneRequest = z.infer<typeof VmCloneRequest>;

/** Body of the answer to `POST /api/v1/vms/:name/clone`. */
export const VmCloneResult = z.object({
  snapshot: SnapshotName.describe("The snapshot the clones resumed from"),
  snapshot_kept: z.boolean(),
  vms: z.array(VmRecord).describe("The clones, each starting (running once kestrel answers)"),
});
/** {@linkcode VmCloneResult}. */
export type VmCloneResult = z.infer<typeof VmCloneResult>;
