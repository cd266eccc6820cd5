/**
 * kestrel's supervisor of the plugin's workload: starts `workload.entrypoint` in the workload's
 * root ({@linkcode planLaunch}), captures its output ({@linkcode LogBuffer}, echoed to the
 * console), restarts it by the manifest's `restart` policy with exponential backoff, probes
 * its health, and stops it (SIGTERM to its process group, SIGKILL after a grace time).
 *
 * Exit statuses and PID 1's reaper: Deno's runtime collects the children it spawns itself
 * (`waitpid` on their pid), and kestrel's {@linkcode Reaper} collects every other zombie child
 * of PID 1. The supervisor spawns through the reaper's `spawn` (option `spawn`), which marks
 * the pid as Deno's before any scan can see it, so the reaper never steals the workload's
 * status and `child.status` is always the real one. Orphans the workload leaves behind are
 * re-parented to PID 1 and collected by the reaper as usual.
 *
 * Rules: the workload runs in a session (process group) of its own; when its main process
 * ends, whatever is left of its group is SIGKILLed (as systemd's control-group kill mode), so
 * a restart never meets a stale child holding its port. `max_retries` bounds consecutive
 * restarts: a run that lasted at least `stableMs` (default 10 s) starts the count and the
 * backoff over. `restarts` counts automatic restarts only. An unhealthy workload is reported
 * (`healthy: false`, `/healthz` degraded), not restarted, unless `restartOnUnhealthy` is set.
 *
 * @module
 */
import type { LogStream, WorkloadExit, WorkloadState, WorkloadStatus } from "../../schema/agent.ts";
import { log } from "../system.ts";
import { decideRestart } from "./backoff.ts";
import { HealthMonitor, probeFor } from "./health.ts";
import {
  commandOptions,
  killGroup,
  type LaunchPlace,
  type LaunchTarget,
  planLaunch,
  type Spawn,
} from "./launch.ts";
import type { AdoptedRun } from "./adopt.ts";
import { LogBuffer } from "./log_buffer.ts";
import {
  STABLE_RUN_MS,
  STOP_GRACE_MS,
  type SupervisedPlugin,
  type SupervisorOptions,
} from "./options.ts";
import { ConsoleEcho, pumpLines } from "./output.ts";

/** How long an exit waits for the last output of the run before it is reported, in ms. */
const OUTPUT_SETTLE_MS = 250;

interface Run {
  child: Deno.ChildProcess | undefined;
  pid: number | null;
  startedAt: number;
  /** Resolves once the run's end has been handled. */
  ended: Promise<void>;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Supervises one workload. Create it, call {@linkcode Supervisor.start}; every method is safe to
 * call in any state (they run one after the other).
 *
 * @example
 * ```ts ignore
 * import { Supervisor } from "./supervisor.ts";
 * const sup = new Supervisor(manifest, { root: "/var/lib/app", busybox: "/bin/busybox" });
 * await sup.start();
 * console.log(sup.status().state, sup.logs.read({ tail: 10 }));
 * await sup.stop();
 * ```
 */
export class Supervisor {
  /** The plugin supervised. */
  readonly plugin: SupervisedPlugin;
  /** Its output and kestrel's events about it. */
  readonly logs: LogBuffer;
  #place: LaunchPlace;
  #target: LaunchTarget;
  #spawn: Spawn;
  #echo: ConsoleEcho | undefined;
  #log: (message: string) => void;
  #stopGraceMs: number;
  #stableMs: number;
  #restartOnUnhealthy: boolean;
  #now: () => number;
  #health: HealthMonitor;
  #adopt: AdoptedRun | undefined;

  #state: WorkloadState = "stopped";
  #since: number;
  #run: Run | undefined;
  #restarts = 0;
  #attempts = 0;
  #lastExit: WorkloadExit | null = null;
  #startedAt: number | null = null;
  #nextStartAt: number | null = null;
  #lastError: string | null = null;
  #wanted: "up" | "down" = "down";
  #backoff: ReturnType<typeof setTimeout> | undefined;
  #ops: Promise<unknown> = Promise.resolve();
  #watchers = new Set<(status: WorkloadStatus) => void>();

  /** A supervisor for `plugin`; nothing runs until {@linkcode Supervisor.start}. */
  constructor(plugin: SupervisedPlugin, options: SupervisorOptions = {}) {
    this.plugin = plugin;
    this.#now = options.now ?? Date.now;
    this.#since = this.#now();
    this.logs = options.logs instanceof LogBuffer ? options.logs : new LogBuffer(options.logs);
    this.#place = {
      root: options.root ?? "/",
      ...(options.busybox === undefined ? {} : { busybox: options.busybox }),
    };
    const w = plugin.workload;
    this.#target = { env: w.env, workdir: w.workdir, user: w.user };
    this.#spawn = options.spawn ??
      ((command, opts) => new Deno.Command(command, opts).spawn());
    this.#echo = options.echo === false ? undefined : new ConsoleEcho(options.echo);
    this.#log = options.log ?? log;
    this.#stopGraceMs = options.stopGraceMs ?? STOP_GRACE_MS;
    this.#stableMs = options.stableMs ?? STABLE_RUN_MS;
    this.#restartOnUnhealthy = options.restartOnUnhealthy ?? false;
    this.#adopt = options.adopt;
    const check = plugin.health_check;
    const probe = check === undefined
      ? () => Promise.resolve({ ok: true })
      : probeFor(check, w.base_url, this.#target, this.#place, this.#spawn);
    this.#health = new HealthMonitor(check, probe, {
      now: this.#now,
      onChange: (h) => this.#healthChanged(h.status, h.last_error),
    });
  }

  /** The workload's status now. */
  status(): WorkloadStatus {
    const health = this.#health.state;
    const iso = (ms: number | null) => ms === null ? null : new Date(ms).toISOString();
    return {
      name: this.plugin.name,
      version: this.plugin.version,
      state: this.#state,
      healthy: this.#state === "running" &&
        (health.status === "none" || health.status === "healthy"),
      health,
      pid: this.#run?.pid ?? null,
      restarts: this.#restarts,
      last_exit: this.#lastExit,
      started_at: iso(this.#startedAt),
      since: new Date(this.#since).toISOString(),
      next_start_at: iso(this.#nextStartAt),
      last_error: this.#lastError,
    };
  }

  /** Calls `listener` with the status after every change of state or health; returns the unsubscribe. */
  watch(listener: (status: WorkloadStatus) => void): () => void {
    const own = (s: WorkloadStatus) => listener(s);
    this.#watchers.add(own);
    return () => {
      this.#watchers.delete(own);
    };
  }

  /**
   * Starts the workload unless it is already running, starting or waiting to restart; resolves
   * once it was spawned (or could not be). Resets the retry count.
   */
  start(): Promise<WorkloadStatus> {
    return this.#queue(async () => {
      if (this.#run !== undefined || this.#state === "backoff") return;
      this.#wanted = "up";
      this.#attempts = 0;
      const adopted = this.#adopt;
      this.#adopt = undefined;
      await (adopted === undefined ? this.#launch() : this.#adoptRun(adopted));
    });
  }

  /**
   * Stops the workload: SIGTERM to its process group, SIGKILL after `graceMs` (default the
   * option `stopGraceMs`); a pending restart is cancelled. Resolves once it has exited.
   */
  stop(graceMs = this.#stopGraceMs): Promise<WorkloadStatus> {
    return this.#queue(() => this.#stopNow(graceMs));
  }

  /** Stops the workload (if it runs) and starts it again with a fresh retry count. */
  restart(graceMs = this.#stopGraceMs): Promise<WorkloadStatus> {
    return this.#queue(async () => {
      await this.#stopNow(graceMs);
      this.#event("restarting on request");
      this.#wanted = "up";
      this.#attempts = 0;
      await this.#launch();
    });
  }

  /**
   * Sends `sig` to the current run's process group (e.g. the manifest's `restore_signal` after
   * the VM took a new identity); returns false, sending nothing, when no run is under way.
   * Immediate: not queued behind a start, stop or restart in progress.
   */
  signal(sig: Deno.Signal): boolean {
    const pid = this.#run?.pid;
    if (pid === undefined || pid === null) return false;
    const sent = killGroup(pid, sig);
    if (sent) this.#event(`sent ${sig} to pid ${pid}'s process group`);
    return sent;
  }

  #queue(op: () => Promise<void>): Promise<WorkloadStatus> {
    const next = this.#ops.then(op);
    this.#ops = next.catch(() => {});
    return next.then(() => this.status());
  }

  #setState(state: WorkloadState): void {
    if (state !== this.#state) {
      this.#state = state;
      this.#since = this.#now();
    }
    this.#notify();
  }

  #notify(): void {
    const status = this.status();
    for (const w of [...this.#watchers]) {
      try {
        w(status);
      } catch {
        // A broken watcher must not break supervision.
      }
    }
  }

  #event(text: string): void {
    this.logs.push("kestrel", text);
    this.#log(`workload ${this.plugin.name}: ${text}`);
  }

  #line(stream: LogStream, line: string, bytes: number): void {
    this.logs.push(stream, line, bytes);
    this.#echo?.line(`[${this.plugin.name}${stream === "stderr" ? ":err" : ""}] ${line}`);
  }

  async #launch(): Promise<void> {
    this.#nextStartAt = null;
    this.#setState("starting");
    const argv = this.plugin.workload.entrypoint;
    let spec;
    try {
      spec = await planLaunch(argv, this.#target, this.#place);
    } catch (err) {
      // A configuration error: retrying cannot help.
      this.#lastError = message(err);
      this.#event(`cannot start: ${this.#lastError}`);
      this.#setState("failed");
      return;
    }
    const startedAt = this.#now();
    this.#startedAt = startedAt;
    let child: Deno.ChildProcess;
    try {
      child = this.#spawn(spec.command, commandOptions(spec, "piped"));
    } catch (err) {
      this.#lastError = `cannot spawn ${spec.command}: ${message(err)}`;
      this.#event(this.#lastError);
      const run: Run = { child: undefined, pid: null, startedAt, ended: Promise.resolve() };
      this.#run = run;
      this.#ended(run, { success: false, code: null, signal: null });
      return;
    }
    this.#begin(child.pid, child.stdout, child.stderr, child.status, startedAt, child);
  }

  /** Takes over a run started elsewhere (stage 0), checking the launch as `#launch` would. */
  async #adoptRun(adopted: AdoptedRun): Promise<void> {
    this.#nextStartAt = null;
    this.#setState("starting");
    try {
      await planLaunch(this.plugin.workload.entrypoint, this.#target, this.#place);
    } catch (err) {
      // What stage 0 started cannot be what the manifest asks for: end it, report why.
      killGroup(adopted.pid, "SIGKILL");
      adopted.status.catch(() => {});
      this.#lastError = message(err);
      this.#event(`cannot start: ${this.#lastError}`);
      this.#setState("failed");
      return;
    }
    this.#startedAt = this.#now();
    this.#begin(
      adopted.pid,
      adopted.stdout,
      adopted.stderr,
      adopted.status,
      this.#startedAt,
      undefined,
      "adopted (started by stage 0)",
    );
  }

  #begin(
    pid: number,
    stdout: ReadableStream<Uint8Array>,
    stderr: ReadableStream<Uint8Array>,
    ended: Promise<{ success: boolean; code: number | null; signal: Deno.Signal | null }>,
    startedAt: number,
    child: Deno.ChildProcess | undefined,
    how = "started",
  ): void {
    const argv = this.plugin.workload.entrypoint;
    const output = Promise.all([
      pumpLines(stdout, (l, n) => this.#line("stdout", l, n)),
      pumpLines(stderr, (l, n) => this.#line("stderr", l, n)),
    ]);
    const run: Run = { child, pid, startedAt, ended: Promise.resolve() };
    run.ended = ended.then(async (status) => {
      // Whatever the workload left in its process group goes with it (its pipes close).
      killGroup(pid, "SIGKILL");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([output, new Promise((r) => timer = setTimeout(r, OUTPUT_SETTLE_MS))]);
      clearTimeout(timer);
      this.#ended(run, { success: status.success, code: status.code, signal: status.signal });
    });
    this.#run = run;
    this.#lastError = null;
    this.#event(`${how} pid ${pid}: ${argv.join(" ")}`);
    this.#setState("running");
    this.#health.start();
  }

  #ended(
    run: Run,
    status: { success: boolean; code: number | null; signal: Deno.Signal | null },
  ): void {
    if (this.#run !== run) return;
    this.#run = undefined;
    this.#health.stop();
    const ranMs = this.#now() - run.startedAt;
    this.#lastExit = {
      code: status.signal === null ? status.code : null,
      signal: status.signal,
      at: new Date(this.#now()).toISOString(),
      ran_ms: ranMs,
    };
    const how = status.signal !== null
      ? `was killed by ${status.signal}`
      : status.code === null
      ? "did not start"
      : `exited with code ${status.code}`;
    if (this.#wanted === "down") {
      this.#event(`${how}; stopped`);
      this.#setState("stopped");
      return;
    }
    const decision = decideRestart(
      this.plugin.restart,
      { success: status.success, ranMs },
      this.#attempts,
      this.#stableMs,
    );
    if (decision.action === "stay") {
      this.#event(`${how} after ${ranMs} ms; staying down (${decision.reason})`);
      this.#setState("exited");
      return;
    }
    if (decision.action === "give_up") {
      this.#lastError = `${how}; gave up: ${decision.reason}`;
      this.#event(this.#lastError);
      this.#setState("failed");
      return;
    }
    this.#attempts = decision.attempt;
    this.#nextStartAt = this.#now() + decision.delayMs;
    this.#event(
      `${how} after ${ranMs} ms; restarting in ${decision.delayMs} ms ` +
        `(attempt ${decision.attempt} of ${this.plugin.restart.max_retries})`,
    );
    this.#setState("backoff");
    this.#backoff = setTimeout(() => {
      this.#backoff = undefined;
      this.#queue(async () => {
        if (this.#wanted !== "up" || this.#state !== "backoff") return;
        this.#restarts++;
        await this.#launch();
      });
    }, decision.delayMs);
  }

  async #stopNow(graceMs: number): Promise<void> {
    this.#wanted = "down";
    clearTimeout(this.#backoff);
    this.#backoff = undefined;
    this.#nextStartAt = null;
    const run = this.#run;
    if (run === undefined) {
      if (this.#state === "backoff" || this.#state === "starting" || this.#state === "running") {
        this.#event("stopped (no process was running)");
        this.#setState("stopped");
      }
      return;
    }
    if (run.pid !== null) {
      this.#event(`stopping pid ${run.pid} (SIGTERM, SIGKILL after ${graceMs} ms)`);
      killGroup(run.pid, "SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const graceOver = new Promise<"late">((r) => timer = setTimeout(() => r("late"), graceMs));
      const outcome = await Promise.race([run.ended, graceOver]);
      clearTimeout(timer);
      if (outcome === "late") {
        this.#event(`pid ${run.pid} still running after ${graceMs} ms; SIGKILL`);
        killGroup(run.pid, "SIGKILL");
      }
    }
    await run.ended;
  }

  #healthChanged(status: string, lastError: string | null): void {
    if (this.#run === undefined) {
      this.#notify();
      return;
    }
    if (status === "healthy") this.#event("healthy");
    if (status === "unhealthy") {
      this.#event(`unhealthy: ${lastError ?? "health check failed"}`);
      const pid = this.#run.pid;
      if (this.#restartOnUnhealthy && pid !== null) {
        this.#event(`restarting pid ${pid} because it is unhealthy (SIGTERM)`);
        killGroup(pid, "SIGTERM");
        const run = this.#run;
        const timer = setTimeout(() => {
          if (this.#run === run) killGroup(pid, "SIGKILL");
        }, this.#stopGraceMs);
        run.ended.finally(() => clearTimeout(timer));
      }
    }
    this.#notify();
  }
}

/** Options of {@linkcode startWorkload}: the supervisor's. */
export type StartWorkloadOptions = SupervisorOptions;

/**
 * Creates the supervisor of `manifest`'s workload and starts it in the background (a failure
 * to start is in its status and log, never thrown). kestrel calls this once at boot, passes
 * the supervisor to `apiRoutes` and stops it before powering off.
 *
 * @example
 * ```ts ignore
 * import { startWorkload } from "./supervisor.ts";
 * const sup = startWorkload(manifest, { root: "/", spawn: (c, o) => reaper.spawn(c, o) });
 * // at power-off:
 * await sup.stop();
 * ```
 */
export function startWorkload(
  manifest: SupervisedPlugin,
  options: StartWorkloadOptions = {},
): Supervisor {
  const supervisor = new Supervisor(manifest, options);
  supervisor.start().catch(() => {});
  return supervisor;
}
