/**
 * Launching a REST VMM (Cloud Hypervisor, Firecracker): spawn it detached (it outlives the
 * daemon), write its pid file and wait until its API answers, with nothing left behind (process,
 * socket, pid file) when it does not.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import { type DetachedProcess, killAndWait, logTail, spawnDetached } from "../process/mod.ts";
import { removeIfPresent } from "../spec_files.ts";
import type { VmmJailFiles } from "../jail/prepare.ts";

/** Options of {@linkcode launchRestVmm}. */
export interface LaunchRestVmmOptions {
  /** Name in messages, e.g. `Firecracker`. */
  label: string;
  /** The VMM's argv (binary first). */
  argv: readonly string[];
  /** Command words it runs through; each must exec, never fork. */
  prefix?: readonly string[];
  /** What `/proc/<pid>/exe` shows once the VMM runs. */
  exe: string;
  /** Receives the VMM's stdout and stderr (appended). */
  log: string;
  /** The API socket `ready` asks (removed when the launch fails). */
  socket: string;
  /** Written with the VMM's pid once it runs. */
  pidFile: string;
  /** Files removed when the launch fails, besides socket and pid file. */
  files: readonly string[];
  /** Resolves once the API answers; throws (or rejects) while it does not. */
  ready: (timeoutMs: number) => Promise<void>;
  /** Limit from spawn until `ready` resolves. */
  startTimeoutMs: number;
  /** Limit for one `ready` attempt. */
  apiTimeoutMs: number;
  /** Launch the VMM in its jail (see `prepareVmmJail`): prefix, exe and cgroup to join. */
  jail?: VmmJailFiles;
  /** Called with the pid and start time as soon as the process exists (see `spawnDetached`). */
  onSpawn?: (pid: number, startTime: number) => void | Promise<void>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/**
 * Spawns a VMM detached (see `spawnDetached`), writes its pid file and waits until `ready`
 * resolves. When the VMM exits first, never answers, or anything else fails, it is killed and
 * reaped, its socket, pid file and `files` are removed, and the error carries the tail of its
 * log: `vmm_failed` when it exited, `timeout` when it never answered (saying whether the
 * socket ever appeared).
 *
 * @example
 * ```ts ignore
 * import { launchRestVmm } from "./launch.ts";
 * const vmm = await launchRestVmm({
 *   label: "Cloud Hypervisor", argv, exe, log: spec.vmmLog, socket, pidFile, files: [],
 *   ready: (ms) => ping(socket, ms), startTimeoutMs: 10_000, apiTimeoutMs: 2_000,
 * });
 * ```
 */
export async function launchRestVmm(options: LaunchRestVmmOptions): Promise<DetachedProcess> {
  const removeFiles = async () => {
    for (const file of [options.socket, options.pidFile, ...options.files]) {
      await removeIfPresent(file);
    }
  };
  const jail = options.jail;
  const vmm = await spawnDetached({
    argv: options.argv,
    log: options.log,
    prefix: [...(options.prefix ?? []), ...(jail?.prefix ?? [])],
    exe: jail?.exe ?? options.exe,
    label: options.label,
    ...(jail ? { cgroupProcs: jail.cgroupProcs, clearEnv: true } : {}),
    ...(options.onSpawn ? { onSpawn: options.onSpawn } : {}),
  }).catch(async (err) => {
    await removeFiles();
    throw err;
  });
  try {
    await Deno.writeTextFile(options.pidFile, `${vmm.pid}\n`);
    await waitReady(vmm, options);
    return vmm;
  } catch (err) {
    await killAndWait(vmm.pid, vmm.startTime);
    await removeFiles();
    throw err;
  }
}

async function waitReady(vmm: DetachedProcess, options: LaunchRestVmmOptions): Promise<void> {
  const deadline = Date.now() + options.startTimeoutMs;
  const seen: { exit: Deno.CommandStatus | null } = { exit: null };
  vmm.status.then((s) => seen.exit = s, () => {});
  const tail = async () => {
    const text = await logTail(options.log, vmm.logOffset, 10);
    return text ? `; its log ends: ${text}` : "; its log is empty";
  };
  const died = async (status: Deno.CommandStatus) =>
    new VolantError(
      "vmm_failed",
      `${options.label} ${
        status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`
      } while starting${await tail()}`,
      { pid: vmm.pid, code: status.code, vmmLog: options.log },
    );
  let lastError: unknown = null;
  while (Date.now() < deadline) {
    if (seen.exit) throw await died(seen.exit);
    const left = Math.max(100, Math.min(options.apiTimeoutMs, deadline - Date.now()));
    try {
      await options.ready(left);
      return;
    } catch (err) {
      // Missing, refused or closed while the VMM starts (or dies): normal, look again.
      lastError = err;
    }
    const exit = await Promise.race([vmm.status, sleep(20).then(() => null)]);
    if (exit) throw await died(exit);
  }
  if (seen.exit) throw await died(seen.exit);
  const why = !(await exists(options.socket))
    ? "the socket never appeared"
    : lastError instanceof Error
    ? lastError.message
    : "no answer";
  throw new VolantError(
    "timeout",
    `${options.label} (pid ${vmm.pid}) did not answer on ${options.socket} within ` +
      `${options.startTimeoutMs} ms: ${why}${await tail()}`,
    { pid: vmm.pid, socket: options.socket, vmmLog: options.log },
  );
}
