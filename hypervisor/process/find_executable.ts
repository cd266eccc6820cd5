/**
 * Finding a binary the way a shell does.
 *
 * @module
 */

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Resolves a binary like a shell would: a name containing `/` is taken as a path (made
 * absolute), anything else is looked up on `PATH`. `null` when there is no executable file.
 *
 * @example
 * ```ts
 * import { findExecutable } from "./mod.ts";
 * console.assert((await findExecutable("sh"))?.startsWith("/"));
 * console.assert((await findExecutable("no-such-binary-volant")) === null);
 * ```
 */
export async function findExecutable(
  binary: string,
  searchPath: string = Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
): Promise<string | null> {
  if (binary === "") return null;
  if (binary.includes("/")) {
    const path = binary.startsWith("/") ? binary : `${Deno.cwd()}/${binary}`;
    return await isExecutableFile(path) ? path : null;
  }
  for (const dir of searchPath.split(":")) {
    if (dir === "") continue;
    const path = `${dir.replace(/\/+$/, "")}/${binary}`;
    if (path.startsWith("/") && await isExecutableFile(path)) return path;
  }
  return null;
}
