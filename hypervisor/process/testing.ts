/**
 * Helpers for the process tests: unique markers to find our own test processes, and killing
 * them by pid.
 *
 * @module
 */

/** Kills (by pid) every process whose command line contains `marker`. */
export async function killMarked(marker: string): Promise<void> {
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    if (cmdline.split("\0").includes(marker)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone.
      }
    }
  }
}

/** A sleep duration unique to this run, to find our own sleepers by command line. */
export function marker(): string {
  return `3${crypto.getRandomValues(new Uint32Array(1))[0]! % 1000}.${Date.now() % 100000}`;
}

/** The exit status of a spawned VMM, keeping the event loop alive while it is reaped. */
export async function exitStatus(p: { status: Promise<Deno.CommandStatus> }) {
  const keepAlive = setInterval(() => {}, 20);
  try {
    return await p.status;
  } finally {
    clearInterval(keepAlive);
  }
}
