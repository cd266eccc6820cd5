/**
 * A root shell on the guest's serial console, so `volar vms console` reaches a prompt: busybox
 * `setsid cttyhack sh` (a new session whose controlling terminal is the real console device, so
 * Ctrl-C and job control work), respawned when it exits, stopped with kestrel.
 *
 * @module
 */

/** How to start processes (kestrel passes its reaper's `spawn`). */
export type Spawn = (command: string, options: Deno.CommandOptions) => Deno.ChildProcess;

/** Options of {@linkcode startConsoleShell}. */
export interface ConsoleShellOptions {
  /** The busybox binary (default `/bin/busybox`). */
  busybox?: string;
  /** Starts the shell (default `new Deno.Command(...).spawn()`). */
  spawn?: Spawn;
  /** Pause before a respawn (default 500 ms). */
  respawnMs?: number;
  /** Where to say what happened (kestrel's log). */
  log?: (line: string) => void;
}

/** A running console shell. */
export interface ConsoleShell {
  /** Times the shell has been started. */
  readonly starts: number;
  /** Stops respawning and ends the current shell. */
  stop(): Promise<void>;
}

/**
 * Starts the console shell and keeps it running. The shell inherits kestrel's standard streams
 * (the console) and its environment.
 *
 * @example
 * ```ts ignore
 * import { startConsoleShell } from "./console_shell.ts";
 * const shell = startConsoleShell({ busybox: "/bin/busybox" });
 * await shell.stop();
 * ```
 */
export function startConsoleShell(options: ConsoleShellOptions = {}): ConsoleShell {
  const busybox = options.busybox ?? "/bin/busybox";
  const spawn = options.spawn ?? ((cmd, opts) => new Deno.Command(cmd, opts).spawn());
  let stopped = false;
  let starts = 0;
  let child: Deno.ChildProcess | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = () => {
    if (stopped) return;
    try {
      child = spawn(busybox, {
        args: ["setsid", "cttyhack", "sh", "-l"],
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
        env: { HOME: "/root", TERM: "linux", PS1: "\\h:\\w# " },
      });
      starts++;
    } catch (err) {
      options.log?.(`console shell: cannot start ${busybox}: ${(err as Error).message}`);
      return;
    }
    child.status.then(() => {
      child = undefined;
      if (!stopped) timer = setTimeout(run, options.respawnMs ?? 500);
    });
  };
  run();
  return {
    get starts() {
      return starts;
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      const current = child;
      if (!current) return;
      try {
        current.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await current.status;
    },
  };
}
