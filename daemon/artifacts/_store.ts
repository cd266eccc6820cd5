/**
 * Writing blobs atomically: bytes go to a uniquely named temp file in the cache's `tmp/`
 * (same file system as `sha256/`), are hashed on the way, fsynced, made read-only and renamed
 * into place. A failure at any step removes the temp file.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { noSpaceError } from "../../images/no_space.ts";
import { VolantError } from "../../schema/error.ts";
import { causeText } from "./_source.ts";
import { faultPoint } from "../fault.ts";

/** A fully written, fsynced temp file and the sha256 of its bytes. */
export interface StagedBlob {
  /** The temp file's path. */
  path: string;
  /** Its sha256, lowercase hex. */
  hex: string;
  /** Its size in bytes. */
  size: number;
}

/** Suffix of temp files; `gc` removes old ones. */
export const TEMP_SUFFIX = ".part";

const WRITE_SIZE = 1 << 20;

/**
 * Streams `chunks` into a new temp file in `tmpDir`, hashing them; `onBytes` gets the running
 * byte count after each chunk. The temp file is removed when anything fails.
 *
 * @example
 * ```ts ignore
 * import { stageBlob } from "./_store.ts";
 * const staged = await stageBlob("/var/lib/volant/artifacts/tmp", "x", chunks, (n) => {});
 * ```
 */
export async function stageBlob(
  tmpDir: string,
  label: string,
  chunks: AsyncIterable<Uint8Array>,
  onBytes: (received: number) => void,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<StagedBlob> {
  const path = `${tmpDir}/${label}.${crypto.randomUUID()}${TEMP_SUFFIX}`;
  const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  try {
    const hash = createHash("sha256");
    // Network chunks are small (~64 KiB): gather them so the file sees 1 MiB writes.
    const pending = new Uint8Array(WRITE_SIZE);
    let filled = 0;
    let size = 0;
    for await (const chunk of chunks) {
      if (size + chunk.length > maxBytes) {
        throw new VolantError(
          "artifact_unavailable",
          `${label}: the artifact is larger than ${maxBytes} bytes, the most an artifact may ` +
            "be (limits.max_artifact_bytes); nothing was kept",
          { max: maxBytes },
        );
      }
      hash.update(chunk);
      if (filled + chunk.length > WRITE_SIZE && filled > 0) {
        await writeAll(file, pending.subarray(0, filled), path);
        filled = 0;
      }
      if (chunk.length >= WRITE_SIZE) await writeAll(file, chunk, path);
      else {
        pending.set(chunk, filled);
        filled += chunk.length;
      }
      size += chunk.length;
      onBytes(size);
      faultPoint("plugin_artifact_chunk");
    }
    await writeAll(file, pending.subarray(0, filled), path);
    await file.sync();
    file.close();
    return { path, hex: hash.digest("hex"), size };
  } catch (e) {
    try {
      file.close();
    } catch { /* already closed */ }
    await removeQuietly(path);
    throw noSpaceError(e, tmpDir, `Downloading ${label}`);
  }
}

/**
 * Makes a staged blob read-only (0444) and renames it to `finalPath`, then fsyncs the
 * directory. A concurrent commit of the same content simply replaces it (last rename wins).
 */
export async function commitBlob(staged: StagedBlob, finalPath: string): Promise<void> {
  try {
    await Deno.chmod(staged.path, 0o444);
    await Deno.rename(staged.path, finalPath);
  } catch (e) {
    await removeQuietly(staged.path);
    throw new VolantError(
      "internal",
      `Cannot store artifact ${staged.hex} at ${finalPath}: ${causeText(e)}`,
      { path: finalPath },
      { cause: e },
    );
  }
  await syncDir(finalPath.slice(0, finalPath.lastIndexOf("/")));
}

/** Writes `text` to `path` through a temp file in `tmpDir` and a rename. */
export async function writeFileAtomic(tmpDir: string, path: string, text: string): Promise<void> {
  const tmp = `${tmpDir}/${path.slice(path.lastIndexOf("/") + 1)}.${crypto.randomUUID()}` +
    TEMP_SUFFIX;
  try {
    await Deno.writeTextFile(tmp, text, { createNew: true, mode: 0o644 });
    await Deno.rename(tmp, path);
  } catch (e) {
    await removeQuietly(tmp);
    throw e;
  }
}

/** Removes a file; `false` when it did not exist. */
export async function removeQuietly(path: string): Promise<boolean> {
  try {
    await Deno.remove(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The sha256 of a file's bytes, streamed in 1 MiB reads. */
export async function hashFile(path: string): Promise<{ hex: string; size: number }> {
  const hash = createHash("sha256");
  const buffer = new Uint8Array(1 << 20);
  let size = 0;
  using file = await Deno.open(path, { read: true });
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
    size += n;
  }
  return { hex: hash.digest("hex"), size };
}

async function writeAll(file: Deno.FsFile, data: Uint8Array, path: string): Promise<void> {
  try {
    for (let off = 0; off < data.length;) off += await file.write(data.subarray(off));
  } catch (e) {
    throw new VolantError(
      "internal",
      `Cannot write ${path}: ${causeText(e)}`,
      { path },
      { cause: e },
    );
  }
}

async function syncDir(dir: string): Promise<void> {
  using handle = await Deno.open(dir, { read: true });
  await handle.sync();
}
