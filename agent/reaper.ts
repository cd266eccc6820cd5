/**
 * Zombie reaping for PID 1. Orphans are re-parented to PID 1 and must be collected with
 * `waitpid`, but Deno's runtime collects the children it spawned for `Deno.Command` itself:
 * stealing their status would break `child.status`. So the reaper only collects zombies whose
 * parent is this process and whose pid it did not spawn through {@linkcode Reaper.spawn}
 * (or register with {@linkcode Reaper.track}). It scans on SIGCHLD and on a slow timer. A child
 * PID 1 inherited rather than spawned (the workload stage 0 started) is {@linkcode Reaper.claim}ed:
 * its status goes to the claimant instead of being dropped as an orphan's.
 *
 * @module
 */
import { decodeWaitStatus, type ExitStatus, waitpid, type WaitResult, WNOHANG } from "./libc.ts";

/** The fields of `/proc/<pid>/stat` the reaper needs. */
export interface ProcStat {
  /** Process id. */
  pid: number;
  /** Command name (may contain spaces and parentheses). */
  comm: string;
  /** State letter: R, S, D, Z, T… */
  state: string;
  /** Parent process id. */
  ppid: number;
}

/**
 * Parses `/proc/<pid>/stat`. The command name is everything between the first `(` and the
 * last `)`, so names like `a) Z 1 (b` cannot fool it. Returns `undefined` for malformed text.
 *
 * @example
 * ```ts
 * import { parseProcStat } from "./reaper.ts";
 * const s = parseProcStat("42 (my (odd) cmd) Z 1 42 42 0 -1");
 * console.assert(s?.comm === "my (odd) cmd" && s.state === "Z" && s.ppid === 1);
 * ```
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const state = rest[0] ?? "";
  const ppid = Number(rest[1]);
  if (!Number.isInteger(pid) || pid <= 0 || !/^[A-Za-z]$/.test(state) || !Number.isInteger(ppid)) {
    return undefined;
  }
  return { pid, comm: text.slice(open + 1, close), state, ppid };
}

/**
 * Whether the reaper may collect this process: a zombie, child of `parentPid`, not spawned
 * through Deno (not in `tracked`).
 *
 * @example
 * ```ts
 * import { isReapable } from "./reaper.ts";
 * const zombie = { pid: 7, comm: "sleep", state: "Z", ppid: 1 };
 * console.assert(isReapable(zombie, 1, new Set()));
 * console.assert(!isReapable(zombie, 1, new Set([7])));
 * ```
 */
export function isReapable(
  stat: ProcStat,
  parentPid: number,
  tracked: ReadonlySet<number>,
): boolean {
  return stat.state === "Z" && stat.ppid === parentPid && !tracked.has(stat.pid);
}

/** One collected orphan. */
export interface Reaped {
  /** Its pid. */
  pid: number;
  /** Its command name. */
  comm: string;
  /** How it ended. */
  status: ExitStatus;
}

/** Options of {@linkcode Reaper}. */
export interface ReaperOptions {
  /** Where to list processes; default `/proc`. */
  procDir?: string;
  /** Whose zombies to collect; default this process (`Deno.pid`, 1 in the guest). */
  parentPid?: number;
  /** Period of the slow safety scan in ms; default 10000. */
  intervalMs?: number;
  /** Called for each orphan collected. */
  onReaped?: (reaped: Reaped) => void;
  /** `waitpid` to use (tests); default libc's. */
  waitpid?: (pid: number, options: number) => WaitResult;
}

/**
 * Collects orphaned zombies without touching the children Deno waits for.
 *
 * @example
 * ```ts ignore
 * import { Reaper } from "./reaper.ts";
 * const reaper = new Reaper();
 * reaper.start();
 * const child = reaper.spawn("sh", { args: ["-c", "sleep 1 &"] }); // its status stays Deno's
 * await child.status;
 * reaper.stop();
 * ```
 */
export class Reaper {
  #tracked = new Set<number>();
  #claims = new Map<number, (status: ExitStatus) => void>();
  #procDir: string;
  #parentPid: number;
  #intervalMs: number;
  #onReaped: ((reaped: Reaped) => void) | undefined;
  #waitpid: (pid: number, options: number) => WaitResult;
  #running: Promise<Reaped[]> | undefined;
  #again = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #listener: (() => void) | undefined;
  #count = 0;

  /** Creates a stopped reaper; call {@linkcode Reaper.start} to scan on SIGCHLD and a timer. */
  constructor(options: ReaperOptions = {}) {
    this.#procDir = options.procDir ?? "/proc";
    this.#parentPid = options.parentPid ?? Deno.pid;
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#onReaped = options.onReaped;
    this.#waitpid = options.waitpid ?? waitpid;
  }

  /** How many orphans this reaper collected so far. */
  get reapedCount(): number {
    return this.#count;
  }

  /** Pids the reaper leaves to Deno. */
  get tracked(): ReadonlySet<number> {
    return this.#tracked;
  }

  /** Leaves `pid` to its owner (Deno's runtime): the reaper will not collect it. */
  track(pid: number): void {
    this.#tracked.add(pid);
  }

  /** Stops leaving `pid` alone (after its owner collected it). */
  untrack(pid: number): void {
    this.#tracked.delete(pid);
  }

  /**
   * Claims child `pid` (one this process inherited, not spawned): the reaper collects it like
   * an orphan but resolves the promise with its status instead of counting it as one. Claim it
   * before the reaper starts, or its status may be taken as an orphan's.
   */
  claim(pid: number): Promise<ExitStatus> {
    const { promise, resolve } = Promise.withResolvers<ExitStatus>();
    this.#claims.set(pid, resolve);
    return promise;
  }

  /**
   * Spawns a command with `Deno.Command` and tracks its pid until Deno has collected its
   * status. kestrel spawns every child this way.
   */
  spawn(command: string | URL, options?: Deno.CommandOptions): Deno.ChildProcess {
    const child = new Deno.Command(command, options).spawn();
    const pid = child.pid;
    this.#tracked.add(pid);
    const done = () => this.#tracked.delete(pid);
    child.status.then(done, done);
    return child;
  }

  /**
   * Scans for zombies now and collects the reapable ones. Concurrent calls share one scan,
   * which runs once more when asked during a pass.
   */
  scan(): Promise<Reaped[]> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    const run = async () => {
      const all: Reaped[] = [];
      do {
        this.#again = false;
        all.push(...(await this.#scanOnce()));
      } while (this.#again);
      return all;
    };
    const running = run().finally(() => {
      this.#running = undefined;
    });
    this.#running = running;
    return running;
  }

  async #scanOnce(): Promise<Reaped[]> {
    const out: Reaped[] = [];
    const pids: number[] = [];
    for await (const entry of Deno.readDir(this.#procDir)) {
      if (/^\d+$/.test(entry.name)) pids.push(Number(entry.name));
    }
    for (const pid of pids) {
      let stat: ProcStat | undefined;
      try {
        stat = parseProcStat(await Deno.readTextFile(`${this.#procDir}/${pid}/stat`));
      } catch {
        continue; // gone meanwhile
      }
      // Check the tracked set right before waitpid, in the same tick: a Deno.Command child
      // spawned during this scan is tracked before any await can let us reach it.
      if (stat === undefined || !isReapable(stat, this.#parentPid, this.#tracked)) continue;
      const claimant = this.#claims.get(pid);
      let result: WaitResult;
      try {
        result = this.#waitpid(pid, WNOHANG);
      } catch {
        continue; // ECHILD: someone else collected it
      }
      if (result.pid !== pid) continue;
      if (claimant !== undefined) {
        this.#claims.delete(pid);
        claimant(decodeWaitStatus(result.status));
        continue;
      }
      const reaped = { pid, comm: stat.comm, status: decodeWaitStatus(result.status) };
      this.#count++;
      out.push(reaped);
      this.#onReaped?.(reaped);
    }
    return out;
  }

  /**
   * Scans now (a child may have ended before anyone listened), then on every SIGCHLD and every
   * `intervalMs`. Idempotent.
   */
  start(): void {
    if (this.#listener !== undefined) return;
    const trigger = () => {
      this.scan().catch(() => {});
    };
    this.#listener = trigger;
    Deno.addSignalListener("SIGCHLD", trigger);
    this.#timer = setInterval(trigger, this.#intervalMs);
    trigger();
  }

  /** Stops scanning (the listener and the timer). */
  stop(): void {
    if (this.#listener !== undefined) {
      Deno.removeSignalListener("SIGCHLD", this.#listener);
      this.#listener = undefined;
    }
    if (this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
