/**
 * What a {@linkcode Supervisor} supervises and how: the manifest's parts it reads and its
 * options.
 *
 * @module
 */
import type { Manifest } from "../../schema/manifest.ts";
import type { AdoptedRun } from "./adopt.ts";
import type { Spawn } from "./launch.ts";
import type { LogBuffer, LogBufferOptions } from "./log_buffer.ts";
import type { EchoSink } from "./output.ts";

/** The parts of a manifest the supervisor and the API use. */
export type SupervisedPlugin = Pick<
  Manifest,
  "name" | "version" | "workload" | "restart" | "health_check" | "actions"
>;

/** Default time between SIGTERM and SIGKILL on stop, in ms. */
export const STOP_GRACE_MS = 5_000;

/** Default time a run must last to count as stable (resets backoff and retries), in ms. */
export const STABLE_RUN_MS = 10_000;

/** Options of `Supervisor`. */
export interface SupervisorOptions {
  /** The workload's root directory; default `/` (spawn directly, no chroot). */
  root?: string;
  /** busybox for `nsenter` when `root` is not `/`; default `/usr/bin/busybox`. */
  busybox?: string;
  /**
   * Spawns processes; kestrel passes `(c, o) => reaper.spawn(c, o)` so PID 1's reaper leaves
   * them to Deno. Default a plain `Deno.Command`.
   */
  spawn?: Spawn;
  /** The log ring, or its bounds; default 1 MiB / 10 000 lines. */
  logs?: LogBuffer | LogBufferOptions;
  /** Where output lines are echoed (`[name] line`); default kestrel's stdout; `false`: nowhere. */
  echo?: EchoSink | false;
  /** kestrel's own log (supervisor events); default stderr with the `kestrel: ` prefix. */
  log?: (message: string) => void;
  /** SIGTERM → SIGKILL grace on stop, in ms; default {@linkcode STOP_GRACE_MS}. */
  stopGraceMs?: number;
  /** A run at least this long resets backoff and retries; default {@linkcode STABLE_RUN_MS}. */
  stableMs?: number;
  /**
   * Restart the workload (SIGTERM, then its restart policy) when its health check turns
   * unhealthy. Default false: unhealthy is only reported (`/healthz` says degraded).
   */
  restartOnUnhealthy?: boolean;
  /** The clock (tests); default `Date.now`. */
  now?: () => number;
  /**
   * A run already under way that the first `start` adopts instead of spawning (the workload
   * stage 0 started before kestrel); later runs are spawned as usual.
   */
  adopt?: AdoptedRun;
}
