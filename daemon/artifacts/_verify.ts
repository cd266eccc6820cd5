/**
 * Verifying a cached blob before it is used: trust an unchanged fingerprint, otherwise
 * re-hash the file and either refresh the fingerprint or report the modification.
 *
 * @module
 */
import { VolantError } from "../../schema/error.ts";
import {
  type Fingerprint,
  fingerprintOf,
  readFingerprint,
  sameState,
  trustworthy,
} from "./_fingerprint.ts";
import { hashFile, writeFileAtomic } from "./_store.ts";

/** Where a blob and its sidecar live. */
export interface BlobPaths {
  hex: string;
  blob: string;
  sidecar: string;
  tmpDir: string;
}

/** The outcome of {@linkcode verifyBlob}. */
export interface BlobCheck {
  size: number;
  /** `true` when the fingerprint could not vouch for the file and it was hashed again. */
  rehashed: boolean;
}

/**
 * Checks that the blob still holds the bytes named by its hex digest.
 *
 * @example
 * ```ts ignore
 * import { verifyBlob } from "./_verify.ts";
 * const { rehashed } = await verifyBlob({ hex, blob, sidecar: blob + ".fp", tmpDir });
 * ```
 */
export async function verifyBlob(paths: BlobPaths): Promise<BlobCheck> {
  const before = await statBlob(paths);
  const recorded = await readFingerprint(paths.sidecar);
  const current = fingerprintOf(before, Date.now());
  if (recorded !== null && trustworthy(recorded) && sameState(recorded, current)) {
    return { size: before.size, rehashed: false };
  }
  const { hex } = await hashFile(paths.blob);
  const after = fingerprintOf(await statBlob(paths), Date.now());
  if (!sameState(current, after)) {
    throw new VolantError(
      "invalid_state",
      `Artifact ${paths.hex} changed while it was being verified; retry, and make sure ` +
        `nothing writes to ${paths.blob}`,
      { hex: paths.hex, path: paths.blob },
    );
  }
  if (hex !== paths.hex) {
    throw new VolantError(
      "invalid_state",
      `Artifact ${paths.hex} was modified on disk (expected sha256:${paths.hex}, got ` +
        `sha256:${hex}); reinstall the plugin`,
      {
        hex: paths.hex,
        path: paths.blob,
        expected: `sha256:${paths.hex}`,
        actual: `sha256:${hex}`,
      },
    );
  }
  let verified = after;
  if ((before.mode ?? 0) & 0o222) {
    await Deno.chmod(paths.blob, 0o444);
    verified = fingerprintOf(await statBlob(paths), Date.now());
    const same = verified.size === after.size && verified.mtime_ms === after.mtime_ms &&
      verified.ino === after.ino && verified.dev === after.dev;
    if (!same) return verifyBlob(paths);
  }
  await recordFingerprint(paths, verified);
  return { size: before.size, rehashed: true };
}

/**
 * Writes `fp` as the blob's trusted fingerprint. Call it only with a stat taken after the
 * bytes were hashed and found right; without `fp`, the blob's current stat is recorded.
 */
export async function recordFingerprint(paths: BlobPaths, fp?: Fingerprint): Promise<Fingerprint> {
  const record = fp ?? fingerprintOf(await Deno.stat(paths.blob), Date.now());
  await writeFileAtomic(paths.tmpDir, paths.sidecar, JSON.stringify(record) + "\n");
  return record;
}

async function statBlob(paths: BlobPaths): Promise<Deno.FileInfo> {
  try {
    return await Deno.stat(paths.blob);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new VolantError(
        "not_found",
        `Artifact ${paths.hex} is not in the cache; install the plugin that provides it`,
        { hex: paths.hex, path: paths.blob },
      );
    }
    throw e;
  }
}
