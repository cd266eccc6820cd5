/**
 * Spawning a VMM detached from the daemon: its own session (`setsid`), stdin from `/dev/null`,
 * stdout and stderr appended to a log, so it outlives the daemon. The pid recorded is proven to
 * be the VMM's own (every wrapper exec'd, none forked).
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import { trackChild } from "./_children.ts";
import { readStartTime } from "./proc.ts";
import { killAndWait } from "./wait.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The last `lines` non-empty lines of `path` written after byte `offset` ("" when there are
 * none or the file is missing).
 *
 * @example
 * ```ts ignore
 * import { logTail } from "./mod.ts";
 * console.log(await logTail("/var/log/volant/vms/web/vmm.log", 0, 5));
 * ```
 */
export async function logTail(path: string, offset: number, lines: number): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return "";
  }
  const text = new TextDecoder().decode(bytes.subarray(Math.min(offset, bytes.length)));
  return text.split("\n").map((l) => l.trimEnd()).filter((l) => l !== "").slice(-lines).join(
    "\n",
  );
}

/**
 * The size of `path` in bytes, 0 when it does not exist.
 *
 * @example
 * ```ts
 * import { fileSize } from "./spawn.ts";
 * console.assert((await fileSize("/nonexistent/volant.log")) === 0);
 * ```
 */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

/**
 * At most `maxBytes` of `path` from byte `offset` (fewer at the end of the file; none when the
 * file is missing): for polling logs a guest writes without ever holding more than a bound.
 *
 * @example
 * ```ts
 * import { readRange } from "./spawn.ts";
 * console.assert((await readRange("/nonexistent/serial.log", 0, 4096)).length === 0);
 * ```
 */
export async function readRange(
  path: string,
  offset: number,
  maxBytes: number,
): Promise<Uint8Array> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return new Uint8Array();
  }
  try {
    await file.seek(offset, Deno.SeekMode.Start);
    const buf = new Uint8Array(Math.max(0, maxBytes));
    let at = 0;
    while (at < buf.length) {
      const n = await file.read(buf.subarray(at));
      if (n === null || n === 0) break;
      at += n;
    }
    return buf.subarray(0, at);
  } finally {
    file.close();
  }
}

/** Options of {@linkcode spawnDetached}. */

export interface SpawnDetachedOptions {
  /** The VMM's argv; `argv[0]` is its binary (absolute path or a name on PATH). */
  argv: readonly string[];
  /** Appends the VMM's stdout and stderr here (created when missing). */
  log: string;
  /** Runs the VMM through this prefix, which must exec it without forking (e.g. `ip netns exec NS`). */
  prefix?: readonly string[];
  /**
   * The absolute, symlink-free path `/proc/<pid>/exe` must show once the VMM runs: proof that
   * the recorded pid is the VMM itself (every wrapper exec'd, none forked). Default: `argv[0]`
   * resolved with `Deno.realPath` when it is absolute.
   */
  exe?: string;
  /** How long the wrappers may take to exec the VMM; default 5000 ms. */
  execTimeoutMs?: number;
  /** Label used in error messages; default the binary's base name. */
  label?: string;
  /** Environment variables added to the VMM's environment. */
  env?: Record<string, string>;
  /**
   * Start the VMM with only `env` and a plain `PATH` (as a jail does), not the daemon's
   * environment. Default false.
   */
  clearEnv?: boolean;
  /**
   * `cgroup.procs` files the launch wrapper writes its own pid to before it execs anything:
   * the VMM starts inside its cgroup (the daemon itself never joins it).
   */
  cgroupProcs?: readonly string[];
  /**
   * Called with the pid and start time as soon as the process exists, before the wrappers
   * have exec'd the VMM (the pid and start time stay the same): callers record them here.
   */
  onSpawn?: (pid: number, startTime: number) => void | Promise<void>;
}

/** A VMM spawned by {@linkcode spawnDetached}. */
export interface DetachedProcess {
  pid: number;
  /** Start time from `/proc/<pid>/stat` (clock ticks since boot). */
  startTime: number;
  /**
   * Resolves when it exits (it is reaped then). The child is `unref`'d so it cannot keep the
   * daemon alive, which also means awaiting this alone does not keep the event loop running:
   * wait with `waitGone` (it polls) first.
   */
  status: Promise<Deno.CommandStatus>;
  /** The log's size before the spawn: its own output starts there. */
  logOffset: number;
}

/**
 * The shell wrapper: `$1` is the log, `$2` the number of `cgroup.procs` files that follow (it
 * joins each); the rest is the command, exec'd in a new session.
 */
const WRAPPER = 'log=$1 n=$2; shift 2; exec >>"$log" 2>&1 </dev/null; ' +
  'while [ "$n" -gt 0 ]; do echo $$ >"$1" || exit 126; shift; n=$((n - 1)); done; ' +
  'exec setsid "$@"';

/** `PATH` of a VMM started with `clearEnv`. */
const PLAIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function describeStatus(status: Deno.CommandStatus): string {
  return status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
}

/**
 * Spawns a VMM detached from this process: its own session (`setsid`, so terminal signals to
 * the daemon do not reach it and it outlives the daemon), stdin from `/dev/null`, stdout and
 * stderr appended to `options.log`. Resolves once `/proc/<pid>/exe` shows the VMM binary,
 * which proves the pid is the VMM's own. If the VMM exits or never appears, it is killed and
 * reaped and a `vmm_failed` error carries the tail of its log.
 *
 * @example
 * ```ts ignore
 * import { spawnDetached } from "./mod.ts";
 * const vmm = await spawnDetached({ argv: ["/usr/bin/qemu-system-x86_64", "-S"], log: "/tmp/q.log" });
 * console.log(vmm.pid, vmm.startTime);
 * ```
 */
export async function spawnDetached(options: SpawnDetachedOptions): Promise<DetachedProcess> {
  const argv = [...(options.prefix ?? []), ...options.argv];
  const binary = options.argv[0];
  if (argv.length === 0 || !binary) {
    throw new VolantError("invalid_argument", "spawnDetached: argv must name a binary");
  }
  const label = options.label ?? binary.split("/").pop() ?? binary;
  let exe = options.exe;
  if (exe === undefined && binary.startsWith("/")) {
    try {
      exe = await Deno.realPath(binary);
    } catch (err) {
      throw new VolantError(
        "vmm_failed",
        `Cannot start ${label}: ${binary}: ${(err as Error).message}`,
        { binary },
        { cause: err },
      );
    }
  }
  const logOffset = await fileSize(options.log);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        WRAPPER,
        "volant-spawn",
        options.log,
        String(options.cgroupProcs?.length ?? 0),
        ...(options.cgroupProcs ?? []),
        ...argv,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
      ...(options.clearEnv
        ? { clearEnv: true, env: { PATH: PLAIN_PATH, ...options.env } }
        : { env: options.env }),
    }).spawn();
  } catch (err) {
    throw new VolantError(
      "vmm_failed",
      `Cannot start ${label}: ${(err as Error).message}`,
      { argv },
      { cause: err },
    );
  }
  child.unref();
  const pid = child.pid;
  const seen: { exited: Deno.CommandStatus | null } = { exited: null };
  const status = child.status.then((s) => {
    seen.exited = s;
    return s;
  });
  const startTime = await readStartTime(pid);
  if (startTime === null) {
    // Gone before /proc could be read: it exited (failed) at once. The timer keeps the event
    // loop alive until the unref'd child's status arrives.
    const keepAlive = setInterval(() => {}, 20);
    const s = await status.finally(() => clearInterval(keepAlive));
    const tail = await logTail(options.log, logOffset, 10);
    throw new VolantError(
      "vmm_failed",
      `${label} ${describeStatus(s)} at once${tail ? `: ${tail}` : ""}`,
      { pid, code: s.code, log: options.log },
    );
  }
  if (seen.exited === null) trackChild(pid, startTime, status);
  if (options.onSpawn) {
    try {
      await options.onSpawn(pid, startTime);
    } catch (err) {
      await killAndWait(pid, startTime);
      throw err;
    }
  }

  const deadline = Date.now() + (options.execTimeoutMs ?? 5_000);
  while (exe !== undefined) {
    let current = "";
    try {
      current = await Deno.readLink(`/proc/${pid}/exe`);
    } catch {
      // Exiting, or mid-exec; the status check below tells which.
    }
    if (current === exe) break;
    if (seen.exited !== null) break;
    if (Date.now() > deadline) {
      await killAndWait(pid, startTime);
      throw new VolantError(
        "vmm_failed",
        `pid ${pid} still runs ${current || "(unknown)"}, not ${exe}, after ` +
          `${
            options.execTimeoutMs ?? 5_000
          } ms: a launch prefix forked instead of exec'ing ${label}`,
        { pid, exe: current, expected: exe },
      );
    }
    await sleep(5);
  }
  const exited = seen.exited;
  if (exited !== null) {
    const tail = await logTail(options.log, logOffset, 10);
    throw new VolantError(
      "vmm_failed",
      `${label} ${describeStatus(exited)} at once${tail ? `: ${tail}` : ""}`,
      { pid, code: exited.code, log: options.log },
    );
  }
  return { pid, startTime, status, logOffset };
}
