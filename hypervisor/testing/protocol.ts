/**
 * The test guest protocol the contract suite speaks with a guest over its serial console and
 * kernel command line (the fake simulates it; `busybox_guest.ts` implements it), and finding the
 * processes a test started.
 *
 * @module
 */

/** Kernel command-line word telling the test guest to ignore the power button. */
export const TEST_IGNORE_POWER = "volant_test_power=ignore";
/** Serial-line prefix with which the test guest reports a block device. */
export const TEST_DISK_MARKER = "VOLANT_TEST_DISK";

/**
 * Pids whose `/proc/<pid>/cmdline` mentions `dir` (other than this process): the VMMs a test
 * started with files in its own temp dir.
 *
 * @example
 * ```ts
 * import { processesMentioning } from "./protocol.ts";
 * console.assert((await processesMentioning("/no/such/dir/volant")).length === 0);
 * ```
 */
export async function processesMentioning(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
      if (cmdline.includes(dir)) pids.push(pid);
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}
