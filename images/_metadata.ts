/**
 * File metadata for unpacked entries: owner (lchown, before the mode so setuid bits survive),
 * mode, extended attributes (by `setfattr` when installed), device nodes and fifos (by
 * `mknod`), times; and the warnings for what could not be applied.
 *
 * @module
 */
import { lchown, lutimes } from "node:fs/promises";
import type { TarHeader } from "./tar.ts";

/** Warnings grouped by kind, each with a count and the first few paths. */
export class Warnings {
  #kinds = new Map<string, { count: number; paths: string[] }>();

  /** Records one occurrence of `kind` at `path`. */
  add(kind: string, path: string): void {
    const k = this.#kinds.get(kind) ?? { count: 0, paths: [] };
    k.count++;
    if (k.paths.length < 3) k.paths.push(path);
    this.#kinds.set(kind, k);
  }

  /** One line per kind: `<kind>: <n> entries (/a, /b, /c, …)`. */
  list(): string[] {
    return [...this.#kinds].map(([kind, { count, paths }]) =>
      `${kind}: ${count} ${count === 1 ? "entry" : "entries"} (${paths.join(", ")}${
        count > paths.length ? ", …" : ""
      })`
    );
  }
}

let setfattr: Promise<boolean> | undefined;

/** Whether the `setfattr` program (Debian package `attr`) can be run. */
export function hasSetfattr(): Promise<boolean> {
  setfattr ??= (async () => {
    try {
      const cmd = new Deno.Command("setfattr", {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      });
      return (await cmd.output()).success;
    } catch {
      return false;
    }
  })();
  return setfattr;
}

let root: boolean | undefined;
function isRoot(): boolean {
  root ??= Deno.uid() === 0;
  return root;
}

async function runTool(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

/**
 * Creates a device node or fifo with `mknod`. Device nodes need root: without it, nothing is
 * created, a warning is recorded and false is returned.
 */
export async function makeNode(
  path: string,
  entry: TarHeader,
  rel: string,
  warnings: Warnings,
): Promise<boolean> {
  if (entry.type === "fifo") {
    await runTool("mknod", ["-m", "600", "--", path, "p"]);
    return true;
  }
  if (!isRoot()) {
    warnings.add("device nodes skipped (not running as root)", rel);
    return false;
  }
  const kind = entry.type === "chardev" ? "c" : "b";
  await runTool("mknod", [
    "-m",
    "600",
    "--",
    path,
    kind,
    String(entry.devmajor),
    String(entry.devminor),
  ]);
  return true;
}

/**
 * Applies owner, mode and extended attributes of `entry` to `path` (a symlink gets its owner
 * only). Without root, foreign owners are skipped with a warning.
 */
export async function applyMetadata(
  path: string,
  entry: TarHeader,
  rel: string,
  warnings: Warnings,
): Promise<void> {
  if (isRoot()) await lchown(path, entry.uid, entry.gid);
  else if (entry.uid !== Deno.uid() || entry.gid !== Deno.gid()) {
    warnings.add("owners not applied (not running as root)", rel);
  }
  if (entry.type !== "symlink") await Deno.chmod(path, entry.mode);
  const names = Object.keys(entry.xattrs);
  if (names.length === 0) return;
  if (!(await hasSetfattr())) {
    for (const name of names) {
      warnings.add(`xattr ${name} skipped (setfattr not installed; Debian package attr)`, rel);
    }
    return;
  }
  for (const [name, value] of Object.entries(entry.xattrs)) {
    const hex = Array.from(value, (b) => b.toString(16).padStart(2, "0")).join("");
    try {
      await runTool("setfattr", ["-h", "-n", name, "-v", `0x${hex}`, "--", path]);
    } catch {
      warnings.add(`xattr ${name} could not be set`, rel);
    }
  }
}

/** Sets access and modification time to `mtime` (seconds), on the link itself for symlinks. */
export async function applyTime(path: string, mtime: number, symlink: boolean): Promise<void> {
  if (symlink) await lutimes(path, mtime, mtime);
  else await Deno.utime(path, mtime, mtime);
}
