/**
 * The stop ladder every driver uses: ask the guest to power off (the driver's own way, e.g.
 * QMP `system_powerdown`), wait; ask the VMM to exit (when it has a call for that, e.g. Cloud
 * Hypervisor's `vmm.shutdown`), wait; SIGTERM the VMM, wait; SIGKILL it, wait. Resolves once
 * the process is gone, naming the step that ended it.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { ShutdownOptions, ShutdownResult } from "./driver.ts";
import { isAlive, signalProcess, waitGone } from "./process/mod.ts";

/** Options of {@linkcode stopLadder}. */
export interface StopLadderOptions extends ShutdownOptions {
  /**
   * Sends the graceful power-off request. Resolves false when there is nobody to ask (the
   * guest is not running), which skips the graceful wait. Errors are treated like false.
   */
  requestPowerOff?: () => Promise<boolean>;
  /**
   * Asks the VMM itself to exit: the first half of the terminate step, before SIGTERM. Once it
   * resolves the VMM has `termMs` to go, and a VMM gone after it was asked ended at the
   * terminate step (`sigterm`). A rejection goes straight to SIGTERM.
   */
  requestExit?: () => Promise<void>;
  /** How long to wait after SIGKILL before giving up; default 10 000 ms. */
  killMs?: number;
  /** Label in error messages; default `VMM`. */
  label?: string;
}

/**
 * Runs the ladder on the process `pid` that started at `startTime`.
 *
 * @example
 * ```ts ignore
 * import { stopLadder } from "./ladder.ts";
 * const { via } = await stopLadder(handle.pid, handle.startTime, {
 *   gracefulMs: 10_000,
 *   termMs: 5_000,
 *   requestPowerOff: async () => { await powerButton(); return true; },
 * });
 * ```
 */
export async function stopLadder(
  pid: number,
  startTime: number,
  options: StopLadderOptions,
): Promise<ShutdownResult> {
  if (!(await isAlive(pid, startTime))) return { via: "already-exited" };
  if (options.gracefulMs > 0 && options.requestPowerOff) {
    const asked = await options.requestPowerOff().catch(() => false);
    if (asked) {
      if (await waitGone(pid, startTime, { timeoutMs: options.gracefulMs })) {
        return { via: "graceful" };
      }
    } else if (!(await isAlive(pid, startTime))) {
      return { via: "already-exited" };
    }
  }
  const exitAsked = options.requestExit
    ? await options.requestExit().then(() => true, () => false)
    : false;
  if (exitAsked && await waitGone(pid, startTime, { timeoutMs: options.termMs })) {
    return { via: "sigterm" };
  }
  if (!(await signalProcess(pid, startTime, "SIGTERM"))) {
    return { via: exitAsked ? "sigterm" : "already-exited" };
  }
  if (await waitGone(pid, startTime, { timeoutMs: options.termMs })) return { via: "sigterm" };
  if (!(await signalProcess(pid, startTime, "SIGKILL"))) return { via: "sigterm" };
  const killMs = options.killMs ?? 10_000;
  if (await waitGone(pid, startTime, { timeoutMs: killMs })) return { via: "sigkill" };
  throw new VolantError(
    "vmm_failed",
    `${options.label ?? "VMM"} pid ${pid} is still there ${killMs} ms after SIGKILL ` +
      "(stuck in the kernel?)",
    { pid },
  );
}
