/**
 * The driver of a VMM driven over a REST API on a unix socket (Cloud Hypervisor, Firecracker):
 * everything but the API calls themselves, which each VMM gives as a small
 * {@linkcode RestVmm} description.
 *
 * - `create`: checks the spec ({@linkcode checkVmSpec} with the VMM's rules) and its files,
 *   claims the runtime dir (refusing one whose socket still answers), spawns the VMM detached
 *   (it outlives the daemon) until its API answers ({@linkcode launchRestVmm}), then sends the
 *   VM's configuration. On any failure the process is killed and reaped and its socket and
 *   files removed; the error carries the VMM's own message (its API error, or the tail of its
 *   log). With a `spec.jail` the VMM runs as the jail's uid, in its cgroup and mount namespace,
 *   its own seccomp filter on; its pid is handed to `hooks.onSpawn` before the API is waited
 *   for.
 * - `boot`/`pause`/`resume`: the VMM's call, each after checking that the VM is in the state
 *   it must leave.
 * - `shutdown`: the stop ladder ({@linkcode stopLadder}): the guest's power-off request while
 *   it runs, then the VMM's own exit request when it has one, SIGTERM, SIGKILL.
 * - `adopt`: same pid and start time, and the API answers.
 * - `saveState` (VMMs with {@linkcode RestVmm.snapshots}): pauses a running guest and has the
 *   VMM write its state into a staging directory (in the target directory, or in the runtime
 *   dir for a jailed VMM: the only place it can write), then moves the complete result into the
 *   target ({@linkcode collectSavedState}); the guest stays paused.
 * - `create` with `spec.restoreFrom`: checks the saved files before anything starts
 *   (`invalid_argument` naming `restoreFrom`), lets the VMM's `stage` ready them, binds them
 *   into a jail read-only and lends them to its uid, starts the VMM as for a boot but loads the
 *   state instead of configuring it: the guest is held paused, as saved.
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
import type { KvmStatus } from "../kvm.ts";
import { stopLadder } from "../ladder.ts";
import type { VmmJail } from "../jail/types.ts";
import { prepareVmmJail, type VmmJailFiles } from "../jail/prepare.ts";
import { isAlive, killAndWait, waitGone } from "../process/mod.ts";
import { checkVmSpec, type VmSpecRules } from "../spec_check.ts";
import { checkSpecFiles, claimRuntimeDir, removeIfPresent } from "../spec_files.ts";
import { launchRestVmm } from "./launch.ts";
import {
  collectSavedState,
  lendFiles,
  removeTree,
  requireEmptyDir,
  requireEnterable,
  requireSavedState,
} from "./saved_state.ts";
import type { VmmProbe } from "./vmm_probe.ts";

/** Options of a {@linkcode RestVmmDriver}. */
export interface RestVmmDriverOptions {
  /** Absolute path of the VMM binary. */
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
  /** Limit for the boot request (the VMM loads kernel and initramfs); default 30 000 ms. */
  bootTimeoutMs?: number;
  /**
   * Limit for saving or loading a guest's state (the VMM writes or reads all guest memory);
   * default 120 000 ms.
   */
  stateTimeoutMs?: number;
}

/** The staging directory a save goes to first (in the target, or in a jailed VMM's runtime dir). */
export const SAVE_STAGING = "state.partial";
/** The directory in the runtime dir a restore's staged files go to (see {@linkcode RestSnapshots.stage}). */
export const RESTORE_STAGING = "state.restore";

/** One request of a {@linkcode RestVmm}: its name in messages, and how to send it. */
export interface RestStep<Api> {
  /** Name in messages, e.g. `vm.boot` or `InstanceStart`. */
  name: string;
  send: (api: Api) => Promise<void>;
}

/**
 * How a REST VMM saves a guest's state and starts from one (see {@linkcode RestVmm.snapshots}).
 * Paths are absolute and as the VMM sees them (a jailed VMM's files are bound at their own paths).
 */
export interface RestSnapshots<Api> {
  /** The files a saved state holds: all written by a save, all needed by a restore. */
  files: readonly string[];
  /** Writes the paused guest's state into `dir`, an empty directory the VMM can write. */
  save: { name: string; send: (api: Api, dir: string) => Promise<void> };
  /**
   * Readies the state saved in `dir` for a restore of `spec`, before the VMM starts, and returns
   * the directory the VMM loads from. `stage` is an empty directory in the runtime dir for what
   * it writes (given to a jailed VMM's uid afterwards; symlinks into `dir` resolve in the jail,
   * where the saved files are bound). Throws `invalid_argument` naming `restoreFrom` when the
   * state cannot be restored for `spec`. Without it, the VMM loads from `dir` itself.
   */
  stage?: (dir: string, spec: VmSpec, stage: string) => Promise<string>;
  /**
   * Loads the state in `dir` (the saved one, or what `stage` returned) into the freshly started
   * VMM, which was given no configuration; the guest stays paused.
   */
  load: { name: string; send: (api: Api, dir: string, spec: VmSpec) => Promise<void> };
}

/**
 * What makes one REST VMM: its names and limits, its files, its command line, and the API
 * calls the driver's steps are made of. `Api` is the VMM's client, `State` its VM states.
 */
export interface RestVmm<Api, State extends string> {
  /** The driver's name, e.g. `firecracker`. */
  name: string;
  /** Name in messages, e.g. `Firecracker`. */
  label: string;
  /** Kernel formats it boots, preferred first. */
  kernelFormats: readonly KernelFormat[];
  /** Probes the binary (a name on PATH or a path); never throws. */
  probe: (binary: string, options: { kvm?: KvmStatus }) => Promise<VmmProbe>;
  /** A client for the API on `socket`. */
  api: (
    socket: string,
    options: { timeoutMs: number; bootTimeoutMs: number; stateTimeoutMs: number },
  ) => Api;
  /** Its API socket and the pid file the driver writes, for a runtime dir. */
  paths: (runtimeDir: string) => { apiSocket: string; pidFile: string };
  /** Files the VMM keeps beside its API socket (e.g. Cloud Hypervisor's lock); default none. */
  socketFiles?: (apiSocket: string) => string[];
  /** The limits {@linkcode checkVmSpec} applies. */
  specRules: (spec: VmSpec) => VmSpecRules;
  /** Its arguments (without the binary): an empty VMM waiting on its API socket. */
  args: (runtimeDir: string) => string[];
  /** Launch words run after the configured launch prefix (e.g. a serial redirection). */
  launchPrefix?: (spec: VmSpec) => string[];
  /** Resolves once the API answers (a ping); `timeoutMs` overrides the request limit. */
  ping: (api: Api, timeoutMs?: number) => Promise<unknown>;
  /** Sends the VM's configuration to the freshly started VMM. */
  configure: (api: Api, spec: VmSpec) => Promise<void>;
  /** How the VM's state is read. */
  state: {
    /** Name in messages, e.g. `vm.info`. */
    name: string;
    read: (api: Api) => Promise<State>;
    /**
     * True when the request answers `invalid_state` while the VMM holds no VM (Cloud
     * Hypervisor's `vm.info`): reported as `vmm_failed` (the VMM "has no VM").
     */
    mayLackVm?: boolean;
  };
  /** Maps its VM state to the driver-level state. */
  stateOf: (state: State) => VmmState;
  /** The state of a running guest, the only one that can be asked to power off. */
  running: State;
  /** Starts the guest (from `created`). */
  boot: RestStep<Api>;
  /** Pauses the vCPUs (from `running`). */
  pause: RestStep<Api>;
  /** Resumes the vCPUs (from `paused`). */
  resume: RestStep<Api>;
  /** Asks the running guest to power off (the graceful step of the stop ladder). */
  powerOff: RestStep<Api>;
  /**
   * Asks the VMM process itself to exit (the stop ladder's step before SIGTERM); absent when
   * the VMM has no such call.
   */
  exit?: (api: Api) => Promise<void>;
  /** Saving and restoring guests; absent when the VMM cannot. */
  snapshots?: RestSnapshots<Api>;
}

/** `name` in `dir` (`dir` itself without a name), without doubled or trailing slashes. */
function inDir(dir: string, name?: string): string {
  const base = dir.replace(/\/+$/, "");
  return name === undefined ? base || "/" : `${base}/${name}`;
}

/** A restore readied before the VMM starts. */
interface ReadyRestore {
  /** The directory the VMM loads from. */
  source: string;
  /** The saved files (absolute): bound read-only into a jail. */
  files: string[];
  /** Gives lent files back and removes the staged ones. */
  release: () => Promise<void>;
}

/**
 * The driver of the REST VMM `vmm` describes. Each VMM's driver is this class with its
 * description (and any call of its own, such as Cloud Hypervisor's counters).
 *
 * @example
 * ```ts ignore
 * import { RestVmmDriver } from "./driver.ts";
 * class FirecrackerDriver extends RestVmmDriver<FcApi, FcInstanceState> {
 *   constructor(options: RestVmmDriverOptions) {
 *     super(FIRECRACKER, options);
 *   }
 * }
 * const driver = new FirecrackerDriver({ binary: "/usr/local/bin/firecracker" });
 * const handle = await driver.create(spec);
 * await driver.boot(handle);
 * await driver.shutdown(handle, { gracefulMs: 10_000, termMs: 5_000 });
 * await driver.cleanup(handle);
 * ```
 */
export class RestVmmDriver<Api, State extends string> implements Driver {
  readonly name: string;
  /** REST VMMs always run on hardware KVM. */
  readonly kvm = true;
  readonly confines = true;
  readonly kernelFormats: readonly KernelFormat[];
  readonly #vmm: RestVmm<Api, State>;
  readonly #options: RestVmmDriverOptions;
  #exe: Promise<string> | undefined;
  /** The staging directories of the saves under way. */
  readonly #saving = new Set<string>();

  /** A driver of `vmm` for the given binary (see `openRestVmm` to find and check it). */
  constructor(vmm: RestVmm<Api, State>, options: RestVmmDriverOptions) {
    this.#vmm = vmm;
    this.#options = options;
    this.name = vmm.name;
    this.kernelFormats = vmm.kernelFormats;
  }

  async probe(): Promise<DriverProbe> {
    const found = await this.#vmm.probe(this.#options.binary, {
      ...(this.#options.kvm ? { kvm: this.#options.kvm } : {}),
    });
    return { name: this.name, ...found };
  }

  #api(socket: string): Api {
    return this.#vmm.api(socket, {
      timeoutMs: this.#options.apiTimeoutMs ?? 5_000,
      bootTimeoutMs: this.#options.bootTimeoutMs ?? 30_000,
      stateTimeoutMs: this.#options.stateTimeoutMs ?? 120_000,
    });
  }

  /** The VMM's snapshot calls; `unsupported` when it has none. */
  #snapshots(): RestSnapshots<Api> {
    const snapshots = this.#vmm.snapshots;
    if (!snapshots) {
      throw new VolantError("unsupported", `${this.#vmm.label} cannot save or restore a guest`, {
        driver: this.name,
      });
    }
    return snapshots;
  }

  /**
   * The launch of a jailed VMM: its own seccomp filter stays on, it runs as the jail's uid in
   * the jail's cgroup and mount namespace. `stateFiles` (a restore's saved files) are bound
   * read-only, each at its own path.
   */
  async #jail(
    spec: VmSpec & { jail: VmmJail },
    stateFiles: readonly string[],
  ): Promise<VmmJailFiles & { binary: string }> {
    const binary = await Deno.realPath(this.#options.binary);
    const launch = await prepareVmmJail(spec, binary, stateFiles);
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
        `${this.#vmm.label} binary ${binary} is gone: ${(err as Error).message}`,
        { binary },
        { cause: err },
      );
    });
    return this.#exe;
  }

  async create(spec: VmSpec, hooks: CreateHooks = {}): Promise<VmmHandle> {
    const vmm = this.#vmm;
    checkVmSpec(spec, vmm.specRules(spec));
    await checkSpecFiles(spec);
    const paths = vmm.paths(spec.runtimeDir);
    const socketFiles = vmm.socketFiles?.(paths.apiSocket) ?? [];
    const api = this.#api(paths.apiSocket);
    await claimRuntimeDir({
      label: vmm.label,
      runtimeDir: spec.runtimeDir,
      socket: paths.apiSocket,
      files: [...socketFiles, paths.pidFile],
      answers: () => vmm.ping(api, 1_000).then(() => true),
    });
    // A dead VMM's half-done save or restore.
    await removeTree(inDir(spec.runtimeDir, SAVE_STAGING));
    await removeTree(inDir(spec.runtimeDir, RESTORE_STAGING));
    const restore = spec.restoreFrom === undefined
      ? undefined
      : await this.#readyRestore(spec, spec.restoreFrom);
    try {
      return await this.#launch(spec, api, hooks, restore);
    } finally {
      await restore?.release();
    }
  }

  /**
   * Checks and readies `spec.restoreFrom` before anything starts: its files must be there
   * (`invalid_argument` naming `restoreFrom`), the VMM's `stage` runs, and a jailed VMM's uid
   * is lent the saved files and given the staged ones.
   */
  async #readyRestore(spec: VmSpec, dir: string): Promise<ReadyRestore> {
    const snapshots = this.#snapshots();
    const files = await requireSavedState(dir, snapshots.files);
    const stage = inDir(spec.runtimeDir, RESTORE_STAGING);
    const undo: Array<() => Promise<void>> = [];
    const release = async () => {
      for (const step of undo.splice(0).reverse()) await step().catch(() => {});
    };
    try {
      let source = inDir(dir);
      if (snapshots.stage) {
        await Deno.mkdir(stage, { mode: 0o700 });
        undo.push(() => removeTree(stage));
        source = await snapshots.stage(source, spec, stage);
        if (spec.jail) {
          // Symlinks are left as they are (a chown would follow them to the saved files).
          await Deno.chown(stage, spec.jail.uid, spec.jail.gid);
          for await (const entry of Deno.readDir(stage)) {
            if (!entry.isSymlink) {
              await Deno.chown(`${stage}/${entry.name}`, spec.jail.uid, spec.jail.gid);
            }
          }
        }
      }
      if (spec.jail) undo.push(await lendFiles(files, spec.jail.uid, spec.jail.gid));
      return { source, files, release };
    } catch (err) {
      await release();
      throw err;
    }
  }

  /** Launches the VMM for `spec` and configures it, or loads the readied `restore`. */
  async #launch(
    spec: VmSpec,
    api: Api,
    hooks: CreateHooks,
    restore: ReadyRestore | undefined,
  ): Promise<VmmHandle> {
    const vmm = this.#vmm;
    const paths = vmm.paths(spec.runtimeDir);
    const socketFiles = vmm.socketFiles?.(paths.apiSocket) ?? [];
    const jail = spec.jail
      ? await this.#jail({ ...spec, jail: spec.jail }, restore?.files ?? [])
      : undefined;
    const handleOf = (pid: number, startTime: number) =>
      vmmHandle(this.name, spec, paths.apiSocket, pid, startTime);
    const launched = await launchRestVmm({
      label: vmm.label,
      argv: [jail ? jail.binary : this.#options.binary, ...vmm.args(spec.runtimeDir)],
      prefix: [...(this.#options.launchPrefix ?? []), ...(vmm.launchPrefix?.(spec) ?? [])],
      exe: await this.#processExe(),
      log: spec.vmmLog,
      socket: paths.apiSocket,
      pidFile: paths.pidFile,
      files: socketFiles,
      ready: async (timeoutMs) => void await vmm.ping(api, timeoutMs),
      startTimeoutMs: this.#options.startTimeoutMs ?? 10_000,
      apiTimeoutMs: this.#options.apiTimeoutMs ?? 5_000,
      ...(jail ? { jail } : {}),
      ...(hooks.onSpawn ? { onSpawn: (pid, start) => hooks.onSpawn!(handleOf(pid, start)) } : {}),
    });
    const handle = handleOf(launched.pid, launched.startTime);
    try {
      if (restore) await this.#snapshots().load.send(api, restore.source, spec);
      else await vmm.configure(api, spec);
      return handle;
    } catch (err) {
      await killAndWait(launched.pid, launched.startTime);
      await this.cleanup(handle);
      throw err;
    }
  }

  /**
   * Runs `fn` on a live VMM's API; `vmm_failed` when the process is (or goes) away. For the
   * calls a VMM's driver adds (`what` names the call in messages).
   */
  protected async call<T>(
    handle: VmmHandle,
    what: string,
    fn: (api: Api) => Promise<T>,
  ): Promise<T> {
    const label = this.#vmm.label;
    if (!(await isAlive(handle.pid, handle.startTime))) {
      throw new VolantError("vmm_failed", `${label} pid ${handle.pid} is not running`, {
        pid: handle.pid,
      });
    }
    try {
      return await fn(this.#api(handle.apiSocket));
    } catch (err) {
      if (!(await isAlive(handle.pid, handle.startTime))) {
        throw new VolantError(
          "vmm_failed",
          `${label} pid ${handle.pid} exited during ${what}`,
          { pid: handle.pid },
          { cause: err },
        );
      }
      throw err;
    }
  }

  async #state(handle: VmmHandle): Promise<State> {
    const { label, state } = this.#vmm;
    return await this.call(handle, state.name, async (api) => {
      try {
        return await state.read(api);
      } catch (err) {
        if (state.mayLackVm && err instanceof VolantError && err.code === "invalid_state") {
          throw new VolantError(
            "vmm_failed",
            `${label} pid ${handle.pid} has no VM: ${err.message}`,
            { pid: handle.pid },
            { cause: err },
          );
        }
        throw err;
      }
    });
  }

  async #transition(handle: VmmHandle, from: VmmState, step: RestStep<Api>): Promise<void> {
    const state = await this.#state(handle);
    const now = this.#vmm.stateOf(state);
    if (now !== from) {
      throw new VolantError(
        "vmm_failed",
        `${this.#vmm.label} pid ${handle.pid} is ${now} (${state}), not ${from}: ` +
          `cannot ${step.name}`,
        { pid: handle.pid, state },
      );
    }
    await this.call(handle, step.name, step.send);
  }

  boot(handle: VmmHandle): Promise<void> {
    return this.#transition(handle, "created", this.#vmm.boot);
  }

  async info(handle: VmmHandle): Promise<VmmState> {
    return this.#vmm.stateOf(await this.#state(handle));
  }

  pause(handle: VmmHandle): Promise<void> {
    return this.#transition(handle, "running", this.#vmm.pause);
  }

  resume(handle: VmmHandle): Promise<void> {
    return this.#transition(handle, "paused", this.#vmm.resume);
  }

  shutdown(handle: VmmHandle, options: ShutdownOptions): Promise<ShutdownResult> {
    const { label, running, powerOff, exit } = this.#vmm;
    return stopLadder(handle.pid, handle.startTime, {
      ...options,
      label,
      requestPowerOff: async () => {
        // A guest that never ran (or is paused) cannot react to the request.
        if ((await this.#state(handle)) !== running) return false;
        await this.call(handle, powerOff.name, powerOff.send);
        return true;
      },
      ...(exit ? { requestExit: () => exit(this.#api(handle.apiSocket)) } : {}),
    });
  }

  /**
   * Pauses the guest if it runs and has the VMM write its state, then moves the complete files
   * into the empty directory `dir` (see the module doc); the guest stays paused. On failure
   * nothing is left in `dir`.
   */
  async saveState(handle: VmmHandle, dir: string): Promise<SavedState> {
    const snapshots = this.#snapshots();
    const { label, pause } = this.#vmm;
    const started = performance.now();
    await requireEmptyDir(dir);
    const jail = handle.jail;
    // A jailed VMM sees no more than its VM's files: it writes into its runtime dir.
    const staging = jail ? inDir(handle.runtimeDir, SAVE_STAGING) : inDir(dir, `.${SAVE_STAGING}`);
    if (jail) await requireEnterable(handle.runtimeDir, jail, label);
    const state = await this.#state(handle);
    const now = this.#vmm.stateOf(state);
    if (now === "running") {
      await this.call(handle, pause.name, pause.send);
    } else if (now !== "paused") {
      throw new VolantError(
        "vmm_failed",
        `${label} pid ${handle.pid} is ${now} (${state}), not running or paused: ` +
          "cannot save its state",
        { pid: handle.pid, state },
      );
    }
    if (this.#saving.has(staging)) {
      throw new VolantError(
        "invalid_state",
        `${label} pid ${handle.pid} is already saving its state`,
        { pid: handle.pid, path: staging },
      );
    }
    this.#saving.add(staging);
    try {
      // Left by a daemon killed during a save.
      await removeTree(staging);
      await Deno.mkdir(staging, { mode: 0o700 });
      if (jail) await Deno.chown(staging, jail.uid, jail.gid);
      await this.call(handle, snapshots.save.name, (api) => snapshots.save.send(api, staging));
      const saved = await collectSavedState(staging, dir, snapshots.files, label);
      return { ...saved, ms: Math.round(performance.now() - started) };
    } finally {
      await removeTree(staging);
      this.#saving.delete(staging);
    }
  }

  async cleanup(handle: VmmHandle): Promise<void> {
    await removeIfPresent(handle.apiSocket);
    for (const file of this.#vmm.socketFiles?.(handle.apiSocket) ?? []) {
      await removeIfPresent(file);
    }
    await removeIfPresent(this.#vmm.paths(handle.runtimeDir).pidFile);
    await removeTree(inDir(handle.runtimeDir, SAVE_STAGING));
    await removeTree(inDir(handle.runtimeDir, RESTORE_STAGING));
  }

  async adopt(handle: VmmHandle): Promise<boolean> {
    if (handle.driver !== this.name) return false;
    if (!(await isAlive(handle.pid, handle.startTime))) return false;
    return await this.#vmm.ping(this.#api(handle.apiSocket)).then(() => true, () => false);
  }

  async waitExit(handle: VmmHandle): Promise<void> {
    await waitGone(handle.pid, handle.startTime);
  }
}
