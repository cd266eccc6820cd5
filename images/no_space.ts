/**
 * Running out of disk while writing what a registry, an image or an artifact URL sends: the
 * error says which directory's filesystem is full and what to do, instead of an OS message.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";

/**
 * Whether `err` is the OS's "no space left on device" (ENOSPC) or "quota exceeded" (EDQUOT).
 *
 * @example
 * ```ts
 * import { isNoSpace } from "./no_space.ts";
 * const e = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
 * console.assert(isNoSpace(e) && !isNoSpace(new Error("boom")));
 * ```
 */
export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT" ||
    (err instanceof Error && /No space left on device|Disk quota exceeded/.test(err.message));
}

/**
 * `err` as a clear `invalid_state` error when it is ENOSPC (naming `dir` and `what` was being
 * written), else `err` itself. The caller removes what it wrote.
 *
 * @example
 * ```ts
 * import { noSpaceError } from "./no_space.ts";
 * const e = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
 * console.assert(/no space left/.test((noSpaceError(e, "/var/lib/volant/images", "layer 1") as Error).message));
 * ```
 */
export function noSpaceError(err: unknown, dir: string, what: string): unknown {
  if (!isNoSpace(err)) return err;
  return new VolantError(
    "invalid_state",
    `${what}: no space left on the filesystem holding ${dir}; nothing was kept. Free space ` +
      "there (volar images rm, or remove unused plugins) or move state_dir to a larger disk",
    { dir },
    { cause: err },
  );
}
