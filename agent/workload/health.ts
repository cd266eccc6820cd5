/**
 * The workload's continuous health check (the manifest's `health_check`): one probe every
 * `interval_ms` while the workload runs, each bounded by `timeout_ms`. `healthy_threshold`
 * passing probes in a row make it healthy, `unhealthy_threshold` failing ones unhealthy;
 * failures in the first `start_period_ms` of a run do not count. Probes: `http` (GET
 * `base_url` + `endpoint`, 2xx/3xx pass), `tcp` (a connection to 127.0.0.1:`port`, default the
 * base_url's), `exec` (the command in the workload's root exits 0).
 *
 * @module
 */
import type { WorkloadHealth } from "../../schema/agent.ts";
import type { HealthCheck } from "../../schema/manifest.ts";
import {
  commandOptions,
  killGroup,
  type LaunchPlace,
  type LaunchTarget,
  planLaunch,
  type Spawn,
} from "./launch.ts";

/** One probe's outcome. */
export interface ProbeResult {
  /** Whether it passed. */
  ok: boolean;
  /** Why it failed. */
  error?: string;
}

/** Runs one probe; never throws. */
export type Probe = () => Promise<ProbeResult>;

function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 3; e = (e as Error).cause) {
    const text = e instanceof Error ? e.message : String(e);
    if (text !== "" && !parts.some((p) => p.includes(text))) parts.push(text);
    if (!(e instanceof Error)) break;
  }
  return parts.join(": ");
}

/**
 * A probe that GETs `url` (redirects not followed): 2xx and 3xx pass.
 *
 * @example
 * ```ts ignore
 * import { httpProbe } from "./health.ts";
 * console.log(await httpProbe("http://127.0.0.1:80/health", 2000)());
 * ```
 */
export function httpProbe(url: string, timeoutMs: number): Probe {
  return async () => {
    try {
      const res = await fetch(url, {
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
        headers: { "user-agent": "kestrel-health" },
      });
      await res.body?.cancel().catch(() => {});
      if (res.status >= 200 && res.status < 400) return { ok: true };
      return { ok: false, error: `GET ${url} answered ${res.status}` };
    } catch (err) {
      const timedOut = err instanceof DOMException && err.name === "TimeoutError";
      return {
        ok: false,
        error: timedOut
          ? `GET ${url} timed out after ${timeoutMs} ms`
          : `GET ${url}: ${describe(err)}`,
      };
    }
  };
}

/**
 * A probe that opens a TCP connection to `127.0.0.1:port` and closes it.
 *
 * @example
 * ```ts ignore
 * import { tcpProbe } from "./health.ts";
 * console.log(await tcpProbe(5432, 1000)());
 * ```
 */
export function tcpProbe(port: number, timeoutMs: number): Probe {
  return async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connecting = Deno.connect({ hostname: "127.0.0.1", port });
    const late = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), timeoutMs));
    try {
      const conn = await Promise.race([connecting, late]);
      if (conn === "timeout") {
        connecting.then((c) => c.close(), () => {});
        return {
          ok: false,
          error: `connecting to 127.0.0.1:${port} timed out after ${timeoutMs} ms`,
        };
      }
      conn.close();
      return { ok: true };
    } catch (err) {
      return { ok: false, error: `connecting to 127.0.0.1:${port}: ${describe(err)}` };
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Most bytes of an exec probe's output kept for its error message. */
const EXEC_OUTPUT_BYTES = 512;

async function readSome(stream: ReadableStream<Uint8Array>): Promise<string> {
  const buf = new Uint8Array(EXEC_OUTPUT_BYTES);
  let used = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, EXEC_OUTPUT_BYTES - used);
      buf.set(value.subarray(0, take), used);
      used += take;
    }
  } catch {
    // The pipe broke: keep what was read.
  } finally {
    reader.releaseLock();
  }
  return new TextDecoder().decode(buf.subarray(0, used)).trim();
}

/**
 * A probe that runs `argv` as the workload runs its entrypoint (same root, user, workdir and
 * environment, through {@linkcode planLaunch}) and passes when it exits 0; after `timeoutMs` its
 * process group is killed and the probe fails.
 *
 * @example
 * ```ts ignore
 * import { execProbe } from "./health.ts";
 * const probe = execProbe(["/bin/true"], { env: {} }, { root: "/" }, 1000);
 * console.log(await probe());
 * ```
 */
export function execProbe(
  argv: readonly string[],
  target: LaunchTarget,
  place: LaunchPlace,
  timeoutMs: number,
  spawn: Spawn = (command, options) => new Deno.Command(command, options).spawn(),
): Probe {
  const shown = argv.join(" ");
  return async () => {
    let child: Deno.ChildProcess;
    try {
      const spec = await planLaunch(argv, target, place);
      child = spawn(spec.command, commandOptions(spec, "piped"));
    } catch (err) {
      return { ok: false, error: `cannot run ${shown}: ${describe(err)}` };
    }
    const output = Promise.all([readSome(child.stdout), readSome(child.stderr)]);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, "SIGKILL");
    }, timeoutMs);
    const status = await child.status;
    clearTimeout(timer);
    killGroup(child.pid, "SIGKILL"); // whatever it left behind in its group
    const said = (await output).filter((s) => s !== "").join(" / ");
    if (timedOut) return { ok: false, error: `${shown} timed out after ${timeoutMs} ms` };
    if (status.success) return { ok: true };
    const how = status.signal === null ? `exited ${status.code}` : `was killed by ${status.signal}`;
    return { ok: false, error: `${shown} ${how}${said === "" ? "" : `: ${said}`}` };
  };
}

/**
 * The probe a manifest's check describes, for a workload serving `baseUrl`.
 *
 * @example
 * ```ts ignore
 * import { probeFor } from "./health.ts";
 * const probe = probeFor(check, "http://127.0.0.1:80", { env: {} }, { root: "/" });
 * ```
 */
export function probeFor(
  check: HealthCheck,
  baseUrl: string,
  target: LaunchTarget,
  place: LaunchPlace,
  spawn?: Spawn,
): Probe {
  if (check.kind === "http") {
    return httpProbe(`${baseUrl.replace(/\/+$/, "")}${check.endpoint ?? "/"}`, check.timeout_ms);
  }
  if (check.kind === "tcp") {
    return tcpProbe(check.port ?? Number(new URL(baseUrl).port || "80"), check.timeout_ms);
  }
  return execProbe(check.command ?? ["/bin/true"], target, place, check.timeout_ms, spawn);
}

/** Options of {@linkcode HealthMonitor}. */
export interface HealthMonitorOptions {
  /** Called whenever the verdict changes. */
  onChange?: (health: WorkloadHealth) => void;
  /** The clock (tests); default `Date.now`. */
  now?: () => number;
}

/**
 * Probes the workload while it runs and keeps the verdict. Without a check the verdict is
 * `none` (the supervisor then calls a running workload healthy).
 *
 * @example
 * ```ts ignore
 * import { HealthMonitor, tcpProbe } from "./health.ts";
 * const monitor = new HealthMonitor(check, tcpProbe(80, 1000));
 * monitor.start();          // when the workload (re)starts
 * console.log(monitor.state.status);
 * monitor.stop();           // when it exits
 * ```
 */
export class HealthMonitor {
  #check: HealthCheck | undefined;
  #probe: Probe;
  #onChange: (health: WorkloadHealth) => void;
  #now: () => number;
  #state: WorkloadHealth;
  #run = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #startedAt = 0;

  /** A stopped monitor for `check` (none: `undefined`) using `probe`. */
  constructor(check: HealthCheck | undefined, probe: Probe, options: HealthMonitorOptions = {}) {
    this.#check = check;
    this.#probe = probe;
    this.#onChange = options.onChange ?? (() => {});
    this.#now = options.now ?? Date.now;
    this.#state = this.#fresh();
  }

  #fresh(): WorkloadHealth {
    return {
      kind: this.#check?.kind ?? "none",
      status: this.#check === undefined ? "none" : "unknown",
      failures: 0,
      successes: 0,
      last_check: null,
      last_error: null,
    };
  }

  /** The current verdict and counters (a copy). */
  get state(): WorkloadHealth {
    return { ...this.#state };
  }

  /** Starts probing a new run: the verdict goes back to `unknown`, the first probe is now. */
  start(): void {
    this.stop();
    if (this.#check === undefined) return;
    const run = ++this.#run;
    this.#startedAt = this.#now();
    const tick = async () => {
      const result = await this.#probe().catch((err) => ({ ok: false, error: String(err) }));
      if (run !== this.#run) return;
      this.#record(result);
      this.#timer = setTimeout(tick, this.#check?.interval_ms ?? 2000);
    };
    this.#timer = setTimeout(tick, 0);
  }

  /** Stops probing (the workload exited or is stopping); the verdict goes back to the start. */
  stop(): void {
    this.#run++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const before = this.#state.status;
    this.#state = this.#fresh();
    if (before !== this.#state.status) this.#onChange(this.state);
  }

  #record(result: ProbeResult): void {
    const check = this.#check;
    if (check === undefined) return;
    const s = this.#state;
    const before = s.status;
    s.last_check = new Date(this.#now()).toISOString();
    if (result.ok) {
      s.successes++;
      s.failures = 0;
      s.last_error = null;
      if (s.successes >= check.healthy_threshold) s.status = "healthy";
    } else {
      s.successes = 0;
      s.last_error = result.error ?? "failed";
      const grace = this.#now() - this.#startedAt < check.start_period_ms;
      if (!grace) s.failures++;
      if (s.failures >= check.unhealthy_threshold) s.status = "unhealthy";
    }
    if (s.status !== before) this.#onChange(this.state);
  }
}
