/**
 * The hypervisor driver interface, shaped after Cloud Hypervisor's model:
 * create (VMM process up, VM configured, not running) → boot → pause/resume →
 * shutdown → delete. `hypervisor/` knows nothing of plugins, IPAM or the store:
 * it receives a complete {@linkcode VmSpec} and hands back a {@linkcode VmmHandle}
 * (built by {@linkcode vmmHandle}) the caller persists, so a restarted daemon can re-adopt
 * the VMM.
 *
 * @module
 */
import type { VmmJail } from "./jail/types.ts";

/** Kernel image formats a driver may boot. */
export type KernelFormat = "bzImage" | "vmlinux";

/** A block device given to the guest, in order (first is `/dev/vda`). */
export interface DiskSpec {
  /** Stable id used in device names (`[a-z0-9_]+`). */
  id: string;
  path: string;
  readOnly: boolean;
  format: "raw" | "qcow2";
}

/** A network interface on a pre-created tap. */
export interface NicSpec {
  id: string;
  tap: string;
  mac: string;
}

/** What {@linkcode Driver.saveState} wrote. */
export interface SavedState {
  /** The files it wrote in the directory (names), all complete. */
  files: string[];
  /** Their total size in bytes. */
  bytes: number;
  /** How long the save took, ms (the guest was paused throughout). */
  ms: number;
}

/** Everything a driver needs to launch one VM. Paths are absolute. */
export interface VmSpec {
  /** Unique VM id; used to name files inside `runtimeDir`. */
  id: string;
  cpus: number;
  memoryMib: number;
  kernel: { path: string; format: KernelFormat };
  initramfs?: string;
  cmdline: string;
  disks: DiskSpec[];
  nics: NicSpec[];
  /** File that receives the guest's serial console output (appended). */
  serialLog: string;
  /** File that receives the VMM's own stdout/stderr (appended). */
  vmmLog: string;
  /** A directory owned by this VM for sockets and pid files; created by the caller. */
  runtimeDir: string;
  /**
   * Start from a saved state (the directory {@linkcode Driver.saveState} filled, same VMM build
   * and the same spec otherwise) instead of booting: `create` leaves the VMM holding the guest
   * as it was saved, paused; `resume` runs it.
   */
  restoreFrom?: string;
  /**
   * With {@linkcode restoreFrom}: the guest's NICs come back disconnected (the guest sees no
   * carrier and nothing it sends leaves the VMM) until {@linkcode Driver.connectNics} — a clone
   * still holds its parent's address and MAC until it is told its own.
   */
  nicsDisconnected?: boolean;
  /**
   * Confine the VMM (its own uid, cgroup, mount namespace and root; see `jail/`). The caller
   * made the uid's files, the cgroup and the empty root directory; drivers whose
   * {@linkcode Driver.confines} is true honour it.
   */
  jail?: VmmJail;
}

/** What the caller persists to find a running VMM again after a daemon restart. */
export interface VmmHandle {
  driver: string;
  pid: number;
  /** Process start time (clock ticks since boot, from /proc/<pid>/stat) to guard against PID reuse. */
  startTime: number;
  /** The VMM's API socket (QMP for QEMU, REST for Cloud Hypervisor/Firecracker). */
  apiSocket: string;
  runtimeDir: string;
  vmmLog: string;
  /** The jail the VMM runs in (the spec's), so whoever releases the VMM releases it too. */
  jail?: VmmJail;
}

/**
 * The handle of the VMM of driver `driver` for `spec`, once its process is known (the pid and
 * start time guard re-adoption); every driver builds its handles so.
 *
 * @example
 * ```ts
 * import { vmmHandle } from "./driver.ts";
 * const handle = vmmHandle("qemu", {
 *   id: "web", cpus: 1, memoryMib: 256,
 *   kernel: { path: "/k/bzImage", format: "bzImage" },
 *   cmdline: "console=ttyS0", disks: [], nics: [],
 *   serialLog: "/log/serial.log", vmmLog: "/log/vmm.log", runtimeDir: "/run/web",
 * }, "/run/web/qmp.sock", 4242, 123456);
 * console.assert(handle.pid === 4242 && handle.runtimeDir === "/run/web" && !handle.jail);
 * ```
 */
export function vmmHandle(
  driver: string,
  spec: VmSpec,
  apiSocket: string,
  pid: number,
  startTime: number,
): VmmHandle {
  return {
    driver,
    pid,
    startTime,
    apiSocket,
    runtimeDir: spec.runtimeDir,
    vmmLog: spec.vmmLog,
    ...(spec.jail ? { jail: spec.jail } : {}),
  };
}

/** Hooks {@linkcode Driver.create} calls while it works. */
export interface CreateHooks {
  /**
   * Called with the handle as soon as the VMM process exists (before its API answers), so the
   * caller can record it: a daemon killed while `create` waits still knows which process to end.
   */
  onSpawn?: (handle: VmmHandle) => void | Promise<void>;
}

/** Hypervisor-level VM state (not the daemon's lifecycle state). */
export type VmmState = "created" | "running" | "paused" | "shutdown";

/** What a driver found on this host. */
export interface DriverProbe {
  name: string;
  available: boolean;
  binary?: string;
  version?: string;
  kvm: boolean;
  /** Why it is unavailable, and the fix. */
  reason?: string;
}

/** Timeouts for the stop ladder: graceful power-off, then SIGTERM, then SIGKILL. */
export interface ShutdownOptions {
  gracefulMs: number;
  termMs: number;
}

/** How the VMM ended. */
export interface ShutdownResult {
  /** Which step of the ladder ended the VMM. */
  via: "graceful" | "sigterm" | "sigkill" | "already-exited";
}

/** One hypervisor. Implementations live in `hypervisor/<name>/`. */
export interface Driver {
  /** `qemu`, `cloud-hypervisor` or `firecracker`. */
  readonly name: string;
  /** Whether hardware KVM will be used. */
  readonly kvm: boolean;
  /** Kernel formats this driver boots, preferred first. */
  readonly kernelFormats: readonly KernelFormat[];
  /** Whether it runs a VMM process it can confine in a {@linkcode VmSpec.jail}. */
  readonly confines?: boolean;
  /** Checks the binary, its version and acceleration. Never throws. */
  probe(): Promise<DriverProbe>;
  /**
   * Launches a detached VMM process configured with `spec` but not yet running the guest.
   * On failure nothing is left behind (process, socket) and a VolantError
   * (`vmm_failed`, `hypervisor_unavailable`, `timeout`) carries the VMM's own message.
   */
  create(spec: VmSpec, hooks?: CreateHooks): Promise<VmmHandle>;
  /** Starts the guest's vCPUs. */
  boot(handle: VmmHandle): Promise<void>;
  /** Current VMM-level state; throws `vmm_failed` when the VMM is gone or unresponsive. */
  info(handle: VmmHandle): Promise<VmmState>;
  pause(handle: VmmHandle): Promise<void>;
  resume(handle: VmmHandle): Promise<void>;
  /** Stop ladder: graceful power-off request → SIGTERM → SIGKILL. Resolves once the process is gone. */
  shutdown(handle: VmmHandle, options: ShutdownOptions): Promise<ShutdownResult>;
  /** Removes the VMM's sockets and pid files (the caller owns logs and the runtime dir). */
  cleanup(handle: VmmHandle): Promise<void>;
  /** True when the process is alive (same start time) and its API answers. */
  adopt(handle: VmmHandle): Promise<boolean>;
  /** Resolves when the VMM process exits (polls; works for adopted processes too). */
  waitExit(handle: VmmHandle): Promise<void>;
  /**
   * Pauses the guest if it runs and writes its memory, vCPU and device state into the empty
   * directory `dir` (the VMM's own files, complete, or an error and nothing usable); the guest
   * stays paused (`resume` runs it on). Drivers without snapshots do not have it.
   */
  saveState?(handle: VmmHandle, dir: string): Promise<SavedState>;
  /**
   * The unix socket of the guest's interactive serial console (one client at a time), when
   * this driver offers one; absent when the serial console only goes to `serialLog`.
   */
  consoleSocket?(handle: VmmHandle): string;
  /**
   * The guest device of the control channel, when this driver wires one (the boot config's
   * `control_device`; `schema/guest_control.ts`).
   */
  readonly guestControlDevice?: string;
  /**
   * Sends one line to the guest's control channel (a serial port kestrel holds open:
   * `schema/guest_control.ts`) and resolves to the guest's reply line (untrusted; at most
   * `maxBytes`, else `vmm_failed`); `timeout` when none comes within `timeoutMs`. Drivers whose
   * VMM has no such port do not have it.
   */
  guestControl?(
    handle: VmmHandle,
    line: string,
    options: { timeoutMs: number; maxBytes: number },
  ): Promise<string>;
  /** Connects the guest's NICs (see {@linkcode VmSpec.nicsDisconnected}). */
  connectNics?(handle: VmmHandle): Promise<void>;
}
