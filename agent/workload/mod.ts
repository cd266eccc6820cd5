/**
 * The plugin's workload under kestrel: {@linkcode Supervisor} starts the manifest's entrypoint
 * in the workload's root (busybox `nsenter` chroot + ids when the root is not `/`), restarts it
 * by its restart policy with exponential backoff, probes its health (http, tcp, exec), keeps
 * its output in a bounded ring ({@linkcode LogBuffer}) echoed to the console, and stops it with
 * SIGTERM then SIGKILL.
 *
 * ```ts ignore
 * import { startWorkload } from "./mod.ts";
 * const supervisor = startWorkload(manifest, { root: "/", spawn: (c, o) => reaper.spawn(c, o) });
 * console.log(supervisor.status());
 * await supervisor.stop();
 * ```
 *
 * @module
 */
export { startWorkload, type StartWorkloadOptions, Supervisor } from "./supervisor.ts";
export {
  STABLE_RUN_MS,
  STOP_GRACE_MS,
  type SupervisedPlugin,
  type SupervisorOptions,
} from "./options.ts";
export { adoptEarlyWorkload, type AdoptedRun, type AdoptOptions, runStatus } from "./adopt.ts";
export { backoffDelay, decideRestart, type RestartDecision, type RunEnd } from "./backoff.ts";
export {
  execProbe,
  HealthMonitor,
  type HealthMonitorOptions,
  httpProbe,
  type Probe,
  probeFor,
  type ProbeResult,
  tcpProbe,
} from "./health.ts";
export {
  commandOptions,
  DEFAULT_BUSYBOX,
  DEFAULT_PATH,
  killGroup,
  type LaunchPlace,
  type LaunchSpec,
  type LaunchTarget,
  planLaunch,
  type Spawn,
  workloadEnv,
} from "./launch.ts";
export {
  LOG_MAX_BYTES,
  LOG_MAX_LINES,
  LogBuffer,
  type LogBufferOptions,
  type LogQuery,
} from "./log_buffer.ts";
export {
  ConsoleEcho,
  ECHO_QUEUE_BYTES,
  type EchoSink,
  MAX_LINE_BYTES,
  pumpLines,
} from "./output.ts";
export { parsePasswd, type PasswdEntry, resolveUser, type UserIds } from "./user.ts";
