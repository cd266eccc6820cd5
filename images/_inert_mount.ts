/**
 * Inert scratch space for unpacking untrusted image layers: a directory bind-mounted onto itself
 * `nodev,nosuid,noexec`. The device nodes and setuid/setgid files an image carries must exist
 * in the tree `mkfs.erofs` reads (erofs-utils 1.5 takes only a directory), but on such a mount a
 * device node cannot be opened as a device, a setuid bit grants nothing and nothing executes.
 * The directory is root-only (0700) as well. A `kill -9` can leave the mount behind:
 * {@linkcode releaseInertUnder} (run by the image store's `gc()` at daemon start) removes it.
 *
 * @module
 */

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; error: string }> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
    return { ok: out.success, error: new TextDecoder().decode(out.stderr).trim() };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

/** An inert directory; `release()` unmounts it (the caller removes the files). */
export interface InertDir {
  path: string;
  /** Whether the nodev,nosuid,noexec mount is in place (false without the privilege). */
  mounted: boolean;
  /** Why it is not, when it is not. */
  reason?: string;
  release(): Promise<void>;
}

/**
 * Creates `path` (mode 0700, must not exist) and makes it an inert mount. Without the
 * privilege to mount (not root), the directory is still created and `mounted` says so.
 */
export async function makeInertDir(path: string): Promise<InertDir> {
  await Deno.mkdir(path, { mode: 0o700 });
  await Deno.chmod(path, 0o700);
  const bind = await run("mount", ["--bind", path, path]);
  if (!bind.ok) {
    return { path, mounted: false, reason: bind.error, release: () => Promise.resolve() };
  }
  const remount = await run("mount", ["-o", "remount,bind,nodev,nosuid,noexec", path, path]);
  if (!remount.ok) {
    await unmount(path);
    return { path, mounted: false, reason: remount.error, release: () => Promise.resolve() };
  }
  return { path, mounted: true, release: () => unmount(path) };
}

async function unmount(path: string): Promise<void> {
  if (!(await run("umount", [path])).ok) await run("umount", ["-l", path]);
}

/** Mount points at or below `dir`, deepest first (from `/proc/self/mountinfo`). */
export async function mountsUnder(dir: string): Promise<string[]> {
  let text = "";
  try {
    text = await Deno.readTextFile("/proc/self/mountinfo");
  } catch {
    return [];
  }
  const unescape = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  return text.split("\n").map((l) => unescape(l.split(" ")[4] ?? ""))
    .filter((p) => p === dir || p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts every mount at or below `dir` (leftovers of an interrupted unpack). */
export async function releaseInertUnder(dir: string): Promise<number> {
  const mounts = await mountsUnder(dir);
  for (const m of mounts) await unmount(m);
  return mounts.length;
}
