/**
 * Fault injection for tests: `VOLANT_TEST_FAULT=<step>` makes volantd SIGKILL itself when it
 * reaches the named step, so a test can prove that a daemon killed there leaves nothing behind
 * once it restarts. Unset (always, outside tests) every fault point is a no-op.
 *
 * {@linkcode FAULT_STEPS} is the one table of steps: `faultPoint` takes only a step named
 * there, and the fault suite (`deno task test:faults`, `e2e/faults_test.ts`) kills the daemon
 * at every one of them.
 *
 * @module
 */
import type { ImageStep } from "../images/mod.ts";

/** The environment variable naming the step at which volantd kills itself. */
export const FAULT_ENV = "VOLANT_TEST_FAULT";

/** The operation the fault suite drives to reach a step. */
export type FaultOperation =
  | "vm_create"
  | "vm_stop"
  | "vm_delete"
  | "image_pull"
  | "plugin_install";

/** One row of {@linkcode FAULT_STEPS}. */
export interface FaultStepInfo {
  /** The step's name (the value of `VOLANT_TEST_FAULT`). */
  step: string;
  /** The operation that reaches it. */
  operation: FaultOperation;
  /** What is done (and what is not yet) when the daemon dies there. */
  state: string;
}

/**
 * Every fault point, in the order an operation reaches them. The `launch_*` steps and
 * `vm_ready` are VM start's as well as create's (both launch the VM the same way); the `stop_*`
 * steps are also delete's, for a VM that runs.
 */
export const FAULT_STEPS = [
  {
    step: "create_committed",
    operation: "vm_create",
    state: "the row (pending), its lease, ports and policy are committed; nothing on the host",
  },
  {
    step: "launch_tap",
    operation: "vm_create",
    state: "the tap exists and is recorded on the row; no policy rules, no boot media",
  },
  {
    step: "launch_media",
    operation: "vm_create",
    state: "the tap's policy rules are in nft, the per-VM initramfs (and disks) written; no jail",
  },
  {
    step: "launch_jailed",
    operation: "vm_create",
    state: "the jail is made (uid, cgroup, root dir; runtime dir and serial log its uid's); no VMM",
  },
  {
    step: "vmm_spawned",
    operation: "vm_create",
    state: "the VMM process exists and its pid is recorded; its API has not answered yet",
  },
  {
    step: "launch_booted",
    operation: "vm_create",
    state: "the VM is starting and the guest runs (boot sent); not ready yet",
  },
  {
    step: "vm_ready",
    operation: "vm_create",
    state: "the VM is recorded running (kestrel answered)",
  },
  {
    step: "stop_stopping",
    operation: "vm_stop",
    state: "the VM is recorded stopping; its VMM still runs",
  },
  {
    step: "stop_vmm_ended",
    operation: "vm_stop",
    state: "the VMM is gone; its tap, jail and files are not released yet",
  },
  {
    step: "stop_released",
    operation: "vm_stop",
    state: "tap, jail and files are released; the row still says stopping",
  },
  {
    step: "delete_stopped",
    operation: "vm_delete",
    state: "delete: the VM does not run (stopped first when it did); nothing removed yet",
  },
  {
    step: "delete_files",
    operation: "vm_delete",
    state: "the VM's runtime, log and disk dirs are removed; its row (and lease) remain",
  },
  {
    step: "delete_row",
    operation: "vm_delete",
    state: "the row, lease, ports and policy are deleted; forwards and rules not yet rewritten",
  },
  {
    step: "image_blob_chunk",
    operation: "image_pull",
    state: "the first chunk of a layer blob is in its temp file",
  },
  {
    step: "image_blob_committed",
    operation: "image_pull",
    state: "a layer blob is renamed into place; the image is not indexed",
  },
  {
    step: "image_layer_unpacked",
    operation: "image_pull",
    state: "the first layer is unpacked into the inert unpack tree (mounted); the rest not",
  },
  {
    step: "image_rootfs_built",
    operation: "image_pull",
    state: "mkfs.erofs wrote the temp root filesystem; not renamed, the unpack tree still there",
  },
  {
    step: "image_rootfs_placed",
    operation: "image_pull",
    state: "the root filesystem is in place; the image index is not written",
  },
  {
    step: "plugin_artifact_chunk",
    operation: "plugin_install",
    state: "an artifact's download has begun: its temp file exists in the cache",
  },
  {
    step: "plugin_artifact_committed",
    operation: "plugin_install",
    state: "an artifact blob (and its fingerprint) is in the cache; no plugin row",
  },
  {
    step: "plugin_installed",
    operation: "plugin_install",
    state: "the plugin's row is written; the answer is not sent",
  },
] as const satisfies readonly FaultStepInfo[];

/** A step of {@linkcode FAULT_STEPS}. */
export type FaultStep = typeof FAULT_STEPS[number]["step"];

let armed: string | null | undefined;

function armedStep(): string | null {
  if (armed === undefined) {
    try {
      armed = Deno.env.get(FAULT_ENV) || null;
    } catch {
      armed = null; // No env permission: no faults.
    }
  }
  return armed;
}

/**
 * Kills this process with SIGKILL when `VOLANT_TEST_FAULT` names `step`.
 *
 * @example
 * ```ts
 * import { faultPoint } from "./fault.ts";
 * faultPoint("vmm_spawned"); // a no-op unless VOLANT_TEST_FAULT=vmm_spawned
 * ```
 */
export function faultPoint(step: FaultStep): void {
  if (armedStep() === step) Deno.kill(Deno.pid, "SIGKILL");
}

/**
 * The fault point of an image store step (the store's `onStep`): `image_<step>`.
 *
 * @example
 * ```ts
 * import { imageFaultPoint } from "./fault.ts";
 * imageFaultPoint("blob_chunk"); // a no-op unless VOLANT_TEST_FAULT=image_blob_chunk
 * ```
 */
export function imageFaultPoint(step: ImageStep): void {
  faultPoint(`image_${step}`);
}
