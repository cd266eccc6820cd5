/**
 * Waiting until a process is gone: polls `/proc`, and for a child of this process also wakes on
 * its exit status.
 *
 * @module
 */
import { childStatus } from "./_children.ts";
import { isAlive, signalProcess } from "./proc.ts";

/** Options of {@linkcode waitGone}. */
export interface WaitGoneOptions {
  /** Give up after this many milliseconds (resolve false); default: wait forever. */
  timeoutMs?: number;
  /** Poll interval for processes that are not our children; default 150 ms. */
  pollMs?: number;
}

/**
 * Resolves true once the process `pid` that started at `startTime` is gone (exited, reaped or
 * a zombie), or false when `timeoutMs` passes first. Polls `/proc`, and for a child of this
 * process also wakes on its exit status. (A VMM child is `unref`'d so it cannot keep the daemon
 * alive; the poll timer is what keeps a waiter's event loop running.)
 *
 * @example
 * ```ts ignore
 * import { waitGone } from "./mod.ts";
 * const gone = await waitGone(handle.pid, handle.startTime, { timeoutMs: 5_000 });
 * ```
 */
export async function waitGone(
  pid: number,
  startTime: number,
  options: WaitGoneOptions = {},
): Promise<boolean> {
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  const pollMs = options.pollMs ?? 150;
  const status = childStatus(pid, startTime);
  const seen = { exited: false };
  status?.then(() => seen.exited = true, () => seen.exited = true);
  while (!seen.exited && await isAlive(pid, startTime)) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = new Promise<void>((resolve) =>
      timer = setTimeout(resolve, Math.min(pollMs, left))
    );
    try {
      await (status ? Promise.race([status.then(() => {}, () => {}), tick]) : tick);
    } finally {
      clearTimeout(timer);
    }
  }
  return true;
}

/**
 * SIGKILLs the process `pid` that started at `startTime` (if it is still that process) and
 * waits until it is gone. Resolves false if it is still there after `timeoutMs`.
 *
 * @example
 * ```ts ignore
 * import { killAndWait } from "./mod.ts";
 * await killAndWait(handle.pid, handle.startTime);
 * ```
 */
export async function killAndWait(
  pid: number,
  startTime: number,
  timeoutMs = 10_000,
): Promise<boolean> {
  await signalProcess(pid, startTime, "SIGKILL").catch(() => false);
  return await waitGone(pid, startTime, { timeoutMs, pollMs: 20 });
}
