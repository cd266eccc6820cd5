/**
 * volar's entry point: runs one command line and resolves to its exit code (0 success,
 * 1 API or connection error, 2 usage error). It never exits the process itself; the root
 * `main.ts` does.
 *
 * @module
 */
import { reportError } from "./errors.ts";
import { denoIo, type Io } from "./io.ts";
import { buildProgram, HelpShown, wantsJson } from "./program.ts";

/**
 * Runs volar with its command-line arguments (without the program name).
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * const code = await main(["vms", "list", "--json"]);
 * ```
 */
export async function main(args: string[], io: Io = denoIo()): Promise<number> {
  try {
    await buildProgram(io).parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof HelpShown) return err.exitCode;
    return reportError(io, err, wantsJson(args));
  }
}
