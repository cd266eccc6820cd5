/**
 * The restart policy's decisions, as pure functions: whether an ended run is started again,
 * and after how long.
 *
 * @module
 */
import type { RestartPolicy } from "../../schema/manifest.ts";

/** How a run ended, as the policy sees it. */
export interface RunEnd {
  /** It exited 0. */
  success: boolean;
  /** How long it ran, in ms. */
  ranMs: number;
}

/** What to do after a run ended. */
export type RestartDecision =
  | { action: "stay"; reason: string }
  | { action: "give_up"; reason: string }
  | { action: "restart"; delayMs: number; attempt: number };

/**
 * The delay before restart number `attempt` (0 for the first after a stable run):
 * `initial_ms × multiplier^attempt`, at most `max_ms`.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./backoff.ts";
 * const b = { initial_ms: 100, multiplier: 2, max_ms: 350 };
 * console.assert([0, 1, 2, 3].map((n) => backoffDelay(b, n)).join() === "100,200,350,350");
 * ```
 */
export function backoffDelay(backoff: RestartPolicy["backoff"], attempt: number): number {
  const delay = backoff.initial_ms * backoff.multiplier ** attempt;
  return Math.round(Math.min(delay, backoff.max_ms));
}

/**
 * Decides what follows a run's end. `attempts` counts the restarts since the workload last ran
 * stably: a run that lasted at least `stableMs` resets it to 0 first (so does a manual
 * start or restart), so `max_retries` bounds a crash loop, not the restarts of a lifetime, and
 * the backoff starts again from `initial_ms`. `always` restarts after any end, `on-failure`
 * after a non-zero exit or a signal, `never` never.
 *
 * @example
 * ```ts
 * import { decideRestart } from "./backoff.ts";
 * const policy = { policy: "on-failure" as const, max_retries: 1, backoff: { initial_ms: 50, multiplier: 2, max_ms: 1000 } };
 * const first = decideRestart(policy, { success: false, ranMs: 5 }, 0, 10_000);
 * console.assert(first.action === "restart" && first.delayMs === 50);
 * console.assert(decideRestart(policy, { success: false, ranMs: 5 }, 1, 10_000).action === "give_up");
 * console.assert(decideRestart(policy, { success: true, ranMs: 5 }, 0, 10_000).action === "stay");
 * ```
 */
export function decideRestart(
  restart: RestartPolicy,
  end: RunEnd,
  attempts: number,
  stableMs: number,
): RestartDecision {
  const since = end.ranMs >= stableMs ? 0 : attempts;
  if (restart.policy === "never") return { action: "stay", reason: "restart policy never" };
  if (restart.policy === "on-failure" && end.success) {
    return { action: "stay", reason: "it succeeded and the restart policy is on-failure" };
  }
  if (since >= restart.max_retries) {
    return {
      action: "give_up",
      reason: `restarted ${since} time${since === 1 ? "" : "s"} in a row without a stable run ` +
        `(max_retries ${restart.max_retries})`,
    };
  }
  return { action: "restart", delayMs: backoffDelay(restart.backoff, since), attempt: since + 1 };
}
