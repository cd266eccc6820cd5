/**
 * The Firecracker driver: `firecracker --api-sock` driven over its REST API.
 *
 * - `create`: checks the spec (vmlinux and raw disks only) and its files, removes a stale API
 *   socket (Firecracker will not bind over one), spawns the VMM detached with its stdout (the
 *   guest's serial console) appended to `spec.serialLog`, waits for `GET /`, then sends the
 *   pre-boot configuration: machine, boot source, drives, network interfaces. On any failure
 *   the process is killed and reaped and its socket and pid file removed; the error carries
 *   Firecracker's `fault_message`, or the tail of its log.
 * - `boot`: `PUT /actions` `InstanceStart`; `pause`/`resume`: `PATCH /vm` `Paused`/`Resumed`;
 *   each after checking the state in `GET /`.
 * - `shutdown`: `SendCtrlAltDel` (the guest reboots, and Firecracker exits on the reset) and a
 *   wait; then SIGTERM; then SIGKILL. Firecracker has no shutdown call of its own.
 * - `adopt`: same pid and start time, and `GET /` answers.
 *
 * Firecracker exits when the guest reboots, and cannot see a guest power-off without ACPI:
 * guests should run with `reboot=k` and reboot rather than power off.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type {
  CreateHooks,
  Driver,
  DriverProbe,
  KernelFormat,
  ShutdownOptions,
  ShutdownResult,
  VmmHandle,
  VmmState,
  VmSpec,
} from "../driver.ts";
import type { KvmStatus } from "../kvm.ts";
import { stopLadder } from "../ladder.ts";
import type { VmmJail } from "../jail/types.ts";
import { prepareVmmJail, type VmmJailFiles } from "../jail/prepare.ts";
import { isAlive, killAndWait, waitGone } from "../process/mod.ts";
import {
  checkRestSpec,
  checkSpecFiles,
  claimRuntimeDir,
  launchRestVmm,
  removeIfPresent,
  restVmmHandle,
} from "../cloud_hypervisor/rest_vmm.ts";
import { FcApi, type FcInstanceState } from "./api.ts";
import {
  FC_KERNEL_FORMATS,
  fcArgs,
  fcConfigRequests,
  fcPaths,
  fcSerialPrefix,
  fcSpecRules,
} from "./config.ts";
import { probeFirecracker } from "./probe.ts";

const LABEL = "Firecracker";

/** Options of {@linkcode FirecrackerDriver}. */
export interface FirecrackerDriverOptions {
  /** Absolute path of `firecracker`. */
  binary: string;
  /**
   * Command words the VMM is run through; each must exec, never fork (tests use
   * `["ip", "netns", "exec", ns]`). Default none.
   */
  launchPrefix?: readonly string[];
  /**
   * What `/proc/<pid>/exe` shows for the running VMM; default `binary` without symlinks. Only a
   * VMM that is a script (the tests' fake) needs its interpreter here.
   */
  processExe?: string;
  /** KVM detection result `probe()` reports instead of checking `/dev/kvm`. */
  kvm?: KvmStatus;
  /** Limit from spawn until the API answers; default 10 000 ms. */
  startTimeoutMs?: number;
  /** Limit for each API request; default 5000 ms. */
  apiTimeoutMs?: number;
  /** Limit for `InstanceStart`; default 30 000 ms. */
  bootTimeoutMs?: number;
}

/**
 * Maps Firecracker's instance state to the driver-level state.
 *
 * @example
 * ```ts
 * import { fcStateOf } from "./driver.ts";
 * console.assert(fcStateOf("Not started") === "created" && fcStateOf("Paused") === "paused");
 * ```
 */
export function fcStateOf(state: FcInstanceState): VmmState {
  switch (state) {
    case "Not started":
      return "created";
    case "Running":
      return "running";
    default:
      return "paused";
  }
}

/**
 * The Firecracker driver.
 *
 * @example
 * ```ts ignore
 * import { FirecrackerDriver } from "./driver.ts";
 * const driver = new FirecrackerDriver({ binary: "/usr/local/bin/firecracker" });
 * const handle = await driver.create(spec);
 * await driver.boot(handle);
 * await driver.shutdown(handle, { gracefulMs: 10_000, termMs: 5_000 });
 * await driver.cleanup(handle);
 * ```
 */
export class FirecrackerDriver implements Driver {
  readonly name = "firecracker";
  /** Firecracker always runs on hardware KVM. */
  readonly kvm = true;
  readonly confines = true;
  readonly kernelFormats: readonly KernelFormat[] = FC_KERNEL_FORMATS;
  readonly #options: FirecrackerDriverOptions;
  #exe: Promise<string> | undefined;

  /** A driver for the given binary (see `openFirecrackerDriver` to find and check it). */
  constructor(options: FirecrackerDriverOptions) {
    this.#options = options;
  }

  async probe(): Promise<DriverProbe> {
    const found = await probeFirecracker(this.#options.binary, {
      ...(this.#options.kvm ? { kvm: this.#options.kvm } : {}),
    });
    return { name: this.name, ...found };
  }

  #api(socket: string): FcApi {
    return new FcApi(socket, {
      timeoutMs: this.#options.apiTimeoutMs ?? 5_000,
      bootTimeoutMs: this.#options.bootTimeoutMs ?? 30_000,
    });
  }

  /**
   * The launch of a jailed VMM: its own seccomp filter stays on (no `--seccomp false`), it runs
   * as the jail's uid in the jail's cgroup and mount namespace.
   */
  async #jail(spec: VmSpec & { jail: VmmJail }): Promise<VmmJailFiles & { binary: string }> {
    const binary = await Deno.realPath(this.#options.binary);
    const launch = await prepareVmmJail(spec, binary);
    return {
      ...launch,
      exe: `${spec.jail.root.replace(/\/+$/, "")}${await this.#processExe()}`,
      binary,
    };
  }

  /** What `/proc/<pid>/exe` must show for the VMM. */
  #processExe(): Promise<string> {
    const { binary, processExe } = this.#options;
    this.#exe ??= Deno.realPath(processExe ?? binary).catch((err) => {
      this.#exe = undefined;
      throw new VolantError(
        "hypervisor_unavailable",
        `${LABEL} binary ${binary} is gone: ${(err as Error).message}`,
        { binary },
        { cause: err },
      );
    });
    return this.#exe;
  }

  async create(spec: VmSpec, hooks: CreateHooks = {}): Promise<VmmHandle> {
    checkRestSpec(spec, fcSpecRules(spec));
    await checkSpecFiles(spec);
    const paths = fcPaths(spec.runtimeDir);
    const api = this.#api(paths.apiSocket);
    await claimRuntimeDir({
      label: LABEL,
      runtimeDir: spec.runtimeDir,
      socket: paths.apiSocket,
      files: [paths.pidFile],
      answers: () => api.info(1_000).then(() => true),
    });
    const jail = spec.jail ? await this.#jail({ ...spec, jail: spec.jail }) : undefined;
    const handleOf = (pid: number, startTime: number) =>
      restVmmHandle(this.name, spec, paths.apiSocket, pid, startTime);
    const vmm = await launchRestVmm({
      label: LABEL,
      argv: [jail ? jail.binary : this.#options.binary, ...fcArgs(spec.runtimeDir)],
      prefix: [...(this.#options.launchPrefix ?? []), ...fcSerialPrefix(spec.serialLog)],
      exe: await this.#processExe(),
      log: spec.vmmLog,
      socket: paths.apiSocket,
      pidFile: paths.pidFile,
      files: [],
      ready: async (timeoutMs) => void await api.info(timeoutMs),
      startTimeoutMs: this.#options.startTimeoutMs ?? 10_000,
      apiTimeoutMs: this.#options.apiTimeoutMs ?? 5_000,
      ...(jail ? { jail } : {}),
      ...(hooks.onSpawn ? { onSpawn: (pid, start) => hooks.onSpawn!(handleOf(pid, start)) } : {}),
    });
    const handle = handleOf(vmm.pid, vmm.startTime);
    try {
      for (const request of fcConfigRequests(spec)) await api.configure(request);
      return handle;
    } catch (err) {
      await killAndWait(vmm.pid, vmm.startTime);
      await this.cleanup(handle);
      throw err;
    }
  }

  /** Runs `fn` on a live VMM's API; `vmm_failed` when the process is (or goes) away. */
  async #call<T>(handle: VmmHandle, what: string, fn: (api: FcApi) => Promise<T>): Promise<T> {
    if (!(await isAlive(handle.pid, handle.startTime))) {
      throw new VolantError("vmm_failed", `${LABEL} pid ${handle.pid} is not running`, {
        pid: handle.pid,
      });
    }
    try {
      return await fn(this.#api(handle.apiSocket));
    } catch (err) {
      if (!(await isAlive(handle.pid, handle.startTime))) {
        throw new VolantError(
          "vmm_failed",
          `${LABEL} pid ${handle.pid} exited during ${what}`,
          { pid: handle.pid },
          { cause: err },
        );
      }
      throw err;
    }
  }

  async #state(handle: VmmHandle): Promise<FcInstanceState> {
    return (await this.#call(handle, "GET /", (api) => api.info())).state;
  }

  async #transition(
    handle: VmmHandle,
    from: VmmState,
    what: string,
    fn: (api: FcApi) => Promise<void>,
  ): Promise<void> {
    const state = await this.#state(handle);
    if (fcStateOf(state) !== from) {
      throw new VolantError(
        "vmm_failed",
        `${LABEL} pid ${handle.pid} is ${fcStateOf(state)} (${state}), not ${from}: ` +
          `cannot ${what}`,
        { pid: handle.pid, state },
      );
    }
    await this.#call(handle, what, fn);
  }

  boot(handle: VmmHandle): Promise<void> {
    return this.#transition(
      handle,
      "created",
      "InstanceStart",
      (api) => api.action("InstanceStart"),
    );
  }

  async info(handle: VmmHandle): Promise<VmmState> {
    return fcStateOf(await this.#state(handle));
  }

  pause(handle: VmmHandle): Promise<void> {
    return this.#transition(handle, "running", "pause", (api) => api.setVmState("Paused"));
  }

  resume(handle: VmmHandle): Promise<void> {
    return this.#transition(handle, "paused", "resume", (api) => api.setVmState("Resumed"));
  }

  shutdown(handle: VmmHandle, options: ShutdownOptions): Promise<ShutdownResult> {
    return stopLadder(handle.pid, handle.startTime, {
      ...options,
      label: LABEL,
      requestPowerOff: async () => {
        // A guest that never ran (or is paused) cannot react to Ctrl-Alt-Del.
        if ((await this.#state(handle)) !== "Running") return false;
        await this.#call(handle, "SendCtrlAltDel", (api) => api.action("SendCtrlAltDel"));
        return true;
      },
    });
  }

  async cleanup(handle: VmmHandle): Promise<void> {
    await removeIfPresent(handle.apiSocket);
    await removeIfPresent(fcPaths(handle.runtimeDir).pidFile);
  }

  async adopt(handle: VmmHandle): Promise<boolean> {
    if (handle.driver !== this.name) return false;
    if (!(await isAlive(handle.pid, handle.startTime))) return false;
    return await this.#api(handle.apiSocket).info().then(() => true, () => false);
  }

  async waitExit(handle: VmmHandle): Promise<void> {
    await waitGone(handle.pid, handle.startTime);
  }
}
