/**
 * Compiles stage 0's `detach` helper (`detach.c`, beside this file): a static program of a
 * few KiB that starts the workload in a session of its own with default signal dispositions.
 * musl-gcc is preferred (17 KiB), gcc `-static` is the fallback (≈ 670 KiB); both give the same
 * bytes for the same compiler, so the stage-0 archive stays reproducible.
 *
 * @module
 */

/** A compiled `detach`. */
export interface DetachBinary {
  /** The static executable. */
  data: Uint8Array;
  /** Which compiler made it (`musl-gcc` or `gcc`). */
  compiler: string;
}

/** The C source of `detach`, as shipped in the repository. */
export function detachSource(): Promise<string> {
  return Deno.readTextFile(new URL("./detach.c", import.meta.url));
}

async function tryCompile(cc: string, source: string, dir: string): Promise<Uint8Array | string> {
  const out = `${dir}/detach-${cc}`;
  try {
    const run = await new Deno.Command(cc, {
      args: ["-static", "-Os", "-s", "-Wl,--build-id=none", "-o", out, source],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!run.success) return `${cc}: ${new TextDecoder().decode(run.stderr).trim().slice(-400)}`;
    return await Deno.readFile(out);
  } catch (err) {
    return `${cc}: ${err instanceof Deno.errors.NotFound ? "not installed" : String(err)}`;
  }
}

/**
 * Compiles `detach` with the first compiler that works (`musl-gcc`, then `gcc`); throws naming
 * each compiler's failure (install `musl-tools` or `gcc`).
 *
 * @example
 * ```ts ignore
 * import { buildDetach } from "./build.ts";
 * const { data, compiler } = await buildDetach();
 * ```
 */
export async function buildDetach(compilers = ["musl-gcc", "gcc"]): Promise<DetachBinary> {
  const dir = await Deno.makeTempDir({ prefix: "volant-detach-" });
  try {
    const source = `${dir}/detach.c`;
    await Deno.writeTextFile(source, await detachSource());
    const failures: string[] = [];
    for (const cc of compilers) {
      const result = await tryCompile(cc, source, dir);
      if (typeof result !== "string") return { data: result, compiler: cc };
      failures.push(result);
    }
    throw new Error(
      `cannot compile stage 0's detach helper (apt-get install musl-tools): ${failures.join("; ")}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
