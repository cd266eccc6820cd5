/**
 * Adopting the workload stage 0 started before kestrel ran (`kernels/initramfs.ts`): stage 0
 * starts it right after the network, in the workload's root, exactly as kestrel would launch it,
 * with its stdout and stderr going into two FIFOs that stage 0 — and so PID 1 after the exec into
 * kestrel — holds open on {@linkcode EARLY_WORKLOAD_FDS} (a FIFO keeps its buffered output only
 * while someone holds it open), and its pid in {@linkcode EARLY_WORKLOAD_FILES}. kestrel opens
 * the FIFOs' read ends, then closes the inherited descriptors (so the readers see end-of-file
 * when the workload and its children are gone), and claims the pid from PID 1's reaper for its
 * exit status. The supervisor then treats it as its own first run.
 *
 * Who can forge this: the files live on the runtime root's `/run`, which is not in the
 * workload's root; kestrel only adopts a pid that is its own child.
 *
 * @module
 */
import { EARLY_WORKLOAD_FDS, EARLY_WORKLOAD_FILES } from "../../schema/boot_config.ts";
import { closeFd, type ExitStatus } from "../libc.ts";

/** How a run ended, as `Deno.CommandStatus` says it. */
export interface RunStatus {
  success: boolean;
  code: number | null;
  signal: Deno.Signal | null;
}

/** A workload process kestrel did not spawn but supervises. */
export interface AdoptedRun {
  /** Its pid (it leads its own session and process group). */
  pid: number;
  /** Its standard output. */
  stdout: ReadableStream<Uint8Array>;
  /** Its standard error. */
  stderr: ReadableStream<Uint8Array>;
  /** Resolves when it has ended. */
  status: Promise<RunStatus>;
}

const SIGNALS: Record<number, Deno.Signal> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  4: "SIGILL",
  5: "SIGTRAP",
  6: "SIGABRT",
  7: "SIGBUS",
  8: "SIGFPE",
  9: "SIGKILL",
  10: "SIGUSR1",
  11: "SIGSEGV",
  12: "SIGUSR2",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
  16: "SIGSTKFLT",
  17: "SIGCHLD",
  18: "SIGCONT",
  19: "SIGSTOP",
  20: "SIGTSTP",
  21: "SIGTTIN",
  22: "SIGTTOU",
  23: "SIGURG",
  24: "SIGXCPU",
  25: "SIGXFSZ",
  26: "SIGVTALRM",
  27: "SIGPROF",
  28: "SIGWINCH",
  29: "SIGIO",
  30: "SIGPWR",
  31: "SIGSYS",
};

/**
 * A decoded wait status as `Deno.CommandStatus` would give it.
 *
 * @example
 * ```ts
 * import { runStatus } from "./adopt.ts";
 * console.assert(runStatus({ kind: "exited", code: 0 }).success);
 * console.assert(runStatus({ kind: "signaled", signal: 15 }).signal === "SIGTERM");
 * ```
 */
export function runStatus(status: ExitStatus): RunStatus {
  if (status.kind === "exited") {
    return { success: status.code === 0, code: status.code, signal: null };
  }
  if (status.kind === "signaled") {
    return { success: false, code: 128 + status.signal, signal: SIGNALS[status.signal] ?? null };
  }
  return { success: false, code: null, signal: null };
}

/** Options of {@linkcode adoptEarlyWorkload}. */
export interface AdoptOptions {
  /** Claims the pid's exit status (PID 1's reaper: `reaper.claim`). */
  claim: (pid: number) => Promise<ExitStatus>;
  /** Where stage 0 left the pid and the FIFOs; default {@linkcode EARLY_WORKLOAD_FILES}. */
  files?: { pid: string; stdout: string; stderr: string };
  /**
   * The inherited descriptors to close once the FIFOs are open; default
   * {@linkcode EARLY_WORKLOAD_FDS} through `close(2)`; `false`: none (tests).
   */
  inherited?: { fds: { stdout: number; stderr: number }; close: (fd: number) => void } | false;
  /** This process (the pid's parent); default `Deno.pid`. */
  parentPid?: number;
  /** How long to wait for the pid file once the FIFOs exist, in ms; default 2000. */
  waitMs?: number;
  /** kestrel's log. */
  log?: (message: string) => void;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function readPid(path: string, waitMs: number): Promise<number> {
  const deadline = performance.now() + waitMs;
  for (;;) {
    const text = await Deno.readTextFile(path).catch(() => "");
    if (/^\d{1,10}\n$/.test(text)) {
      const pid = Number(text);
      if (pid > 1) return pid;
    }
    if (performance.now() >= deadline) {
      throw new Error(`no valid pid in ${path} after ${waitMs} ms (${JSON.stringify(text)})`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function parentOf(pid: number): Promise<number | undefined> {
  const text = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => undefined);
  if (text === undefined) return undefined;
  const ppid = Number(text.slice(text.lastIndexOf(")") + 1).trim().split(/\s+/)[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

/**
 * Adopts the workload stage 0 started, if it started one (its FIFOs exist): reads its pid,
 * checks it is this process's child, claims its status, opens its output, closes the inherited
 * descriptors. `undefined` when stage 0 started nothing; throws when it did but the workload
 * cannot be adopted (the caller ends its process group and launches the workload itself).
 *
 * @example
 * ```ts ignore
 * import { adoptEarlyWorkload } from "./adopt.ts";
 * const run = await adoptEarlyWorkload({ claim: (pid) => reaper.claim(pid) });
 * ```
 */
export async function adoptEarlyWorkload(options: AdoptOptions): Promise<AdoptedRun | undefined> {
  const files = options.files ?? EARLY_WORKLOAD_FILES;
  if (!(await exists(files.stdout))) return undefined;
  const pid = await readPid(files.pid, options.waitMs ?? 2000);
  const parent = await parentOf(pid);
  const self = options.parentPid ?? Deno.pid;
  // Its pid may be gone already only as a zombie, which /proc still lists with its parent.
  if (parent !== self) {
    throw new Error(
      `pid ${pid} from ${files.pid} is not a child of this process (parent ${parent ?? "none"})`,
    );
  }
  const status = options.claim(pid).then(runStatus);
  let out: Deno.FsFile;
  let err: Deno.FsFile;
  try {
    // The write ends stay open (our inherited descriptors), so these opens never block.
    out = await Deno.open(files.stdout, { read: true });
    err = await Deno.open(files.stderr, { read: true });
  } catch (cause) {
    try {
      Deno.kill(-pid, "SIGKILL"); // ours, and unsupervisable: the caller starts it afresh
    } catch {
      // already gone
    }
    throw new Error(`cannot open the output of pid ${pid}: ${(cause as Error).message}`);
  }
  const inherited = options.inherited ?? {
    fds: EARLY_WORKLOAD_FDS,
    close: closeFd,
  };
  if (inherited !== false) {
    for (const [stream, fd] of Object.entries(inherited.fds)) {
      const target = await Deno.readLink(`/proc/self/fd/${fd}`).catch(() => "");
      const want = stream === "stdout" ? files.stdout : files.stderr;
      if (target === want) inherited.close(fd);
      else options.log?.(`fd ${fd} is ${target || "not open"}, not ${want}: left alone`);
    }
  }
  return { pid, stdout: out.readable, stderr: err.readable, status };
}
