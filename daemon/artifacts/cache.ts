/**
 * The daemon's content-addressed cache of plugin artifacts, rooted at
 * `<state_dir>/artifacts`:
 *
 * - `sha256/<hex>`: a blob, read-only (0444), named by the sha256 of its bytes;
 * - `sha256/<hex>.fp`: its fingerprint (JSON), for cheap verification before a boot;
 * - `tmp/`: temp files being downloaded (same file system, so the final rename is atomic).
 *
 * @module
 */
import { VolantError } from "../../schema/error.ts";
import { ArtifactUrl } from "../../schema/manifest.ts";
import { checksumHex } from "./_checksum.ts";
import { openSource } from "./_source.ts";
import { commitBlob, removeQuietly, stageBlob, type StagedBlob, TEMP_SUFFIX } from "./_store.ts";
import { type BlobPaths, recordFingerprint, verifyBlob } from "./_verify.ts";

/** A progress event of a fetch: bytes received so far and the announced total, if any. */
export interface ArtifactProgress {
  received: number;
  total: number | null;
}

/** Options of {@linkcode ArtifactCache.fetchArtifact}. */
export interface FetchArtifactOptions {
  /** Called with `{received: 0}` first, then after every chunk. */
  onProgress?: (progress: ArtifactProgress) => void;
  /** Aborts the download (the temp file is removed); the error thrown is the signal's reason. */
  signal?: AbortSignal;
  /** An http download fails with `timeout` when no byte arrives for this long. @default {60000} */
  idleTimeoutMs?: number;
}

/** A blob in the cache. */
export interface ArtifactInfo {
  /** The sha256, lowercase hex. */
  hex: string;
  /** `sha256:<hex>`. */
  checksum: string;
  /** The blob's path (read-only; use it as a VM's initramfs or as an overlay's backing file). */
  path: string;
  /** Size in bytes. */
  size: number;
}

/** The result of {@linkcode ArtifactCache.fetchArtifact}. */
export interface FetchedArtifact extends ArtifactInfo {
  /** `true` when the blob was already cached (and verified): the source was not read. */
  cached: boolean;
  /** `true` when a cached blob had been modified on disk and was downloaded again. */
  repaired: boolean;
}

/** The result of {@linkcode ArtifactCache.verifyArtifact}. */
export interface VerifiedArtifact extends ArtifactInfo {
  /** `true` when the fingerprint could not vouch for the blob and it was hashed again. */
  rehashed: boolean;
}

/** Options of {@linkcode ArtifactCache.gc}. */
export interface GcOptions {
  /** Temp files older than this are removed. @default {3600000} */
  tempMaxAgeMs?: number;
  /** The current time in ms since the epoch. @default {Date.now()} */
  now?: number;
}

/** The result of {@linkcode ArtifactCache.gc}. */
export interface GcResult {
  /** Hex digests of the blobs removed. */
  removed: string[];
  /** Bytes of the blobs removed. */
  bytesFreed: number;
  /** How many stale temp files were removed. */
  tempRemoved: number;
}

const HOUR_MS = 3_600_000;
const BLOB_NAME = /^[0-9a-f]{64}$/;
const SIDECAR_NAME = /^([0-9a-f]{64})\.fp$/;

/**
 * A content-addressed store of artifacts under `<stateDir>/artifacts`.
 *
 * @example Fetch, verify before boot, clean up
 * ```ts ignore
 * import { ArtifactCache } from "./cache.ts";
 * const cache = new ArtifactCache("/var/lib/volant");
 * const a = await cache.fetchArtifact("https://example.com/web.cpio.gz", "sha256:…", {
 *   onProgress: ({ received, total }) => console.log(received, total),
 * });
 * await cache.verifyArtifact(a.checksum); // before every boot: cheap unless the file changed
 * await cache.gc(new Set([a.hex]));
 * ```
 */
export class ArtifactCache {
  /** `<stateDir>/artifacts`. */
  readonly root: string;
  readonly #blobs: string;
  readonly #tmp: string;
  readonly #maxBytes: number;

  /**
   * A cache rooted at `<stateDir>/artifacts`; its directories are created on first write. A
   * download larger than `maxBytes` (`limits.max_artifact_bytes`) is refused as it arrives.
   */
  constructor(stateDir: string, options: { maxBytes?: number } = {}) {
    this.#maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    if (!stateDir.startsWith("/")) {
      throw new VolantError(
        "invalid_argument",
        `state_dir: ${JSON.stringify(stateDir)} must be an absolute path`,
        { field: "state_dir", value: stateDir },
      );
    }
    this.root = `${stateDir.replace(/\/+$/, "")}/artifacts`;
    this.#blobs = `${this.root}/sha256`;
    this.#tmp = `${this.root}/tmp`;
  }

  /** Where the blob of `checksum` (`sha256:<hex>` or `<hex>`) lives, cached or not. */
  blobPath(checksum: string): string {
    return `${this.#blobs}/${checksumHex(checksum)}`;
  }

  /**
   * Makes the blob of `checksum` available, downloading or copying it from `url` unless a
   * verified copy is cached. The sha256 is computed while streaming; a mismatch is an
   * `invalid_argument` error naming the url and both checksums. On any failure no partial file
   * remains. Concurrent fetches of the same checksum write separate temp files; the last
   * rename wins, and the bytes are the same.
   *
   * Errors: `invalid_argument` (bad url or checksum, checksum mismatch, source not a file),
   * `not_found` (missing local file), `network_error` (unreachable, non-2xx answer, cut short),
   * `timeout` (no data for `idleTimeoutMs`).
   *
   * @example
   * ```ts ignore
   * const a = await cache.fetchArtifact("/srv/web.cpio.gz", "sha256:…");
   * console.log(a.path, a.cached);
   * ```
   */
  async fetchArtifact(
    url: string,
    checksum: string,
    options: FetchArtifactOptions = {},
  ): Promise<FetchedArtifact> {
    const paths = this.#paths(checksum);
    if (!ArtifactUrl.safeParse(url).success) {
      throw new VolantError(
        "invalid_argument",
        `url: ${JSON.stringify(url)} must be an http(s):// URL, a file:/// URL or an absolute path`,
        { field: "url", value: url },
      );
    }
    let repaired = false;
    if (await exists(paths.blob)) {
      try {
        const { size } = await verifyBlob(paths);
        return { ...this.#info(paths, size), cached: true, repaired: false };
      } catch (e) {
        if (!(e instanceof VolantError && e.code === "invalid_state")) throw e;
        repaired = true;
      }
    }
    await this.#ensureDirs();
    const source = await openSource(url, {
      signal: options.signal,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
    });
    const progress = options.onProgress ?? (() => {});
    let staged: StagedBlob;
    try {
      progress({ received: 0, total: source.total });
      staged = await stageBlob(
        this.#tmp,
        paths.hex,
        source.chunks,
        (received) => progress({ received, total: source.total }),
        this.#maxBytes,
      );
    } finally {
      await source.cancel();
    }
    if (staged.hex !== paths.hex) {
      await removeQuietly(staged.path);
      throw new VolantError(
        "checksum_mismatch",
        `Checksum mismatch for ${url}: expected sha256:${paths.hex}, got sha256:${staged.hex} ` +
          `(${staged.size} bytes); fix the checksum in the manifest or the artifact at the url`,
        { url, expected: `sha256:${paths.hex}`, actual: `sha256:${staged.hex}`, size: staged.size },
      );
    }
    await commitBlob(staged, paths.blob);
    await recordFingerprint(paths);
    return { ...this.#info(paths, staged.size), cached: false, repaired };
  }

  /**
   * Checks, before a boot, that the cached blob still holds its bytes. Cheap when its
   * fingerprint (size, mtime, ctime, inode) is unchanged; otherwise the blob is re-hashed:
   * a mismatch is an `invalid_state` error ("… was modified on disk …; reinstall the plugin"),
   * a match refreshes the fingerprint. A blob not in the cache is `not_found`.
   *
   * @example
   * ```ts ignore
   * const { path, rehashed } = await cache.verifyArtifact("sha256:…");
   * ```
   */
  async verifyArtifact(checksum: string): Promise<VerifiedArtifact> {
    const paths = this.#paths(checksum);
    const { size, rehashed } = await verifyBlob(paths);
    return { ...this.#info(paths, size), rehashed };
  }

  /**
   * Removes a blob and its fingerprint; `false` when it was not cached. VMs that have it open
   * (or overlays backed by it) keep the old inode until they close it.
   *
   * @example
   * ```ts ignore
   * await cache.removeArtifact("sha256:…");
   * ```
   */
  async removeArtifact(checksum: string): Promise<boolean> {
    const paths = this.#paths(checksum);
    const removed = await removeQuietly(paths.blob);
    await removeQuietly(paths.sidecar);
    return removed;
  }

  /**
   * Every cached blob, sorted by hex digest.
   *
   * @example
   * ```ts ignore
   * for (const a of await cache.listArtifacts()) console.log(a.hex, a.size);
   * ```
   */
  async listArtifacts(): Promise<ArtifactInfo[]> {
    const out: ArtifactInfo[] = [];
    for (const name of await listDir(this.#blobs)) {
      if (!BLOB_NAME.test(name)) continue;
      try {
        const info = await Deno.lstat(`${this.#blobs}/${name}`);
        if (info.isFile) out.push(this.#info(this.#paths(name), info.size));
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    return out.sort((a, b) => (a.hex < b.hex ? -1 : a.hex > b.hex ? 1 : 0));
  }

  /**
   * Removes every blob not in `keep` (hex digests or `sha256:<hex>`), fingerprints without a
   * blob, and temp files older than `tempMaxAgeMs` (an hour). Run it where no fetch of a blob
   * outside `keep` is under way (e.g. under the daemon's plugin lock).
   *
   * @example
   * ```ts ignore
   * const { removed, bytesFreed } = await cache.gc(new Set(["sha256:…"]));
   * ```
   */
  async gc(keep: Set<string>, options: GcOptions = {}): Promise<GcResult> {
    const kept = new Set([...keep].map((k) => checksumHex(k, "keep")));
    const result: GcResult = { removed: [], bytesFreed: 0, tempRemoved: 0 };
    for (const artifact of await this.listArtifacts()) {
      if (kept.has(artifact.hex)) continue;
      if (await this.removeArtifact(artifact.hex)) {
        result.removed.push(artifact.hex);
        result.bytesFreed += artifact.size;
      }
    }
    for (const name of await listDir(this.#blobs)) {
      const hex = SIDECAR_NAME.exec(name)?.[1];
      if (hex !== undefined && !(await exists(`${this.#blobs}/${hex}`))) {
        await removeQuietly(`${this.#blobs}/${name}`);
      }
    }
    const cutoff = (options.now ?? Date.now()) - (options.tempMaxAgeMs ?? HOUR_MS);
    for (const name of await listDir(this.#tmp)) {
      if (!name.endsWith(TEMP_SUFFIX)) continue;
      const path = `${this.#tmp}/${name}`;
      const info = await Deno.lstat(path).catch(() => null);
      const mtime = info?.mtime?.getTime();
      if (mtime !== undefined && mtime < cutoff && (await removeQuietly(path))) {
        result.tempRemoved++;
      }
    }
    return result;
  }

  #paths(checksum: string): BlobPaths {
    const hex = checksumHex(checksum);
    const blob = `${this.#blobs}/${hex}`;
    return { hex, blob, sidecar: `${blob}.fp`, tmpDir: this.#tmp };
  }

  #info(paths: BlobPaths, size: number): ArtifactInfo {
    return { hex: paths.hex, checksum: `sha256:${paths.hex}`, path: paths.blob, size };
  }

  async #ensureDirs(): Promise<void> {
    await Deno.mkdir(this.#blobs, { recursive: true, mode: 0o755 });
    await Deno.mkdir(this.#tmp, { recursive: true, mode: 0o700 });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return names;
}
