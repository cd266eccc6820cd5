/**
 * A fake {@linkcode Driver} for daemon tests: simulated VMM processes with fake pids (above
 * any real `pid_max`), a simulated guest that appends `KESTREL_READY {json}` to the serial log
 * after a delay, and injectable failures. Processes live in a {@linkcode FakeRegistry} that
 * several driver instances may share, so a "restarted daemon" can adopt them.
 *
 * The fake honours the Driver contract (it runs `../contract_suite.ts`): `create` checks the
 * spec's files (and refuses a disk declared qcow2 that is not, like a real VMM) and leaves nothing
 * behind on failure, `boot` runs the guest, the stop ladder goes power button → SIGTERM →
 * SIGKILL with the given timeouts, `cleanup` removes the socket and pid files, `adopt`
 * checks pid and start time, `waitExit` resolves when the process ends.
 *
 * It also saves and restores guests (unless `snapshots: false`), as QEMU's driver does:
 * `saveState` pauses a running guest and writes {@linkcode FAKE_STATE_FILE} (the saved VM,
 * checked on restore) and {@linkcode FAKE_MEMORY_FILE} into an empty directory; `create` with
 * `spec.restoreFrom` checks them before any process exists (`invalid_argument` naming
 * `restoreFrom`) and leaves the VMM paused with the guest as saved (it does not boot again:
 * `resume` runs it, no new ready line).
 *
 * @module
 */
import { decodeBootConfig, READY_MARKER, type ReadyReport, VolantError } from "../../schema/mod.ts";
import {
  answerControl,
  bootIdentity,
  type FakeControlBehavior,
  type FakeGuestIdentity,
} from "./guest_identity.ts";
import type {
  CreateHooks,
  Driver,
  DriverProbe,
  KernelFormat,
  SavedState,
  ShutdownOptions,
  ShutdownResult,
  VmmHandle,
  VmmState,
  VmSpec,
} from "../driver.ts";

/** How a simulated VMM and its guest behave. */
export interface FakeBehavior {
  /** Milliseconds from `boot()` to the ready line on the serial console. */
  readyDelayMs: number;
  /** The guest never prints the ready line. */
  neverReady: boolean;
  /** Fields merged into the ready report. */
  readyReport: Partial<ReadyReport>;
  /** `create()` fails with this error (nothing is left behind). */
  createError: VolantError | null;
  /** `boot()` fails with this error (the process stays alive, like a VMM that refused `cont`). */
  bootError: VolantError | null;
  /** The VMM dies this many milliseconds after `boot()` (kernel panic with `-no-reboot`). */
  crashAfterMs: number | null;
  /** The guest ignores the power button: the stop ladder falls through to SIGTERM. */
  ignorePowerButton: boolean;
  /** The VMM ignores SIGTERM: the stop ladder falls through to SIGKILL. */
  ignoreSigterm: boolean;
  /** Its API never answers: the process lives, but `adopt` fails (a VMM still starting). */
  unresponsive: boolean;
  /** Milliseconds the guest takes to power off after the power button. */
  powerOffDelayMs: number;
  /**
   * What the fake kestrel reports as `workload` in `/healthz` (opaque JSON; null: none, as for a
   * VM without a plugin). Change it on a running process to flip the workload's health.
   */
  workload: Record<string, unknown> | null;
  /** `saveState()` fails with this error after pausing the guest (nothing is written). */
  saveError: VolantError | null;
  /** `create()` from a saved state fails with this error once it checked the files. */
  restoreError: VolantError | null;
  /** How the guest answers on its control port (`guest_identity.ts`). */
  control: FakeControlBehavior;
}

/** The saved VM in a fake saved state (JSON). */
export const FAKE_STATE_FILE = "fake-vmm-state.json";
/** The guest's "memory" in a fake saved state. */
export const FAKE_MEMORY_FILE = "fake-vmm-memory";

/** What {@linkcode FAKE_STATE_FILE} holds. */
interface FakeSavedVm {
  format: "volant-fake-vmm-state";
  driver: string;
  id: string;
  cpus: number;
  memoryMib: number;
  /** Whether the guest had printed its ready line. */
  ready: boolean;
  /** Who the guest was (a clone resumes as its parent until told otherwise). */
  identity: FakeGuestIdentity;
  memoryBytes: number;
}

/** Default behaviour: ready after 20 ms, obeys the power button within 5 ms. */
export const DEFAULT_FAKE_BEHAVIOR: Readonly<FakeBehavior> = {
  readyDelayMs: 20,
  neverReady: false,
  readyReport: {},
  createError: null,
  bootError: null,
  crashAfterMs: null,
  ignorePowerButton: false,
  ignoreSigterm: false,
  unresponsive: false,
  powerOffDelayMs: 5,
  workload: null,
  saveError: null,
  restoreError: null,
  control: "apply",
};

/** One simulated VMM process. */
export interface FakeProcess {
  /** Fake pid (above any real pid_max). */
  readonly pid: number;
  /** Fake start time (guards adoption like /proc start times). */
  readonly startTime: number;
  /** Name of the driver that created it. */
  readonly driver: string;
  /** The spec it was created with. */
  readonly spec: VmSpec;
  /** The handle `create()` returned. */
  readonly handle: VmmHandle;
  /** Its behaviour. */
  readonly behavior: FakeBehavior;
  /** The saved state it was restored from (`spec.restoreFrom`), or null when it booted. */
  readonly restoredFrom: string | null;
  /** Whether the guest printed its ready line (carried over by a save). */
  ready: boolean;
  /** Who the guest is (its boot config's, a saved guest's, or an identity sent since). */
  identity: FakeGuestIdentity;
  /** Whether its NICs are connected (false after a restore with `nicsDisconnected`). */
  nicsConnected: boolean;
  /** VMM-level state. */
  state: VmmState;
  /** False once it exited. */
  alive: boolean;
  /** How it ended, once it has. */
  exitReason: string | null;
  /** Internal: pending guest timers and exit waiters. */
  readonly timers: Set<ReturnType<typeof setTimeout>>;
  /** Internal: `waitExit` callers. */
  readonly waiters: Array<() => void>;
}

function appendLine(path: string, line: string): void {
  try {
    Deno.writeTextFileSync(path, line + "\n", { append: true, create: true });
  } catch {
    // The log's directory may be gone (the VM was deleted); a real VMM would lose it too.
  }
}

/**
 * The simulated process table. Share one between driver instances to model a daemon restart.
 *
 * @example
 * ```ts
 * import { FakeRegistry } from "./driver.ts";
 * const registry = new FakeRegistry();
 * console.assert(registry.alive().length === 0);
 * registry.dispose();
 * ```
 */
export class FakeRegistry {
  #processes = new Map<number, FakeProcess>();
  #nextPid = 10_000_000;
  #ticks = 1_000;

  /** Internal: registers a new process. */
  spawn(driver: string, spec: VmSpec, behavior: FakeBehavior): FakeProcess {
    const pid = this.#nextPid++;
    const startTime = this.#ticks++;
    const handle: VmmHandle = {
      driver,
      pid,
      startTime,
      apiSocket: `${spec.runtimeDir}/fake-vmm.sock`,
      runtimeDir: spec.runtimeDir,
      vmmLog: spec.vmmLog,
      ...(spec.jail ? { jail: spec.jail } : {}),
    };
    const process: FakeProcess = {
      pid,
      startTime,
      driver,
      spec,
      handle,
      behavior,
      restoredFrom: spec.restoreFrom ?? null,
      ready: false,
      identity: bootIdentity(spec.cmdline, spec.id),
      nicsConnected: !(spec.restoreFrom !== undefined && spec.nicsDisconnected === true),
      state: "created",
      alive: true,
      exitReason: null,
      timers: new Set(),
      waiters: [],
    };
    this.#processes.set(pid, process);
    return process;
  }

  /** The process with this pid (alive or not). */
  get(pid: number): FakeProcess | undefined {
    return this.#processes.get(pid);
  }

  /** The live process matching a handle (pid and start time), if any. */
  find(handle: VmmHandle): FakeProcess | undefined {
    const p = this.#processes.get(handle.pid);
    return p && p.alive && p.startTime === handle.startTime ? p : undefined;
  }

  /** Every live process. */
  alive(): FakeProcess[] {
    return [...this.#processes.values()].filter((p) => p.alive);
  }

  /** Internal: schedules a guest event, cancelled when the process exits. */
  schedule(p: FakeProcess, ms: number, fn: () => void): void {
    const id = setTimeout(() => {
      p.timers.delete(id);
      if (p.alive) fn();
    }, ms);
    p.timers.add(id);
  }

  /** Ends a process (as if it exited): timers stop, `waitExit` callers resume. */
  exit(pid: number, reason: string): void {
    const p = this.#processes.get(pid);
    if (!p || !p.alive) return;
    p.alive = false;
    p.state = "shutdown";
    p.exitReason = reason;
    for (const id of p.timers) clearTimeout(id);
    p.timers.clear();
    appendLine(p.spec.vmmLog, `fake-vmm[${pid}]: exited (${reason})`);
    for (const resolve of p.waiters.splice(0)) resolve();
  }

  /** Simulates a crash: the VMM dies by SIGKILL without the daemon asking. */
  kill(pid: number, message = "terminated by signal 9"): void {
    const p = this.#processes.get(pid);
    if (!p || !p.alive) return;
    appendLine(p.spec.vmmLog, `fake-vmm[${pid}]: ${message}`);
    this.exit(pid, "killed");
  }

  /** Ends every live process (call at the end of a test). */
  dispose(): void {
    for (const p of this.alive()) this.exit(p.pid, "disposed");
  }
}

/** Options of {@linkcode FakeDriver}. */
export interface FakeDriverOptions {
  /** Shared process table; default a new one. */
  registry?: FakeRegistry;
  /** Driver name; default `qemu` so records validate against `HypervisorName`. */
  name?: string;
  /** What `kvm` reports; default false. */
  kvm?: boolean;
  /** Kernel formats it accepts; default both. */
  kernelFormats?: readonly KernelFormat[];
  /** Version reported by `probe()`. */
  version?: string;
  /** `probe()` reports the driver unavailable. */
  unavailable?: boolean;
  /** Behaviour for every VM, or per spec. */
  behavior?: Partial<FakeBehavior> | ((spec: VmSpec) => Partial<FakeBehavior>);
  /** Whether it saves and restores guests (has `saveState`, takes `restoreFrom`); default true. */
  snapshots?: boolean;
  /** Whether its guests have a control port (`guestControl`, `connectNics`); default true. */
  control?: boolean;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** True when `path` starts with the qcow2 magic `QFI\xfb`. */
async function hasQcow2Magic(path: string): Promise<boolean> {
  const file = await Deno.open(path);
  try {
    const head = new Uint8Array(4);
    const n = await file.read(head);
    return n === 4 && head[0] === 0x51 && head[1] === 0x46 && head[2] === 0x49 &&
      head[3] === 0xfb;
  } finally {
    file.close();
  }
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/**
 * A simulated hypervisor driver.
 *
 * @example
 * ```ts
 * import { FakeDriver, FakeRegistry } from "./driver.ts";
 * const registry = new FakeRegistry();
 * const driver = new FakeDriver({ registry, behavior: { readyDelayMs: 5 } });
 * console.assert(driver.name === "qemu" && !driver.kvm);
 * registry.dispose();
 * ```
 */
export class FakeDriver implements Driver {
  /** The shared process table. */
  readonly registry: FakeRegistry;
  readonly name: string;
  readonly kvm: boolean;
  readonly kernelFormats: readonly KernelFormat[];
  #version: string;
  #unavailable: boolean;
  #behavior: Partial<FakeBehavior> | ((spec: VmSpec) => Partial<FakeBehavior>);
  /** Saves a guest's state (see the module doc); absent with `snapshots: false`. */
  saveState?: (handle: VmmHandle, dir: string) => Promise<SavedState>;
  /** The guest's control port; absent with `control: false`. */
  guestControl?: Driver["guestControl"];
  /** Where the guest's control port is; absent with `control: false`. */
  guestControlDevice?: string;
  /** Connects NICs a restore left disconnected; absent with `control: false`. */
  connectNics?: Driver["connectNics"];

  /** Creates a driver over `options.registry` (or a new one). */
  constructor(options: FakeDriverOptions = {}) {
    this.registry = options.registry ?? new FakeRegistry();
    this.name = options.name ?? "qemu";
    this.kvm = options.kvm ?? false;
    this.kernelFormats = options.kernelFormats ?? ["bzImage", "vmlinux"];
    this.#version = options.version ?? "fake-1.0";
    this.#unavailable = options.unavailable ?? false;
    this.#behavior = options.behavior ?? {};
    if (options.snapshots !== false) this.saveState = (handle, dir) => this.#saveState(handle, dir);
    if (options.control !== false) {
      this.guestControlDevice = "/dev/ttyS1";
      this.guestControl = (handle, line, opts) => this.#guestControl(handle, line, opts);
      this.connectNics = (handle) => this.#connectNics(handle);
    }
  }

  /** Replaces the behaviour for VMs created from now on. */
  setBehavior(behavior: Partial<FakeBehavior> | ((spec: VmSpec) => Partial<FakeBehavior>)): void {
    this.#behavior = behavior;
  }

  probe(): Promise<DriverProbe> {
    return Promise.resolve(
      this.#unavailable
        ? { name: this.name, available: false, kvm: false, reason: "fake driver set unavailable" }
        : {
          name: this.name,
          available: true,
          binary: "fake-vmm",
          version: this.#version,
          kvm: this.kvm,
        },
    );
  }

  async create(spec: VmSpec, hooks: CreateHooks = {}): Promise<VmmHandle> {
    const extra = typeof this.#behavior === "function" ? this.#behavior(spec) : this.#behavior;
    const behavior: FakeBehavior = { ...DEFAULT_FAKE_BEHAVIOR, ...extra };
    if (behavior.createError) throw behavior.createError;
    if (!this.kernelFormats.includes(spec.kernel.format)) {
      throw new VolantError(
        "vmm_failed",
        `${this.name} cannot boot ${spec.kernel.format} kernels`,
        { format: spec.kernel.format },
      );
    }
    // Like the real drivers: boot files are `kernel_not_found`, other paths `invalid_argument`.
    const bootFiles = [spec.kernel.path, ...(spec.initramfs ? [spec.initramfs] : [])];
    for (const file of bootFiles) {
      if (!(await exists(file))) {
        throw new VolantError("kernel_not_found", `Kernel image ${file} does not exist`, {
          path: file,
        });
      }
    }
    for (const [i, disk] of spec.disks.entries()) {
      if (!(await exists(disk.path))) {
        throw new VolantError(
          "invalid_argument",
          `Disk ${i} (${disk.id}) image ${disk.path} does not exist`,
          { path: disk.path },
        );
      }
    }
    if (!(await exists(spec.runtimeDir))) {
      throw new VolantError(
        "invalid_argument",
        `Runtime directory ${spec.runtimeDir} does not exist`,
        { path: spec.runtimeDir },
      );
    }
    const saved = spec.restoreFrom === undefined
      ? undefined
      : await this.#readSaved(spec, spec.restoreFrom);
    if (saved && behavior.restoreError) throw behavior.restoreError;
    // Like a real VMM, the fake opens its disks at start-up and exits when one is unusable.
    for (const disk of spec.disks) {
      if (disk.format === "qcow2" && !(await hasQcow2Magic(disk.path))) {
        const message = `fake-vmm: could not open '${disk.path}': Image is not in qcow2 format`;
        appendLine(spec.vmmLog, message);
        throw new VolantError("vmm_failed", `fake-vmm exited at once: ${message}`, {
          path: disk.path,
        });
      }
    }
    const p = this.registry.spawn(this.name, spec, behavior);
    if (saved) {
      // Holding the guest as it was saved, paused.
      p.state = "paused";
      p.ready = saved.ready;
      p.identity = structuredClone(saved.identity);
    }
    try {
      await hooks.onSpawn?.({ ...p.handle });
      await Deno.writeTextFile(p.handle.apiSocket, "");
      await Deno.writeTextFile(`${spec.runtimeDir}/fake-vmm.pid`, `${p.pid}\n`);
      await Deno.writeTextFile(spec.vmmLog, `fake-vmm[${p.pid}]: created ${spec.id}\n`, {
        append: true,
      });
    } catch (err) {
      this.registry.exit(p.pid, "failed to start");
      await this.cleanup(p.handle);
      throw new VolantError("vmm_failed", `fake-vmm: ${(err as Error).message}`, undefined, {
        cause: err,
      });
    }
    return { ...p.handle };
  }

  #live(handle: VmmHandle): FakeProcess {
    const p = this.registry.find(handle);
    if (!p || p.driver !== this.name) {
      throw new VolantError("vmm_failed", `VMM pid ${handle.pid} is not running`, {
        pid: handle.pid,
      });
    }
    return p;
  }

  boot(handle: VmmHandle): Promise<void> {
    try {
      const p = this.#live(handle);
      if (p.behavior.bootError) throw p.behavior.bootError;
      if (p.state !== "created") {
        throw new VolantError("vmm_failed", `VMM pid ${p.pid} is already ${p.state}`);
      }
      p.state = "running";
      this.#runGuest(p);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #runGuest(p: FakeProcess): void {
    const { spec, behavior } = p;
    appendLine(spec.serialLog, `[    0.000000] Linux version 6.1.0-fake (fake guest ${spec.id})`);
    if (!behavior.neverReady) {
      this.registry.schedule(p, behavior.readyDelayMs, () => {
        p.ready = true;
        const report: ReadyReport = {
          name: decodeBootConfig(spec.cmdline)?.name ?? spec.id,
          kestrel_version: "fake",
          uptime_ms: behavior.readyDelayMs,
          mem_total_kb: spec.memoryMib * 1024,
          mem_available_kb: spec.memoryMib * 900,
          ...behavior.readyReport,
        };
        appendLine(spec.serialLog, `${READY_MARKER} ${JSON.stringify(report)}`);
      });
    }
    if (behavior.crashAfterMs !== null) {
      this.registry.schedule(p, behavior.crashAfterMs, () => {
        appendLine(spec.serialLog, "Kernel panic - not syncing: fake crash");
        this.registry.kill(p.pid, "guest panicked; exiting (-no-reboot)");
      });
    }
  }

  info(handle: VmmHandle): Promise<VmmState> {
    try {
      return Promise.resolve(this.#live(handle).state);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Pauses a running guest. */
  pause(handle: VmmHandle): Promise<void> {
    return this.#switch(handle, "running", "paused");
  }

  /** Resumes a paused guest. */
  resume(handle: VmmHandle): Promise<void> {
    return this.#switch(handle, "paused", "running");
  }

  #switch(handle: VmmHandle, from: VmmState, to: VmmState): Promise<void> {
    try {
      const p = this.#live(handle);
      if (p.state !== from) {
        throw new VolantError("vmm_failed", `VMM pid ${p.pid} is ${p.state}, not ${from}`);
      }
      p.state = to;
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async shutdown(handle: VmmHandle, options: ShutdownOptions): Promise<ShutdownResult> {
    const p = this.registry.find(handle);
    if (!p) return { via: "already-exited" };
    if (p.state === "running") {
      if (!p.behavior.ignorePowerButton && p.behavior.powerOffDelayMs <= options.gracefulMs) {
        await sleep(p.behavior.powerOffDelayMs);
        if (!p.alive) return { via: "already-exited" };
        appendLine(p.spec.serialLog, "reboot: Power down");
        this.registry.exit(p.pid, "powered off");
        return { via: "graceful" };
      }
      await sleep(options.gracefulMs);
      if (!p.alive) return { via: "already-exited" };
    }
    if (!p.behavior.ignoreSigterm) {
      this.registry.exit(p.pid, "SIGTERM");
      return { via: "sigterm" };
    }
    await sleep(options.termMs);
    if (!p.alive) return { via: "already-exited" };
    this.registry.exit(p.pid, "SIGKILL");
    return { via: "sigkill" };
  }

  /** Checks the fake saved state in `dir` for `spec`; `invalid_argument` naming `restoreFrom`. */
  async #readSaved(spec: VmSpec, dir: string): Promise<FakeSavedVm> {
    if (!this.saveState) {
      throw new VolantError("unsupported", `${this.name} (fake) cannot restore a saved state`);
    }
    const refuse = (path: string, why: string) =>
      new VolantError("invalid_argument", `restoreFrom ${path}: ${why}`, {
        field: "restoreFrom",
        path,
      });
    const memory = `${dir}/${FAKE_MEMORY_FILE}`;
    const where = `${dir}/${FAKE_STATE_FILE}`;
    let text: string;
    try {
      text = await Deno.readTextFile(where);
    } catch {
      throw refuse(where, "no such file");
    }
    let saved: FakeSavedVm;
    try {
      saved = JSON.parse(text);
    } catch {
      throw refuse(where, "not a saved state file");
    }
    if (saved?.format !== "volant-fake-vmm-state" || saved.driver !== this.name) {
      throw refuse(where, "not a saved state file");
    }
    if (saved.cpus !== spec.cpus || saved.memoryMib !== spec.memoryMib) {
      throw refuse(
        where,
        `saved with ${saved.cpus} vCPUs and ${saved.memoryMib} MiB, the spec has ${spec.cpus} ` +
          `and ${spec.memoryMib}`,
      );
    }
    const size = await Deno.stat(memory).then((s) => s.size, () => null);
    if (size === null) throw refuse(memory, "no such file");
    if (size !== saved.memoryBytes) throw refuse(memory, "not a saved state file");
    return saved;
  }

  async #saveState(handle: VmmHandle, dir: string): Promise<SavedState> {
    const started = performance.now();
    const p = this.#live(handle);
    const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => null);
    if (entries === null || entries.length > 0) {
      throw new VolantError(
        "invalid_argument",
        `Saved state directory ${dir} ${entries === null ? "does not exist" : "is not empty"}`,
        { path: dir },
      );
    }
    if (p.state !== "running" && p.state !== "paused") {
      throw new VolantError(
        "vmm_failed",
        `VMM pid ${p.pid} is ${p.state}, not running or paused: cannot save its state`,
      );
    }
    p.state = "paused";
    if (p.behavior.saveError) throw p.behavior.saveError;
    // A little "memory" stands for the guest's (which a real save writes whole).
    const memory = new TextEncoder().encode(`fake guest memory of ${p.spec.id}\n`.repeat(64));
    const saved: FakeSavedVm = {
      format: "volant-fake-vmm-state",
      driver: this.name,
      id: p.spec.id,
      cpus: p.spec.cpus,
      memoryMib: p.spec.memoryMib,
      ready: p.ready,
      identity: structuredClone(p.identity),
      memoryBytes: memory.length,
    };
    const state = new TextEncoder().encode(JSON.stringify(saved));
    await Deno.writeFile(`${dir}/${FAKE_MEMORY_FILE}`, memory, { mode: 0o600 });
    await Deno.writeFile(`${dir}/${FAKE_STATE_FILE}`, state, { mode: 0o600 });
    appendLine(p.spec.vmmLog, `fake-vmm[${p.pid}]: saved its state in ${dir}`);
    return {
      files: [FAKE_MEMORY_FILE, FAKE_STATE_FILE],
      bytes: memory.length + state.length,
      ms: Math.round(performance.now() - started),
    };
  }

  /** The fake kestrel's control port (`guest_identity.ts`). */
  #guestControl(
    handle: VmmHandle,
    line: string,
    options: { timeoutMs: number; maxBytes: number },
  ): Promise<string> {
    try {
      const p = this.#live(handle);
      return Promise.resolve(answerControl(p.identity, line, {
        running: p.state === "running",
        behavior: p.behavior.control,
        timeoutMs: options.timeoutMs,
      }));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Connects the NICs a restore left disconnected. */
  #connectNics(handle: VmmHandle): Promise<void> {
    try {
      this.#live(handle).nicsConnected = true;
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async cleanup(handle: VmmHandle): Promise<void> {
    await removeIfPresent(handle.apiSocket);
    await removeIfPresent(`${handle.runtimeDir}/fake-vmm.pid`);
  }

  adopt(handle: VmmHandle): Promise<boolean> {
    const p = this.registry.find(handle);
    return Promise.resolve(
      p !== undefined && p.driver === this.name && handle.driver === this.name &&
        !p.behavior.unresponsive,
    );
  }

  waitExit(handle: VmmHandle): Promise<void> {
    const p = this.registry.find(handle);
    if (!p) return Promise.resolve();
    return new Promise((resolve) => p.waiters.push(resolve));
  }
}
