/**
 * Waiting for a VM to run: the wait route in chunks up to the user's `--timeout`, with
 * progress on stderr. Internal to the CLI.
 *
 * @module
 */
import { type VmRecord, VolantError, WaitQuery } from "../../schema/mod.ts";
import type { VolantClient } from "../client.ts";
import { formatDuration } from "../format.ts";
import type { Io } from "../io.ts";
import { startProgress } from "../progress.ts";

/** Default `--timeout` of create/start/restart. Longer than volantd's own ready timeout
 * (60 s by default), so a guest that never comes up is reported as crashed with its cause. */
export const DEFAULT_WAIT_MS = 120_000;

const MAX_CHUNK_MS = WaitQuery.shape.timeout_ms.def.innerType.maxValue ?? 600_000;

/**
 * Waits until VM `name` is `running`, for at most `timeoutMs` in all (the daemon caps one
 * wait request, so longer waits take several). A timeout names the VM, its state and what
 * to do next.
 */
export async function waitRunning(
  client: VolantClient,
  name: string,
  timeoutMs: number,
): Promise<VmRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const chunk = Math.min(Math.max(deadline - Date.now(), 1), MAX_CHUNK_MS);
    try {
      return await client.waitVm(name, { state: "running", timeoutMs: chunk });
    } catch (err) {
      if (!(err instanceof VolantError) || err.code !== "timeout") throw err;
      if (deadline - Date.now() > 0) continue;
      const state = typeof err.details?.state === "string" ? err.details.state : "unknown";
      throw new VolantError(
        "timeout",
        `VM ${name} did not become running within ${formatDuration(timeoutMs)} (it is ` +
          `${state}); it may still be booting: check with 'volar vms get ${name}', or wait ` +
          `longer with --timeout`,
        { name, state, wanted: "running", timeout_ms: timeoutMs },
      );
    }
  }
}

/** Options of {@linkcode bootAndWait}. */
export interface BootOptions {
  /** Progress label while the request runs, e.g. `Creating demo`. */
  label: string;
  /** Wait for `running` (false: return at `starting`). */
  wait: boolean;
  /** Total wait in ms. */
  timeoutMs: number;
  /** No plain progress lines (`--json`); a terminal still gets the spinner. */
  quiet: boolean;
}

/** Sends a create/start/restart request, then waits for `running` unless told not to. */
export async function bootAndWait(
  io: Io,
  client: VolantClient,
  request: () => Promise<VmRecord>,
  options: BootOptions,
): Promise<VmRecord> {
  const progress = startProgress(io, options.label, { quiet: options.quiet && !io.errIsTerminal });
  try {
    const vm = await request();
    if (!options.wait || vm.state === "running") return vm;
    progress.update(
      `Waiting for ${vm.name} to be running (up to ${formatDuration(options.timeoutMs)})`,
    );
    return await waitRunning(client, vm.name, options.timeoutMs);
  } finally {
    progress.stop();
  }
}
