/** Cached input hashes and output checks for the idempotent guest build. @module */
import { sha256Bytes, sha256File } from "./_hash.ts";

/** A hashed input file; the hash is reused while path, size, mtime and inode stay the same. */
export interface InputRecord {
  /** Absolute path. */
  path: string;
  /** `sha256:<hex>`. */
  sha256: string;
  /** Size in bytes. */
  size: number;
  /** mtime in ms (cache key only). */
  mtimeMs: number;
  /** inode number (cache key only). */
  ino: number;
}

/** A file of the guest dir as recorded in `guest.json`. */
export interface OutputRecord {
  /** `sha256:<hex>` of the file. */
  sha256: string;
  /** Size in bytes. */
  size: number;
  /** mtime in ms when it was written (to notice a replaced file cheaply). */
  mtimeMs: number;
  /** Digest of every input the file was built from; a different key means rebuild. */
  key: string;
}

/** Hashes `path`, reusing `previous.sha256` when the file is unchanged (same stat). */
export async function hashInput(path: string, previous?: InputRecord): Promise<InputRecord> {
  const real = await Deno.realPath(path);
  const st = await Deno.stat(real);
  const size = st.size;
  const mtimeMs = st.mtime?.getTime() ?? 0;
  const ino = st.ino ?? 0;
  if (
    previous && previous.path === real && previous.size === size &&
    previous.mtimeMs === mtimeMs && previous.ino === ino
  ) {
    return previous;
  }
  return { path: real, sha256: await sha256File(real), size, mtimeMs, ino };
}

/** `sha256:<hex>` of the canonical JSON of `value` (the key of a build step). */
export function keyOf(value: unknown): Promise<string> {
  return sha256Bytes(new TextEncoder().encode(JSON.stringify(value)));
}

/** Whether `path` still is the file `record` describes (size and mtime; no rehash). */
export async function outputIntact(
  path: string,
  record: OutputRecord | undefined,
): Promise<boolean> {
  if (!record) return false;
  try {
    const st = await Deno.stat(path);
    return st.isFile && st.size === record.size && (st.mtime?.getTime() ?? 0) === record.mtimeMs;
  } catch {
    return false;
  }
}

/** Records `path` after it was written. */
export async function recordOutput(
  path: string,
  key: string,
  sha256?: string,
): Promise<OutputRecord> {
  const st = await Deno.stat(path);
  return {
    sha256: sha256 ?? await sha256File(path),
    size: st.size,
    mtimeMs: st.mtime?.getTime() ?? 0,
    key,
  };
}

/** Writes `data` to `<path>.tmp-<pid>` and renames it over `path`. */
export async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temp = `${path}.tmp-${Deno.pid}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(temp, data);
    else await Deno.writeFile(temp, data);
    await Deno.rename(temp, path);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}
