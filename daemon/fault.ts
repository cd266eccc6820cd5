/**
 * Fault injection for tests: `VOLANT_TEST_FAULT=<step>` makes volantd SIGKILL itself when it
 * reaches the named step, so a test can prove that a daemon killed there leaves nothing behind
 * once it restarts. Unset (always, outside tests) every fault point is a no-op.
 *
 * Steps: `vmm_spawned` — the VMM process exists and its pid is recorded, its API not yet
 * answered (inside `Driver.create`).
 *
 * @module
 */

/** The environment variable naming the step at which volantd kills itself. */
export const FAULT_ENV = "VOLANT_TEST_FAULT";

let armed: string | null | undefined;

function armedStep(): string | null {
  if (armed === undefined) {
    try {
      armed = Deno.env.get(FAULT_ENV) || null;
    } catch {
      armed = null; // No env permission: no faults.
    }
  }
  return armed;
}

/**
 * Kills this process with SIGKILL when `VOLANT_TEST_FAULT` names `step`.
 *
 * @example
 * ```ts
 * import { faultPoint } from "./fault.ts";
 * faultPoint("vmm_spawned"); // a no-op unless VOLANT_TEST_FAULT=vmm_spawned
 * ```
 */
export function faultPoint(step: string): void {
  if (armedStep() === step) Deno.kill(Deno.pid, "SIGKILL");
}
