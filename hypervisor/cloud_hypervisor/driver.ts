/**
 * The Cloud Hypervisor driver: an empty `cloud-hypervisor --api-socket` process driven over its
 * REST API.
 *
 * - `create`: checks the spec and its files, spawns the VMM detached (it outlives the daemon),
 *   waits for `GET /vmm.ping`, then `PUT /vm.create` with the whole `VmConfig`. On any failure
 *   the process is killed and reaped and its socket, lock and pid file removed; the error
 *   carries the VMM's own message (its API error chain, or the tail of its log).
 * - `boot`/`pause`/`resume`: `vm.boot`/`vm.pause`/`vm.resume`, each after checking `vm.info`.
 * - `shutdown`: `vm.power-button` and a wait; then the terminate step: `vm.shutdown` +
 *   `vmm.shutdown` over the API, then SIGTERM; then SIGKILL. A VMM that exits on
 *   `vmm.shutdown` is reported as ended by the terminate step (`via: "sigterm"`).
 * - `adopt`: same pid and start time, and `vmm.ping` answers.
 *
 * Cloud Hypervisor opens disk images at `vm.boot` (`vm.create` only stores the configuration),
 * so a bad image fails `boot`, not `create`; and it truncates the serial file when the VM is
 * created (its `File` serial mode), so the serial log holds one boot.
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
import { ChApi, type ChCounters, type ChVmState } from "./api.ts";
import { CH_KERNEL_FORMATS, chArgs, chPaths, chSpecRules, chVmConfig } from "./config.ts";
import { probeCloudHypervisor } from "./probe.ts";
import {
  checkRestSpec,
  checkSpecFiles,
  claimRuntimeDir,
  launchRestVmm,
  removeIfPresent,
  restVmmHandle,
} from "./rest_vmm.ts";

const LABEL = "Cloud Hypervisor";

/** Options of {@linkcode CloudHypervisorDriver}. */
export interface CloudHypervisorDriverOptions {
  /** Absolute path of `cloud-hypervisor`. */
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
  /** Limit for `vm.boot`; default 30 000 ms. */
  bootTimeoutMs?: number;
}

/**
 * Maps Cloud Hypervisor's VM state to the driver-level state (`BreakPoint`, a debugger stop,
 * counts as paused).
 *
 * @example
 * ```ts
 * import { chStateOf } from "./driver.ts";
 * console.assert(chStateOf("Created") === "created" && chStateOf("BreakPoint") === "paused");
 * ```
 */
export function chStateOf(state: ChVmState): VmmState {
  switch (state) {
    case "Created":
      return "created";
    case "Running":
      return "running";
    case "Shutdown":
      return "shutdown";
    default:
      return "paused";
  }
}

/**
 * The Cloud Hypervisor driver.
 *
 * @example
 * ```ts ignore
 * import { CloudHypervisorDriver } from "./driver.ts";
 * const driver = new CloudHypervisorDriver({ binary: "/usr/local/bin/cloud-hypervisor" });
 * const handle = await driver.create(spec);
 * await driver.boot(handle);
 * console.log(await driver.counters(handle));
 * await driver.shutdown(handle, { gracefulMs: 10_000, termMs: 5_000 });
 * await driver.cleanup(handle);
 * ```
 */
export class CloudHypervisorDriver implements Driver {
  readonly name = "cloud-hypervisor";
  /** Cloud Hypervisor always runs on hardware KVM. */
  readonly kvm = true;
  readonly confines = true;
  readonly kernelFormats: readonly KernelFormat[] = CH_KERNEL_FORMATS;
  readonly #options: CloudHypervisorDriverOptions;
  #exe: Promise<string> | undefined;

  /** A driver for the given binary (see `openCloudHypervisorDriver` to find and check it). */
  constructor(options: CloudHypervisorDriverOptions) {
    this.#options = options;
  }

  async probe(): Promise<DriverProbe> {
    const found = await probeCloudHypervisor(this.#options.binary, {
      ...(this.#options.kvm ? { kvm: this.#options.kvm } : {}),
    });
    return { name: this.name, ...found };
  }

  #api(socket: string): ChApi {
    return new ChApi(socket, {
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
    checkRestSpec(spec, chSpecRules(spec));
    await checkSpecFiles(spec);
    const paths = chPaths(spec.runtimeDir);
    const api = this.#api(paths.apiSocket);
    await claimRuntimeDir({
      label: LABEL,
      runtimeDir: spec.runtimeDir,
      socket: paths.apiSocket,
      files: [paths.lockFile, paths.pidFile],
      answers: () => api.ping(1_000).then(() => true),
    });
    const jail = spec.jail ? await this.#jail({ ...spec, jail: spec.jail }) : undefined;
    const handleOf = (pid: number, startTime: number) =>
      restVmmHandle(this.name, spec, paths.apiSocket, pid, startTime);
    const vmm = await launchRestVmm({
      label: LABEL,
      argv: [jail ? jail.binary : this.#options.binary, ...chArgs(spec.runtimeDir)],
      ...(this.#options.launchPrefix ? { prefix: this.#options.launchPrefix } : {}),
      exe: await this.#processExe(),
      log: spec.vmmLog,
      socket: paths.apiSocket,
      pidFile: paths.pidFile,
      files: [paths.lockFile],
      ready: async (timeoutMs) => void await api.ping(timeoutMs),
      startTimeoutMs: this.#options.startTimeoutMs ?? 10_000,
      apiTimeoutMs: this.#options.apiTimeoutMs ?? 5_000,
      ...(jail ? { jail } : {}),
      ...(hooks.onSpawn ? { onSpawn: (pid, start) => hooks.onSpawn!(handleOf(pid, start)) } : {}),
    });
    const handle = handleOf(vmm.pid, vmm.startTime);
    try {
      await api.create(chVmConfig(spec));
      return handle;
    } catch (err) {
      await killAndWait(vmm.pid, vmm.startTime);
      await this.cleanup(handle);
      throw err;
    }
  }

  /** Runs `fn` on a live VMM's API; `vmm_failed` when the process is (or goes) away. */
  async #call<T>(handle: VmmHandle, what: string, fn: (api: ChApi) => Promise<T>): Promise<T> {
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

  async #state(handle: VmmHandle): Promise<ChVmState> {
    return await this.#call(handle, "vm.info", async (api) => {
      try {
        return (await api.info()).state;
      } catch (err) {
        if (err instanceof VolantError && err.code === "invalid_state") {
          throw new VolantError(
            "vmm_failed",
            `${LABEL} pid ${handle.pid} has no VM: ${err.message}`,
            { pid: handle.pid },
            { cause: err },
          );
        }
        throw err;
      }
    });
  }

  async #transition(
    handle: VmmHandle,
    from: VmmState,
    what: string,
    fn: (api: ChApi) => Promise<void>,
  ): Promise<void> {
    const state = await this.#state(handle);
    if (chStateOf(state) !== from) {
      throw new VolantError(
        "vmm_failed",
        `${LABEL} pid ${handle.pid} is ${chStateOf(state)} (${state}), not ${from}: cannot ${what}`,
        { pid: handle.pid, state },
      );
    }
    await this.#call(handle, what, fn);
  }

  boot(handle: VmmHandle): Promise<void> {
    return this.#transition(handle, "created", "vm.boot", (api) => api.boot());
  }

  async info(handle: VmmHandle): Promise<VmmState> {
    return chStateOf(await this.#state(handle));
  }

  pause(handle: VmmHandle): Promise<void> {
    return this.#transition(handle, "running", "vm.pause", (api) => api.pause());
  }

  resume(handle: VmmHandle): Promise<void> {
    return this.#transition(handle, "paused", "vm.resume", (api) => api.resume());
  }

  /**
   * The guest's device counters (`GET /vm.counters`): device id (`disk-<id>`, `net-<id>`, …) →
   * counter → value. Only while the VM is booted.
   */
  counters(handle: VmmHandle): Promise<ChCounters> {
    return this.#call(handle, "vm.counters", (api) => api.counters());
  }

  async shutdown(handle: VmmHandle, options: ShutdownOptions): Promise<ShutdownResult> {
    const { pid, startTime } = handle;
    if (!(await isAlive(pid, startTime))) return { via: "already-exited" };
    if (options.gracefulMs > 0) {
      const pressed = await this.#pressPowerButton(handle).catch(() => false);
      if (pressed) {
        if (await waitGone(pid, startTime, { timeoutMs: options.gracefulMs })) {
          return { via: "graceful" };
        }
      } else if (!(await isAlive(pid, startTime))) {
        return { via: "already-exited" };
      }
    }
    // The terminate step: first ask the VMM itself to stop, then signal it.
    const api = this.#api(handle.apiSocket);
    const asked = await api.shutdownVm().catch(() => {}).then(() => api.shutdownVmm()).then(
      () => true,
      () => false,
    );
    if (asked && await waitGone(pid, startTime, { timeoutMs: options.termMs })) {
      return { via: "sigterm" };
    }
    const result = await stopLadder(pid, startTime, {
      gracefulMs: 0,
      termMs: options.termMs,
      label: LABEL,
    });
    return asked && result.via === "already-exited" ? { via: "sigterm" } : result;
  }

  /** Presses the ACPI power button if the guest runs; false when there is nobody to ask. */
  async #pressPowerButton(handle: VmmHandle): Promise<boolean> {
    if ((await this.#state(handle)) !== "Running") return false;
    await this.#call(handle, "vm.power-button", (api) => api.powerButton());
    return true;
  }

  async cleanup(handle: VmmHandle): Promise<void> {
    const paths = chPaths(handle.runtimeDir);
    await removeIfPresent(handle.apiSocket);
    await removeIfPresent(`${handle.apiSocket}.lock`);
    await removeIfPresent(paths.pidFile);
  }

  async adopt(handle: VmmHandle): Promise<boolean> {
    if (handle.driver !== this.name) return false;
    if (!(await isAlive(handle.pid, handle.startTime))) return false;
    return await this.#api(handle.apiSocket).ping().then(() => true, () => false);
  }

  async waitExit(handle: VmmHandle): Promise<void> {
    await waitGone(handle.pid, handle.startTime);
  }
}
