/**
 * Cheap tamper detection for cached blobs. When a blob's bytes are known to be right (just
 * hashed), its stat (size, mtime, ctime, inode, device) is recorded in `sha256/<hex>.fp`.
 * Any write to the file, a chmod, `touch -d` or a replacement changes the ctime (which users
 * cannot set back) or the inode, so an unchanged stat means unchanged bytes.
 *
 * One subtlety, the "racy" case known from git's index: Deno reports ctime with one-second
 * resolution, so a write in the same second as the recording could leave the stat unchanged.
 * A fingerprint recorded less than a second (plus a margin for the kernel's coarse clock)
 * after the file's ctime is therefore not trusted: the next verification re-hashes the file
 * and records a fresh, trusted fingerprint.
 *
 * @module
 */

/** What is recorded about a blob, as JSON in its sidecar file. */
export interface Fingerprint {
  size: number;
  mtime_ms: number;
  ctime_ms: number;
  ino: number;
  dev: number;
  /** When the fingerprint was taken (ms since the epoch). */
  recorded_ms: number;
}

const CTIME_RESOLUTION_MS = 1000;
const CLOCK_MARGIN_MS = 100;

/**
 * The fingerprint of a file's current stat.
 *
 * @example
 * ```ts ignore
 * import { fingerprintOf } from "./_fingerprint.ts";
 * const fp = fingerprintOf(await Deno.stat("/etc/hostname"), Date.now());
 * ```
 */
export function fingerprintOf(info: Deno.FileInfo, recordedMs: number): Fingerprint {
  return {
    size: info.size,
    mtime_ms: info.mtime?.getTime() ?? -1,
    ctime_ms: info.ctime?.getTime() ?? -1,
    ino: info.ino ?? -1,
    dev: info.dev,
    recorded_ms: recordedMs,
  };
}

/** Whether two fingerprints describe the same file state (ignoring when they were taken). */
export function sameState(a: Fingerprint, b: Fingerprint): boolean {
  return a.size === b.size && a.mtime_ms === b.mtime_ms && a.ctime_ms === b.ctime_ms &&
    a.ino === b.ino && a.dev === b.dev;
}

/** Whether a fingerprint can vouch for the bytes (see the module doc for the racy case). */
export function trustworthy(fp: Fingerprint): boolean {
  if (fp.ctime_ms < 0 || fp.mtime_ms < 0 || fp.ino < 0) return false;
  const ctimeSecondEnd = Math.floor(fp.ctime_ms / CTIME_RESOLUTION_MS) * CTIME_RESOLUTION_MS +
    CTIME_RESOLUTION_MS;
  return fp.recorded_ms >= ctimeSecondEnd + CLOCK_MARGIN_MS;
}

/** Reads a sidecar; `null` when it is missing or unreadable (the blob is then re-hashed). */
export async function readFingerprint(path: string): Promise<Fingerprint | null> {
  let value: unknown;
  try {
    value = JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
  if (value === null || typeof value !== "object") return null;
  const v = value as Record<string, unknown>;
  const keys = ["size", "mtime_ms", "ctime_ms", "ino", "dev", "recorded_ms"] as const;
  if (!keys.every((k) => typeof v[k] === "number")) return null;
  return Object.fromEntries(keys.map((k) => [k, v[k]])) as unknown as Fingerprint;
}
