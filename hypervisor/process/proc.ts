/**
 * Reading `/proc/<pid>/stat` to tell a live VMM from a reused pid or a zombie, and signalling
 * a process only while it is still the one that was started.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";

export interface ProcStat {
  pid: number;
  /** The command name (field 2, without the parentheses; may contain spaces and parentheses). */
  comm: string;
  /** One-letter state (field 3): `R`, `S`, `D`, `T`, `Z` (zombie), `X` (dead), … */
  state: string;
  /** Parent pid (field 4). */
  ppid: number;
  /** Session id (field 6). */
  session: number;
  /** Start time in clock ticks since boot (field 22). */
  startTime: number;
}

/**
 * Parses the text of `/proc/<pid>/stat`. The command name is whatever lies between the first
 * `(` and the last `)`, so names containing spaces or parentheses do not shift the fields.
 *
 * @example
 * ```ts
 * import { parseProcStat } from "./mod.ts";
 * const stat = parseProcStat("42 (a) b) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0");
 * console.assert(stat.comm === "a) b" && stat.state === "S" && stat.startTime === 777);
 * ```
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) {
    throw new VolantError("internal", `Unparsable /proc stat line: ${JSON.stringify(text)}`);
  }
  const pid = Number(text.slice(0, open).trim());
  // After ") " come fields 3.. : state is field 3, so field N is rest[N - 3].
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const field = (n: number): string => rest[n - 3] ?? "";
  const stat: ProcStat = {
    pid,
    comm: text.slice(open + 1, close),
    state: field(3),
    ppid: Number(field(4)),
    session: Number(field(6)),
    startTime: Number(field(22)),
  };
  // Field 22 must be present: rest holds fields 3..N, so at least 20 entries.
  if (!Number.isInteger(pid) || rest.length < 20 || !Number.isInteger(stat.startTime)) {
    throw new VolantError("internal", `Unparsable /proc stat line: ${JSON.stringify(text)}`);
  }
  return stat;
}

/**
 * Reads and parses `/proc/<pid>/stat`; `null` when there is no such process.
 *
 * @example
 * ```ts
 * import { readProcStat } from "./mod.ts";
 * const self = await readProcStat(Deno.pid);
 * console.assert(self?.pid === Deno.pid);
 * ```
 */
export async function readProcStat(pid: number): Promise<ProcStat | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  return parseProcStat(text);
}

/**
 * The start time of `pid` (clock ticks since boot); `null` when there is no such process.
 *
 * @example
 * ```ts
 * import { readStartTime } from "./mod.ts";
 * console.assert(typeof (await readStartTime(Deno.pid)) === "number");
 * ```
 */
export async function readStartTime(pid: number): Promise<number | null> {
  return (await readProcStat(pid))?.startTime ?? null;
}

/**
 * True when `pid` exists, started at `startTime` (so it is not a reused pid) and is neither a
 * zombie (`Z`) nor dead (`X`).
 *
 * @example
 * ```ts
 * import { isAlive, readStartTime } from "./mod.ts";
 * const start = await readStartTime(Deno.pid);
 * console.assert(await isAlive(Deno.pid, start!));
 * console.assert(!(await isAlive(Deno.pid, start! + 1)));
 * ```
 */
export async function isAlive(pid: number, startTime: number): Promise<boolean> {
  const stat = await readProcStat(pid);
  return stat !== null && stat.startTime === startTime && stat.state !== "Z" &&
    stat.state !== "X";
}

/**
 * Sends `signal` to `pid` if it is still the process that started at `startTime`. Resolves to
 * false when that process is gone (nothing was signalled).
 *
 * @example
 * ```ts ignore
 * import { signalProcess } from "./mod.ts";
 * await signalProcess(handle.pid, handle.startTime, "SIGTERM");
 * ```
 */
export async function signalProcess(
  pid: number,
  startTime: number,
  signal: Deno.Signal,
): Promise<boolean> {
  if (!(await isAlive(pid, startTime))) return false;
  try {
    Deno.kill(pid, signal);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw new VolantError(
      "internal",
      `Cannot send ${signal} to pid ${pid}: ${(err as Error).message}`,
      { pid, signal },
      { cause: err },
    );
  }
}
