/**
 * The files of a REST VMM's saved state (Cloud Hypervisor's snapshot directory, Firecracker's
 * state and memory files), on the driver's side of the VMM:
 *
 * - before a restore, the state must be there, as regular non-empty files (`invalid_argument`
 *   naming `restoreFrom` otherwise, before any VMM starts) — {@linkcode requireSavedState};
 * - before a save, the target must be an empty directory — {@linkcode requireEmptyDir};
 * - a save is written by the VMM into a staging directory and only its complete result moved
 *   into the target (renamed, or copied across file systems), checked to be regular files with
 *   one link each (a jailed VMM owns the staging directory and could plant anything there),
 *   given to the daemon's user, mode 0600 (guest memory is secret) — {@linkcode collectSavedState};
 * - a jailed VMM reads the saved files as its own uid: they are lent to it for the restore and
 *   given back after — {@linkcode lendFiles}; and it must be able to enter its runtime dir to
 *   write a save there — {@linkcode requireEnterable}.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type { VmmJail } from "../jail/types.ts";
import { removeIfPresent } from "../spec_files.ts";

/** Removes a directory tree; a missing one is fine. */
export async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/**
 * Checks that `dir` holds a saved state: each of `required` a non-empty regular file. Returns
 * the absolute paths of every regular file in `dir` (what a restore may open), sorted.
 * `invalid_argument` naming `restoreFrom` and the first file missing otherwise.
 *
 * @example
 * ```ts
 * import { requireSavedState } from "./saved_state.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/vmstate`, "state");
 * await Deno.writeTextFile(`${dir}/memory`, "memory");
 * console.assert((await requireSavedState(dir, ["vmstate", "memory"])).length === 2);
 * await requireSavedState(dir, ["config.json"]).catch((e) => console.assert(e.code === "invalid_argument"));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function requireSavedState(
  dir: string,
  required: readonly string[],
): Promise<string[]> {
  const base = dir.replace(/\/+$/, "");
  if (!base.startsWith("/")) {
    throw new VolantError("invalid_argument", `restoreFrom ${dir}: not an absolute path`, {
      field: "restoreFrom",
      path: dir,
    });
  }
  for (const name of required) {
    const path = `${base}/${name}`;
    const info = await Deno.stat(path).catch(() => undefined);
    if (info === undefined || !info.isFile || info.size === 0) {
      throw new VolantError(
        "invalid_argument",
        `restoreFrom ${path}: ${info === undefined ? "no such file" : "not a saved state file"}`,
        { field: "restoreFrom", path },
      );
    }
  }
  const files: string[] = [];
  for await (const entry of Deno.readDir(base)) {
    const path = `${base}/${entry.name}`;
    if ((await Deno.stat(path).catch(() => undefined))?.isFile) files.push(path);
  }
  return files.sort();
}

/**
 * Checks that `dir` is an existing, empty directory (where a save goes); `invalid_argument`
 * otherwise.
 */
export async function requireEmptyDir(dir: string): Promise<void> {
  const info = await Deno.stat(dir).catch(() => undefined);
  const fail = (why: string) =>
    new VolantError("invalid_argument", `Saved state directory ${dir} ${why}`, { path: dir });
  if (!dir.startsWith("/")) throw fail("is not an absolute path");
  if (info === undefined) throw fail("does not exist");
  if (!info.isDirectory) throw fail("is not a directory");
  for await (const entry of Deno.readDir(dir)) {
    throw fail(`is not empty (it holds ${entry.name})`);
  }
}

/**
 * Fails (`invalid_state`) unless `jail`'s uid may enter `dir` (search permission on the
 * directory itself: inside the jail its parents are the jail's own, open directories).
 */
export async function requireEnterable(dir: string, jail: VmmJail, label: string): Promise<void> {
  const info = await Deno.stat(dir);
  const mode = info.mode ?? 0;
  const bit = info.uid === jail.uid ? 0o100 : info.gid === jail.gid ? 0o010 : 0o001;
  if ((mode & bit) === 0) {
    throw new VolantError(
      "invalid_state",
      `${label} runs as uid ${jail.uid} and cannot enter its runtime dir ${dir} (mode ` +
        `${(mode & 0o7777).toString(8).padStart(4, "0")}, owner ${info.uid}:${info.gid}) to ` +
        "write the saved state; let the jail's uid search it",
      { path: dir, uid: jail.uid },
    );
  }
}

function isCrossDevice(err: unknown): boolean {
  return (err as { code?: unknown }).code === "EXDEV";
}

/** Moves `from` to `to`: a rename, or a copy and removal across file systems. */
async function move(from: string, to: string): Promise<void> {
  try {
    await Deno.rename(from, to);
  } catch (err) {
    if (!isCrossDevice(err)) throw err;
    try {
      await Deno.copyFile(from, to);
    } catch (copyErr) {
      await removeIfPresent(to);
      throw copyErr;
    }
    await Deno.remove(from);
  }
}

/** What {@linkcode collectSavedState} moved. */
export interface CollectedState {
  /** The file names, sorted. */
  files: string[];
  /** Their total size. */
  bytes: number;
}

/**
 * Moves the state a VMM wrote into `staging` to the empty directory `dir`. First `staging` is
 * sealed (made the daemon's, mode 0700: a jailed VMM that owned it can no longer add, replace or
 * link entries), then every entry must be a regular file with one link and each of `required`
 * must be there; the files are moved (renamed, or copied across file systems) and become the
 * daemon's (this process's uid and gid) with mode 0600. On any failure nothing is left in `dir`
 * (`vmm_failed` naming what is wrong with the VMM's files).
 *
 * @example
 * ```ts ignore
 * const saved = await collectSavedState("/run/vm/state.partial", "/var/lib/saves/vm",
 *   ["vmstate", "memory"], "Firecracker");
 * ```
 */
export async function collectSavedState(
  staging: string,
  dir: string,
  required: readonly string[],
  label: string,
): Promise<CollectedState> {
  await Deno.chown(staging, Deno.uid(), Deno.gid());
  await Deno.chmod(staging, 0o700);
  const names: string[] = [];
  for await (const entry of Deno.readDir(staging)) names.push(entry.name);
  names.sort();
  let bytes = 0;
  for (const name of names) {
    const info = await Deno.lstat(`${staging}/${name}`);
    if (!info.isFile || (info.nlink ?? 1) !== 1) {
      throw new VolantError(
        "vmm_failed",
        `${label} left ${name} in its saved state, which is not a plain file`,
        { name },
      );
    }
    bytes += info.size;
  }
  const missing = required.filter((name) => !names.includes(name));
  if (missing.length > 0) {
    throw new VolantError(
      "vmm_failed",
      `${label} reported its state saved but did not write ${missing.join(", ")} ` +
        `(it wrote ${names.length > 0 ? names.join(", ") : "nothing"})`,
      { missing },
    );
  }
  const moved: string[] = [];
  try {
    for (const name of names) {
      const path = `${dir}/${name}`;
      moved.push(path);
      await move(`${staging}/${name}`, path);
      await Deno.chown(path, Deno.uid(), Deno.gid());
      await Deno.chmod(path, 0o600);
    }
    return { files: names, bytes };
  } catch (err) {
    for (const path of moved) await removeTree(path).catch(() => {});
    throw err;
  }
}

/**
 * Gives `paths` to `uid`:`gid` (a jailed VMM reads them as its own user) and returns how to
 * give each back to the owner it had. Files already theirs are left alone.
 */
export async function lendFiles(
  paths: readonly string[],
  uid: number,
  gid: number,
): Promise<() => Promise<void>> {
  const lent: Array<{ path: string; uid: number; gid: number }> = [];
  const giveBack = async () => {
    for (const file of lent.splice(0).reverse()) {
      await Deno.chown(file.path, file.uid, file.gid).catch(() => {});
    }
  };
  try {
    for (const path of paths) {
      const info = await Deno.stat(path);
      if (info.uid === uid && info.gid === gid) continue;
      await Deno.chown(path, uid, gid);
      lent.push({ path, uid: info.uid ?? 0, gid: info.gid ?? 0 });
    }
  } catch (err) {
    await giveBack();
    throw err;
  }
  return giveBack;
}
