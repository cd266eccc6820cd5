/**
 * Content-addressed blobs at `<root>/blobs/sha256/<hex>`. A download streams into a temp file
 * in the same directory while it is hashed, is checked against its digest and size, fsynced,
 * made read-only and renamed into place; on any failure the temp file is deleted. A blob
 * already present with the expected size is reused without reading it.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { VolantError } from "../schema/error.ts";
import { noSpaceError } from "./no_space.ts";
import { digestHex, fileDigest } from "./digest.ts";
import type { OnImageStep } from "./steps.ts";

/** Progress of one blob: bytes done of total (null when unknown). */
export interface BlobProgress {
  /** The blob's digest. */
  digest: string;
  /** Bytes received so far. */
  done: number;
  /** Expected size, null when unknown. */
  total: number | null;
  /** True on the single event of a blob that was already stored. */
  cached?: boolean;
}

/** A blob's content stream and its announced size. */
export interface BlobSource {
  /** The bytes. */
  body: ReadableStream<Uint8Array>;
  /** The size the source announced (Content-Length), when it did. */
  size: number | null;
}

/** Options of {@linkcode BlobStore.ensure}. */
export interface EnsureOptions {
  /** The expected size (from the descriptor); checked on reuse and after download. */
  size?: number;
  /** Progress events, about every MiB and at the end. */
  onProgress?: (event: BlobProgress) => void;
  /** Cancels the download (the temp file is deleted). */
  signal?: AbortSignal;
  /** Names the blob in errors (`layer 2 of 3 of nginx:1`). */
  what?: string;
  /** Test seam (`steps.ts`): `blob_chunk` after the first write, `blob_committed` at the end. */
  onStep?: OnImageStep;
}

/** A stored blob. */
export interface StoredBlob {
  /** `sha256:<hex>`. */
  digest: string;
  /** Its file. */
  path: string;
  /** Its size in bytes. */
  size: number;
  /** Whether it was already there. */
  cached: boolean;
}

const TEMP_PREFIX = ".tmp-";
const PROGRESS_STEP = 1 << 20;

/**
 * Blob storage under `<root>/blobs/sha256`.
 *
 * @example
 * ```ts ignore
 * import { BlobStore } from "./blob_store.ts";
 * const blobs = new BlobStore("/var/lib/volant/images");
 * const b = await blobs.ensure(digest, async () => ({ body: res.body!, size: null }), { size: 123 });
 * console.log(b.path, b.cached);
 * ```
 */
export class BlobStore {
  /** The directory holding the blobs. */
  readonly dir: string;
  #inflight = new Map<string, Promise<StoredBlob>>();

  /** A store rooted at `root` (blobs in `<root>/blobs/sha256`). */
  constructor(root: string) {
    this.dir = `${root}/blobs/sha256`;
  }

  /** The file of `digest` (whether or not it exists). */
  path(digest: string): string {
    return `${this.dir}/${digestHex(digest)}`;
  }

  /** The stored size of `digest`, or null when it is not stored. */
  async size(digest: string): Promise<number | null> {
    try {
      return (await Deno.stat(this.path(digest))).size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  }

  /**
   * Makes sure `digest` is stored: a stored blob of the expected size is reused (a wrong size
   * is deleted and fetched again); otherwise `open` is called and its stream written, hashed
   * and verified. Concurrent calls for one digest share one download.
   *
   * Errors: `checksum_mismatch` when the bytes hash to another digest, `artifact_unavailable`
   * when the stream ends early, breaks, or is longer than `size`.
   */
  ensure(
    digest: string,
    open: () => Promise<BlobSource>,
    options: EnsureOptions = {},
  ): Promise<StoredBlob> {
    const running = this.#inflight.get(digest);
    if (running !== undefined) return running;
    const p = this.#ensure(digest, open, options).finally(() => this.#inflight.delete(digest));
    this.#inflight.set(digest, p);
    return p;
  }

  async #ensure(
    digest: string,
    open: () => Promise<BlobSource>,
    options: EnsureOptions,
  ): Promise<StoredBlob> {
    const path = this.path(digest);
    const have = await this.size(digest);
    if (have !== null) {
      if (options.size === undefined || have === options.size) {
        options.onProgress?.({ digest, done: have, total: have, cached: true });
        return { digest, path, size: have, cached: true };
      }
      await Deno.remove(path);
    }
    await Deno.mkdir(this.dir, { recursive: true });
    const source = await open();
    const size = await this.#write(digest, source, options);
    options.onStep?.("blob_committed");
    return { digest, path, size, cached: false };
  }

  /** Stores `bytes` under their digest, which must be `digest` when given. */
  async putBytes(bytes: Uint8Array, digest?: string, what = "Blob"): Promise<StoredBlob> {
    const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (digest !== undefined && actual !== digest) throw mismatch(what, digest, actual);
    return await this.ensure(
      actual,
      () => Promise.resolve({ body: ReadableStream.from([bytes]), size: bytes.length }),
      {
        size: bytes.length,
        what,
      },
    );
  }

  /**
   * Stores the file at `src` under its digest (which must be `digest` when given) by
   * renaming it when `move` is set (same file system), else by copying it.
   */
  async putFile(
    src: string,
    options: { digest?: string; move?: boolean; what?: string } = {},
  ): Promise<StoredBlob> {
    const what = options.what ?? src;
    if (!options.move) {
      const info = await Deno.stat(src);
      const digest = options.digest ?? (await fileDigest(src)).digest;
      return await this.ensure(
        digest,
        async () => ({ body: (await Deno.open(src)).readable, size: info.size }),
        {
          size: info.size,
          what,
        },
      );
    }
    const { digest, size } = await fileDigest(src);
    if (options.digest !== undefined && digest !== options.digest) {
      throw mismatch(what, options.digest, digest);
    }
    const path = this.path(digest);
    if ((await this.size(digest)) === size) {
      await Deno.remove(src);
      return { digest, path, size, cached: true };
    }
    await Deno.mkdir(this.dir, { recursive: true });
    await Deno.chmod(src, 0o444);
    await Deno.rename(src, path);
    return { digest, path, size, cached: false };
  }

  /** Deletes `digest`; false when it was not stored. */
  async remove(digest: string): Promise<boolean> {
    try {
      await Deno.remove(this.path(digest));
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  }

  /** The stored digests (temp files excluded), sorted. */
  async list(): Promise<string[]> {
    const out: string[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        if (e.isFile && /^[0-9a-f]{64}$/.test(e.name)) out.push(`sha256:${e.name}`);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return out.sort();
  }

  async #write(digest: string, source: BlobSource, options: EnsureOptions): Promise<number> {
    const what = options.what ?? `blob ${digest}`;
    const expected = options.size ?? source.size;
    const temp = `${this.dir}/${TEMP_PREFIX}${digestHex(digest)}-${crypto.randomUUID()}`;
    const hash = createHash("sha256");
    let done = 0;
    let reported = -1;
    const report = () => {
      options.onProgress?.({ digest, done, total: expected });
      reported = done;
    };
    const reader = source.body.getReader();
    try {
      using file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
      report();
      for (;;) {
        options.signal?.throwIfAborted();
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (options.signal?.aborted) throw options.signal.reason;
          throw new VolantError(
            "artifact_unavailable",
            `Download of ${what} broke off after ${done} bytes: ${
              e instanceof Error ? e.message : e
            }`,
            { digest, received: done },
            { cause: e },
          );
        }
        if (chunk.done) break;
        const bytes = chunk.value;
        done += bytes.length;
        if (expected !== null && done > expected) {
          throw new VolantError(
            "artifact_unavailable",
            `Download of ${what} sent more than the expected ${expected} bytes`,
            { digest, expected },
          );
        }
        hash.update(bytes);
        let at = 0;
        while (at < bytes.length) at += await file.write(bytes.subarray(at));
        if (done === bytes.length) options.onStep?.("blob_chunk");
        if (done - reported >= PROGRESS_STEP) report();
      }
      if (expected !== null && done !== expected) {
        throw new VolantError(
          "artifact_unavailable",
          `Download of ${what} ended after ${done} of ${expected} bytes (truncated)`,
          { digest, expected, received: done },
        );
      }
      const actual = `sha256:${hash.digest("hex")}`;
      if (actual !== digest) throw mismatch(what, digest, actual);
      await file.syncData();
      await Deno.chmod(temp, 0o444);
      if (reported !== done) report();
    } catch (e) {
      await reader.cancel().catch(() => {});
      await Deno.remove(temp).catch(() => {});
      throw noSpaceError(e, this.dir, `Download of ${what}`);
    }
    await Deno.rename(temp, `${this.dir}/${digestHex(digest)}`);
    return done;
  }
}

function mismatch(what: string, expected: string, actual: string): VolantError {
  return new VolantError(
    "checksum_mismatch",
    `${what} has digest ${actual}, not the expected ${expected}; the content was corrupted or replaced`,
    { expected, actual },
  );
}

/**
 * Whether a file name in a blob directory is a temp file of an unfinished download.
 *
 * @example
 * ```ts
 * import { isTempBlob } from "./blob_store.ts";
 * console.assert(isTempBlob(".tmp-ab12-uuid") && !isTempBlob("ab12"));
 * ```
 */
export function isTempBlob(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}
