/**
 * The QEMU driver: `qemu-system-x86_64 -M microvm`, started paused and driven over QMP.
 *
 * - `create`: checks the spec and its files, spawns QEMU detached (it outlives the daemon),
 *   waits until QMP answers `query-status` with `prelaunch`. On any failure the process is
 *   killed and reaped and its socket and pid file removed; the error carries QEMU's message.
 *   QEMU always runs with its seccomp sandbox (`-sandbox on,…=deny`); with a `spec.jail` it
 *   runs as the jail's uid, in its cgroup and mount namespace (binary, libraries and firmware
 *   bound read-only next to the VM's files), and its pid is handed to `hooks.onSpawn` before
 *   QMP is waited for.
 * - `boot`/`pause`/`resume`: QMP `cont`/`stop`/`cont`.
 * - `shutdown`: ACPI power button (`system_powerdown`), then SIGTERM, then SIGKILL.
 * - `adopt`: same pid and start time, and QMP answers.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import {
  type CreateHooks,
  type Driver,
  type DriverProbe,
  type KernelFormat,
  type SavedState,
  type ShutdownOptions,
  type ShutdownResult,
  type VmmHandle,
  vmmHandle,
  type VmmState,
  type VmSpec,
} from "../driver.ts";
import type { Accel } from "../kvm.ts";
import { stopLadder } from "../ladder.ts";
import {
  type DetachedProcess,
  isAlive,
  killAndWait,
  logTail,
  spawnDetached,
  waitGone,
} from "../process/mod.ts";
import { checkSpecFiles, claimRuntimeDir, removeIfPresent } from "../spec_files.ts";
import { prepareVmmJail } from "../jail/prepare.ts";
import { qemuDataPaths } from "./data_files.ts";
import { QEMU_CONTROL_DEVICE, qemuArgs, qemuPaths, validateSpec } from "./cmdline.ts";
import { probeQemu } from "./probe.ts";
import { loadState, QEMU_STATE_FILE, saveState } from "./migration.ts";
import { exchangeLine, setNicLinks } from "./control.ts";
import { QmpClient, qmpExecute } from "./qmp.ts";

/** Options of {@linkcode QemuDriver}. */
export interface QemuDriverOptions {
  /** Absolute path of `qemu-system-x86_64`. */
  binary: string;
  /** Accelerator (already resolved against the host). */
  accel: Accel;
  /** Turn off PIT and PIC (KVM with a TSC-deadline host only). Default false. */
  noLegacyTimers?: boolean;
  /**
   * Command words QEMU is run through; each must exec, never fork (tests use
   * `["ip", "netns", "exec", ns]`). Default none.
   */
  launchPrefix?: readonly string[];
  /** Limit from spawn until QMP answers; default 10 000 ms. */
  startTimeoutMs?: number;
  /** Limit for each QMP command (connect included); default 5000 ms. */
  qmpTimeoutMs?: number;
}

/** The kernel formats QEMU's microvm boots (bzImage, or an ELF vmlinux through PVH). */
export const QEMU_KERNEL_FORMATS: readonly KernelFormat[] = ["bzImage", "vmlinux"];

/**
 * Maps QEMU's RunState to the driver-level state. `prelaunch` is a VMM created with `-S` whose
 * guest never ran; states in which the vCPUs are stopped for other reasons count as paused.
 *
 * @example
 * ```ts
 * import { vmmStateOf } from "./driver.ts";
 * console.assert(vmmStateOf("prelaunch") === "created");
 * console.assert(vmmStateOf("io-error") === "paused");
 * ```
 */
export function vmmStateOf(status: string): VmmState {
  switch (status) {
    case "prelaunch":
      return "created";
    case "running":
      return "running";
    case "shutdown":
    case "guest-panicked":
    case "internal-error":
      return "shutdown";
    default:
      return "paused";
  }
}

/** A restore's state file must be a readable regular file before any QEMU starts. */
async function requireStateFile(path: string): Promise<void> {
  const info = await Deno.stat(path).catch(() => undefined);
  if (info === undefined || !info.isFile || info.size === 0) {
    throw new VolantError(
      "invalid_argument",
      `restoreFrom ${path}: ${info === undefined ? "no such file" : "not a saved state file"}`,
      { field: "restoreFrom", path },
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The QEMU microvm driver.
 *
 * @example
 * ```ts ignore
 * import { QemuDriver } from "./driver.ts";
 * const driver = new QemuDriver({ binary: "/usr/bin/qemu-system-x86_64", accel: "tcg" });
 * const handle = await driver.create(spec);
 * await driver.boot(handle);
 * await driver.shutdown(handle, { gracefulMs: 10_000, termMs: 5_000 });
 * await driver.cleanup(handle);
 * ```
 */
export class QemuDriver implements Driver {
  readonly name = "qemu";
  readonly kvm: boolean;
  readonly kernelFormats: readonly KernelFormat[] = QEMU_KERNEL_FORMATS;
  readonly confines = true;
  #options: QemuDriverOptions;
  #exe: Promise<string> | undefined;

  /** A driver for the given binary and accelerator (see `openQemuDriver` to resolve them). */
  constructor(options: QemuDriverOptions) {
    this.#options = options;
    this.kvm = options.accel === "kvm";
  }

  async probe(): Promise<DriverProbe> {
    const found = await probeQemu(this.#options.binary);
    return {
      name: this.name,
      available: found.available,
      kvm: this.kvm,
      ...(found.binary ? { binary: found.binary } : {}),
      ...(found.version ? { version: found.version } : {}),
      ...(found.reason ? { reason: found.reason } : {}),
    };
  }

  get #qmpTimeoutMs(): number {
    return this.#options.qmpTimeoutMs ?? 5_000;
  }

  /** The binary without symlinks: what `/proc/<pid>/exe` shows for a running QEMU. */
  #realBinary(): Promise<string> {
    this.#exe ??= Deno.realPath(this.#options.binary).catch((err) => {
      this.#exe = undefined;
      throw new VolantError(
        "hypervisor_unavailable",
        `QEMU binary ${this.#options.binary} is gone: ${(err as Error).message}`,
        { binary: this.#options.binary },
        { cause: err },
      );
    });
    return this.#exe;
  }

  async create(spec: VmSpec, hooks: CreateHooks = {}): Promise<VmmHandle> {
    validateSpec(spec, this.kernelFormats);
    await checkSpecFiles(spec);
    const paths = qemuPaths(spec.runtimeDir);
    await claimRuntimeDir({
      label: "QEMU",
      runtimeDir: spec.runtimeDir,
      socket: paths.qmpSocket,
      files: [paths.pidFile, paths.consoleSocket, paths.controlSocket],
      answers: () =>
        qmpExecute(paths.qmpSocket, "query-status", undefined, { timeoutMs: 1_000 })
          .then(() => true),
    });
    if (spec.restoreFrom !== undefined) {
      await requireStateFile(`${spec.restoreFrom}/${QEMU_STATE_FILE}`);
    }
    const real = await this.#realBinary();
    const jail = spec.jail
      ? await prepareVmmJail({ ...spec, jail: spec.jail }, real, await qemuDataPaths(real))
      : undefined;
    // Jailed, the binary is bound at its real path: name it so.
    const argv = [jail ? real : this.#options.binary, ...qemuArgs(spec, this.#options)];
    const handleOf = (pid: number, startTime: number) =>
      vmmHandle(this.name, spec, paths.qmpSocket, pid, startTime);
    const vmm = await spawnDetached({
      argv,
      log: spec.vmmLog,
      prefix: [...(this.#options.launchPrefix ?? []), ...(jail?.prefix ?? [])],
      exe: jail?.exe ?? real,
      label: "QEMU",
      ...(jail ? { cgroupProcs: jail.cgroupProcs, clearEnv: true } : {}),
      ...(hooks.onSpawn ? { onSpawn: (pid, start) => hooks.onSpawn!(handleOf(pid, start)) } : {}),
    }).catch(async (err) => {
      await this.#removeFiles(spec.runtimeDir);
      throw err;
    });
    const handle = handleOf(vmm.pid, vmm.startTime);
    try {
      await this.#waitReady(vmm, spec);
      if (spec.restoreFrom !== undefined) {
        await loadState(
          (command, args) => this.#qmp(handle, command, args),
          paths.migrateSocket,
          `${spec.restoreFrom}/${QEMU_STATE_FILE}`,
        );
        // After the load: the saved stream carries the links as they were (up).
        if (spec.nicsDisconnected) {
          await setNicLinks((command, args) => this.#qmp(handle, command, args), false);
        }
      }
      return handle;
    } catch (err) {
      await killAndWait(vmm.pid, vmm.startTime);
      await this.#removeFiles(spec.runtimeDir);
      throw err;
    }
  }

  /** Waits until QMP answers `query-status` with `prelaunch`, or reports why QEMU died. */
  async #waitReady(vmm: DetachedProcess, spec: VmSpec): Promise<void> {
    const socket = qemuPaths(spec.runtimeDir).qmpSocket;
    const timeoutMs = this.#options.startTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const seen: { exit: Deno.CommandStatus | null } = { exit: null };
    vmm.status.then((s) => seen.exit = s, () => {});
    const died = async (status: Deno.CommandStatus): Promise<VolantError> => {
      const tail = await logTail(spec.vmmLog, vmm.logOffset, 10);
      const how = status.signal
        ? `was killed by ${status.signal}`
        : `exited with code ${status.code}`;
      return new VolantError(
        "vmm_failed",
        `QEMU ${how} while starting${tail ? `: ${tail}` : " (nothing in its log)"}`,
        { pid: vmm.pid, code: status.code, vmmLog: spec.vmmLog },
      );
    };
    let lastError: unknown = null;
    while (Date.now() < deadline) {
      if (seen.exit) throw await died(seen.exit);
      let answer: { status: string } | null = null;
      try {
        const left = Math.max(100, Math.min(this.#qmpTimeoutMs, deadline - Date.now()));
        answer = await qmpExecute<{ status: string }>(socket, "query-status", undefined, {
          timeoutMs: left,
        });
      } catch (err) {
        // Refused or closed while QEMU starts (or dies): normal, look again.
        lastError = err;
      }
      if (answer !== null) {
        const expected = spec.restoreFrom === undefined ? "prelaunch" : "inmigrate";
        if (answer.status === expected) return;
        throw new VolantError(
          "vmm_failed",
          `QEMU started in state ${answer.status}, expected ${expected} (` +
            (spec.restoreFrom === undefined ? "paused before boot" : "waiting for its state") +
            ")",
          { pid: vmm.pid, status: answer.status },
        );
      }
      const exit = await Promise.race([vmm.status, sleep(20).then(() => null)]);
      if (exit) throw await died(exit);
    }
    if (seen.exit) throw await died(seen.exit);
    throw new VolantError(
      "timeout",
      `QEMU (pid ${vmm.pid}) did not answer on ${socket} within ${timeoutMs} ms` +
        (lastError instanceof Error ? `: ${lastError.message}` : ""),
      { pid: vmm.pid, socket },
    );
  }

  async #removeFiles(runtimeDir: string): Promise<void> {
    const paths = qemuPaths(runtimeDir);
    await removeIfPresent(paths.qmpSocket);
    await removeIfPresent(paths.pidFile);
    await removeIfPresent(paths.consoleSocket);
    await removeIfPresent(paths.migrateSocket);
    await removeIfPresent(paths.controlSocket);
  }

  /** Runs a QMP command on a live VMM; `vmm_failed` when the process is gone. */
  async #qmp<T>(handle: VmmHandle, command: string, args?: Record<string, unknown>): Promise<T> {
    if (!(await isAlive(handle.pid, handle.startTime))) {
      throw new VolantError("vmm_failed", `QEMU pid ${handle.pid} is not running`, {
        pid: handle.pid,
      });
    }
    try {
      return await qmpExecute<T>(handle.apiSocket, command, args, {
        timeoutMs: this.#qmpTimeoutMs,
      });
    } catch (err) {
      if (!(await isAlive(handle.pid, handle.startTime))) {
        throw new VolantError(
          "vmm_failed",
          `QEMU pid ${handle.pid} exited during ${command}`,
          { pid: handle.pid },
          { cause: err },
        );
      }
      throw err;
    }
  }

  async #status(handle: VmmHandle): Promise<string> {
    return (await this.#qmp<{ status: string }>(handle, "query-status")).status;
  }

  async #transition(handle: VmmHandle, from: VmmState, command: string): Promise<void> {
    const status = await this.#status(handle);
    const state = vmmStateOf(status);
    if (state !== from) {
      throw new VolantError(
        "vmm_failed",
        `QEMU pid ${handle.pid} is ${state} (${status}), not ${from}: cannot ${command}`,
        { pid: handle.pid, status },
      );
    }
    await this.#qmp(handle, command);
  }

  boot(handle: VmmHandle): Promise<void> {
    return this.#transition(handle, "created", "cont");
  }

  async info(handle: VmmHandle): Promise<VmmState> {
    return vmmStateOf(await this.#status(handle));
  }

  pause(handle: VmmHandle): Promise<void> {
    return this.#transition(handle, "running", "stop");
  }

  resume(handle: VmmHandle): Promise<void> {
    return this.#transition(handle, "paused", "cont");
  }

  shutdown(handle: VmmHandle, options: ShutdownOptions): Promise<ShutdownResult> {
    return stopLadder(handle.pid, handle.startTime, {
      ...options,
      label: "QEMU",
      requestPowerOff: async () => {
        // A guest that never ran (or is paused) cannot see the power button.
        if ((await this.#status(handle)) !== "running") return false;
        await this.#qmp(handle, "system_powerdown");
        return true;
      },
    });
  }

  /**
   * Pauses the guest (if it runs) and saves its state through QEMU's migration stream into
   * `<dir>/qemu-state.bin` (`migration.ts`); it stays paused.
   */
  async saveState(handle: VmmHandle, dir: string): Promise<SavedState> {
    if ((await this.#status(handle)) === "running") await this.#qmp(handle, "stop");
    const saved = await saveState(
      (command, args) => this.#qmp(handle, command, args),
      qemuPaths(handle.runtimeDir).migrateSocket,
      `${dir}/${QEMU_STATE_FILE}`,
      handle.jail ? { uid: handle.jail.uid } : {},
    );
    return { files: [QEMU_STATE_FILE], bytes: saved.bytes, ms: saved.ms };
  }

  async cleanup(handle: VmmHandle): Promise<void> {
    await removeIfPresent(handle.apiSocket);
    await this.#removeFiles(handle.runtimeDir);
  }

  /** The guest's second UART carries the control channel. */
  readonly guestControlDevice = QEMU_CONTROL_DEVICE;

  /** One line to kestrel's control port and its reply (`control.ts`). */
  guestControl(
    handle: VmmHandle,
    line: string,
    options: { timeoutMs: number; maxBytes: number },
  ): Promise<string> {
    return exchangeLine(qemuPaths(handle.runtimeDir).controlSocket, line, options);
  }

  /** Connects the NICs a restore left disconnected. */
  async connectNics(handle: VmmHandle): Promise<void> {
    await setNicLinks((command, args) => this.#qmp(handle, command, args), true);
  }

  consoleSocket(handle: VmmHandle): string {
    return qemuPaths(handle.runtimeDir).consoleSocket;
  }

  async adopt(handle: VmmHandle): Promise<boolean> {
    if (handle.driver !== this.name) return false;
    if (!(await isAlive(handle.pid, handle.startTime))) return false;
    try {
      const client = await QmpClient.connect(handle.apiSocket, {
        timeoutMs: this.#qmpTimeoutMs,
      });
      try {
        await client.execute("query-status");
      } finally {
        client.close();
        await client.done;
      }
      return true;
    } catch {
      return false;
    }
  }

  async waitExit(handle: VmmHandle): Promise<void> {
    await waitGone(handle.pid, handle.startTime);
  }
}
