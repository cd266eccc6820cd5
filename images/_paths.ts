/**
 * Path resolution inside an unpack root that never leaves it: member names are cleaned
 * lexically (a `..` that climbs above the root is refused), and each directory on the way is
 * checked with `lstat`. A symlink on the way is followed only when its target is relative and
 * stays inside the root; an absolute target or one that climbs out is refused, because on the
 * host it would point at the host's own files.
 *
 * @module
 */

/** Thrown when a path would leave the root; the caller names the entry. */
export class PathEscape extends Error {
  /** Creates the error with the reason. */
  constructor(message: string) {
    super(message);
    this.name = "PathEscape";
  }
}

/**
 * A member name as root-relative components (`./a//b/../c/` → `["a", "c"]`); null when a
 * `..` climbs above the root.
 *
 * @example
 * ```ts
 * import { cleanPath } from "./_paths.ts";
 * console.assert(cleanPath("./a/../b/")!.join("/") === "b");
 * console.assert(cleanPath("../evil") === null);
 * ```
 */
export function cleanPath(name: string): string[] | null {
  const out: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) return null;
      out.pop();
    } else out.push(part);
  }
  return out;
}

/** `root` joined with relative components. */
export function hostPath(root: string, rel: readonly string[]): string {
  return rel.length === 0 ? root : `${root}/${rel.join("/")}`;
}

/** `lstat`, or null when nothing is there. */
export async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

const MAX_LINKS = 40;

/**
 * Resolves the directory `dir` (root-relative components) to its real components inside
 * `root`, component by component with `lstat`. Missing directories are created (mode 0755)
 * when `create` is set, else the result is null. A relative symlink on the way is followed
 * within the root; an absolute one, one that climbs out of the root, a loop, or a
 * non-directory on the way throws {@linkcode PathEscape}.
 *
 * @example
 * ```ts ignore
 * import { resolveDir } from "./_paths.ts";
 * const real = await resolveDir("/tmp/root", ["usr", "lib"], true); // ["usr", "lib"]
 * ```
 */
export async function resolveDir(
  root: string,
  dir: readonly string[],
  create: boolean,
): Promise<string[] | null> {
  const cur: string[] = [];
  const queue = [...dir];
  let hops = 0;
  let via = "";
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (cur.length === 0) {
        throw new PathEscape(`it goes through symlink ${via}, which points outside the image root`);
      }
      cur.pop();
      continue;
    }
    const path = hostPath(root, [...cur, c]);
    const st = await lstatOrNull(path);
    if (st === null) {
      if (!create) return null;
      await Deno.mkdir(path, { mode: 0o755 });
      cur.push(c);
    } else if (st.isDirectory) {
      cur.push(c);
    } else if (st.isSymlink) {
      const target = await Deno.readLink(path);
      via = `/${[...cur, c].join("/")} -> ${target}`;
      if (++hops > MAX_LINKS) throw new PathEscape(`it goes through a symlink loop at ${via}`);
      if (target.startsWith("/")) {
        throw new PathEscape(`it goes through symlink ${via}, which points outside the image root`);
      }
      queue.unshift(...target.split("/"));
    } else {
      throw new PathEscape(`/${[...cur, c].join("/")} is not a directory`);
    }
  }
  return cur;
}
