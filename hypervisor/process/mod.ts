/**
 * Process management for VMMs, shared by every driver: spawn a VMM detached so it outlives the
 * daemon, tell a live VMM from a reused pid or a zombie through `/proc/<pid>/stat`, signal it,
 * wait until it is gone.
 *
 * VMMs this process spawned are its children: their exit status is awaited so they never linger
 * as zombies, and waiting on them wakes on that status. VMMs adopted after a daemon restart are
 * not children; waiting on them polls `/proc`.
 *
 * ```ts ignore
 * import { spawnDetached, waitGone } from "./mod.ts";
 * const vmm = await spawnDetached({ argv: ["/usr/bin/qemu-system-x86_64", "-S"], log: "/tmp/q.log" });
 * await waitGone(vmm.pid, vmm.startTime);
 * ```
 *
 * @module
 */
export { childStatus } from "./_children.ts";
export { findExecutable } from "./find_executable.ts";
export {
  isAlive,
  parseProcStat,
  type ProcStat,
  readProcStat,
  readStartTime,
  signalProcess,
} from "./proc.ts";
export {
  type DetachedProcess,
  fileSize,
  logTail,
  readRange,
  spawnDetached,
  type SpawnDetachedOptions,
} from "./spawn.ts";
export { killAndWait, waitGone, type WaitGoneOptions } from "./wait.ts";
