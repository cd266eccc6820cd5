/**
 * The image store: pulls images from registries and imports OCI layouts and `docker save`
 * archives into content-addressed blobs, builds each image's read-only erofs rootfs once, and
 * keeps one JSON index of {@linkcode ImageRecord}s. A failed pull or import leaves no partial
 * blob, tree, rootfs or index entry; concurrent pulls of one image share one promise.
 *
 * Layout under `root`: `blobs/sha256/<hex>`, `rootfs/<manifest hex>.erofs`, `images.json`,
 * `tmp/` (unpack trees and extracted archives, removed after each use).
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { releaseInertUnder } from "./_inert_mount.ts";
import { type BlobProgress, BlobStore, isTempBlob } from "./blob_store.ts";
import { openDockerArchive } from "./docker_archive.ts";
import {
  ImageIndexFile,
  type ImageRecord,
  type ImageSourceKind,
  recordBlobs,
} from "./image_index.ts";
import { imageConfig, parseImageConfig, PLATFORM } from "./manifest.ts";
import { openOciLayout } from "./oci_layout.ts";
import { type ImageReference, parseImageRef } from "./reference.ts";
import { RegistryClient } from "./registry_client.ts";
import type { RegistryCredentials } from "./docker_config.ts";
import { buildRootfs, type BuiltRootfs } from "./rootfs.ts";
import type { UnpackLayer } from "./unpack.ts";
import { eachLimited } from "./_each_limited.ts";
import { exists, localRef, matchRecords, names, notStored, place } from "./_records.ts";
import { type ImageSource, registrySource } from "./_source.ts";
import type { OnImageStep } from "./steps.ts";

/** Options of {@linkcode ImageStore.pull}. */
export interface PullOptions {
  /** Talk plain HTTP to the registry (`--insecure-registry`). */
  insecure?: boolean;
  /** Download progress per layer (a cached layer gets one event with `cached: true`). */
  onProgress?: (event: BlobProgress) => void;
  /** Cancels the pull; nothing partial is left. */
  signal?: AbortSignal;
  /**
   * Credentials for a registry host, asked before Docker's `config.json`; when it answers null,
   * `config.json` is read as before.
   */
  credentials?: (registry: string) => Promise<RegistryCredentials | null>;
}

/** Options of {@linkcode ImageStore.importLayout} and {@linkcode ImageStore.importDockerArchive}. */
export interface ImportOptions {
  /** Which image of the layout or archive (a tag, or for archives a `RepoTags` entry). */
  tag?: string;
  /**
   * The reference to record it under. Default: the full name the source gives it, else
   * `localhost/<file or directory name>:<tag or latest>`.
   */
  ref?: string;
  /** Copy progress per layer. */
  onProgress?: (event: BlobProgress) => void;
  /** Cancels the import; nothing partial is left. */
  signal?: AbortSignal;
}

/** Options of {@linkcode ImageStore}. */
export interface ImageStoreOptions {
  /** Where Docker's `config.json` (registry credentials) is; default `$DOCKER_CONFIG` or `~/.docker`. */
  dockerConfigDir?: string;
  /** Layers downloaded at once. @default {3} */
  layerConcurrency?: number;
  /** The most file bytes an image's layers may unpack to. @default {32 GiB} */
  maxUnpackedBytes?: number;
  /** Test seam: called at each step of a pull or import (see `steps.ts`). */
  onStep?: OnImageStep;
}

/** What {@linkcode ImageStore.gc} removed. */
export interface GcResult {
  /** Blobs no image uses. */
  blobs: number;
  /** Rootfs images no image uses. */
  rootfs: number;
  /** Leftover temp files and trees of interrupted operations. */
  temp: number;
}

/**
 * Images under one directory.
 *
 * @example Pull from a local registry and boot its rootfs
 * ```ts ignore
 * import { ImageStore } from "./image_store.ts";
 * const store = new ImageStore("/var/lib/volant/images");
 * const image = await store.pull("127.0.0.1:5000/demo/nginx:1.0", {
 *   insecure: true,
 *   onProgress: (e) => console.error(e.digest, e.done, e.total),
 * });
 * console.log(image.rootfs.path, image.config.entrypoint, image.config.cmd);
 * ```
 */
export class ImageStore {
  /** The store's directory. */
  readonly root: string;
  /** Its blobs. */
  readonly blobs: BlobStore;
  #index: ImageIndexFile;
  #options: ImageStoreOptions;
  #running = new Map<string, Promise<ImageRecord>>();
  #builds = new Map<string, Promise<BuiltRootfs>>();
  #pins = new Map<string, number>();

  /** A store rooted at `root` (created on first write). */
  constructor(root: string, options: ImageStoreOptions = {}) {
    this.root = root;
    this.blobs = new BlobStore(root);
    this.#index = new ImageIndexFile(`${root}/images.json`);
    this.#options = options;
  }

  /**
   * Pulls `ref` (linux/amd64) from its registry and builds its rootfs. A pull of an image
   * already stored under the same digest only fetches the manifest.
   *
   * Errors: `invalid_argument` (bad reference, no linux/amd64 image, unsafe layer),
   * `not_found` (unknown repository or tag), `artifact_unavailable` (registry unreachable,
   * refused, 5xx), `checksum_mismatch`.
   */
  pull(ref: string, options: PullOptions = {}): Promise<ImageRecord> {
    let parsed: ImageReference;
    try {
      parsed = parseImageRef(ref);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#once(`pull:${parsed.canonical}`, async () => {
      const credentials = await options.credentials?.(parsed.registry) ?? null;
      const client = new RegistryClient(parsed.registry, {
        insecure: options.insecure ?? false,
        ...(credentials === null ? {} : { credentials }),
        ...(this.#options.dockerConfigDir === undefined
          ? {}
          : { dockerConfigDir: this.#options.dockerConfigDir }),
      });
      return await this.#ingest(
        registrySource(parsed, client),
        parsed.canonical,
        "registry",
        options,
      );
    });
  }

  /** Imports an image from the OCI layout directory `dir`. */
  importLayout(dir: string, options: ImportOptions = {}): Promise<ImageRecord> {
    return this.#once(`layout:${dir}:${options.tag ?? ""}`, async () => {
      const source = await openOciLayout(
        dir,
        options.tag === undefined ? {} : { tag: options.tag },
      );
      const ref = localRef(options.ref ?? source.name, dir, source.tag);
      return await this.#ingest(source, ref, "oci-layout", options);
    });
  }

  /** Imports an image from the `docker save` archive at `path` (legacy or docker ≥25 flavour). */
  importDockerArchive(path: string, options: ImportOptions = {}): Promise<ImageRecord> {
    return this.#once(`archive:${path}:${options.tag ?? ""}`, async () => {
      const work = `${this.root}/tmp/archive-${crypto.randomUUID()}`;
      await Deno.mkdir(work, { recursive: true });
      try {
        const source = await openDockerArchive(
          path,
          work,
          options.tag === undefined ? {} : { tag: options.tag },
        );
        const ref = localRef(options.ref ?? source.name, path.replace(/\.tar$/, ""), source.tag);
        return await this.#ingest(source, ref, "docker-archive", options);
      } finally {
        await Deno.remove(work, { recursive: true }).catch(() => {});
      }
    });
  }

  /** The image `refOrDigest` names (a reference, `sha256:<hex>` or a hex prefix of 12+ digits), if stored. */
  async find(refOrDigest: string): Promise<ImageRecord | undefined> {
    return matchRecords(await this.#index.read(), refOrDigest)[0];
  }

  /** The image `refOrDigest` names; `not_found` when it is not stored. */
  async get(refOrDigest: string): Promise<ImageRecord> {
    const record = await this.find(refOrDigest);
    if (record === undefined) throw notStored(refOrDigest);
    return record;
  }

  /** Every stored image, by reference. */
  async list(): Promise<ImageRecord[]> {
    return (await this.#index.read()).sort((a, b) => a.ref.localeCompare(b.ref));
  }

  /**
   * Removes the image `refOrDigest` names (by digest: every reference to it), then its rootfs
   * and the blobs no other image uses. Returns the records removed; `not_found` when none.
   */
  async remove(refOrDigest: string): Promise<ImageRecord[]> {
    let removed: ImageRecord[] = [];
    const remaining = await this.#index.update((records) => {
      removed = matchRecords(records, refOrDigest);
      if (removed.length === 0) throw notStored(refOrDigest);
      return records.filter((r) => !removed.includes(r));
    });
    const keep = this.#kept(remaining);
    for (const r of removed) {
      if (!keep.has(r.digest)) await Deno.remove(r.rootfs.path).catch(() => {});
      for (const d of recordBlobs(r)) if (!keep.has(d)) await this.blobs.remove(d);
    }
    return removed;
  }

  /**
   * Removes blobs and rootfs images no stored image uses, and temp files and trees left by
   * interrupted operations (only while no pull or import runs in this process).
   */
  async gc(): Promise<GcResult> {
    const result: GcResult = { blobs: 0, rootfs: 0, temp: 0 };
    const idle = this.#running.size === 0 && this.#pins.size === 0;
    const keep = this.#kept(await this.#index.read());
    for (const d of await this.blobs.list()) {
      if (!keep.has(d) && await this.blobs.remove(d)) result.blobs++;
    }
    // An unpack cut short by kill -9 leaves its inert mount: unmount before removing.
    if (idle) await releaseInertUnder(`${this.root}/tmp`);
    for (const dir of [this.blobs.dir, `${this.root}/rootfs`, `${this.root}/tmp`]) {
      for (const name of await names(dir)) {
        const temp = isTempBlob(name) || dir.endsWith("/tmp");
        const rootfs = /^([0-9a-f]{64})\.erofs$/.exec(name);
        if (temp && idle) {
          await Deno.remove(`${dir}/${name}`, { recursive: true });
          result.temp++;
        } else if (rootfs !== null && !keep.has(`sha256:${rootfs[1]}`)) {
          await Deno.remove(`${dir}/${name}`);
          result.rootfs++;
        }
      }
    }
    return result;
  }

  /** Digests in use: by stored images and by running operations. */
  #kept(records: readonly ImageRecord[]): Set<string> {
    return new Set([...records.flatMap(recordBlobs), ...this.#pins.keys()]);
  }

  #once(key: string, run: () => Promise<ImageRecord>): Promise<ImageRecord> {
    const running = this.#running.get(key);
    if (running !== undefined) return running;
    const p = run().finally(() => this.#running.delete(key));
    this.#running.set(key, p);
    return p;
  }

  #pin(digests: readonly string[], by: number): void {
    for (const d of digests) {
      const n = (this.#pins.get(d) ?? 0) + by;
      if (n > 0) this.#pins.set(d, n);
      else this.#pins.delete(d);
    }
  }

  async #ingest(
    source: ImageSource,
    ref: string,
    kind: ImageSourceKind,
    options: PullOptions | ImportOptions,
  ): Promise<ImageRecord> {
    const { signal } = options;
    const { digest, bytes, manifest } = await source.resolve(signal);
    const stored = (await this.#index.read()).find((r) => r.ref === ref && r.digest === digest);
    if (stored !== undefined && (await exists(stored.rootfs.path))) return stored;
    const { config, layers } = manifest;
    const needed = [digest, config.digest, ...layers.map((l) => l.digest)];
    const added: string[] = [];
    let newRootfs: string | null = null;
    let failed = false;
    this.#pin(needed, 1);
    try {
      const what = source.describe;
      const m = await this.blobs.putBytes(bytes, digest, `${what} manifest`);
      if (!m.cached) added.push(digest);
      const c = await this.blobs.ensure(config.digest, () => source.openBlob(config, signal), {
        size: config.size,
        what: `${what} config`,
        ...(signal === undefined ? {} : { signal }),
      });
      if (!c.cached) added.push(config.digest);
      const doc = parseImageConfig(await Deno.readFile(c.path), `${what} config`);
      if (doc.rootfs.diff_ids.length !== layers.length) {
        throw new VolantError(
          "invalid_argument",
          `${what}: its config lists ${doc.rootfs.diff_ids.length} layer digests but its manifest ${layers.length} layers`,
        );
      }
      await eachLimited(layers, this.#options.layerConcurrency ?? 3, signal, async (l, i, sig) => {
        const b = await this.blobs.ensure(l.digest, () => source.openBlob(l, sig), {
          size: l.size,
          signal: sig,
          what: `${what} layer ${i + 1} of ${layers.length} (${l.digest})`,
          ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
          ...(this.#options.onStep === undefined ? {} : { onStep: this.#options.onStep }),
        });
        if (!b.cached) added.push(l.digest);
      });
      const unpack: UnpackLayer[] = layers.map((l, i) => ({
        path: this.blobs.path(l.digest),
        mediaType: l.mediaType,
        digest: l.digest,
        diffId: doc.rootfs.diff_ids[i]!,
      }));
      const rootfs = await this.#build(digest, unpack, signal);
      if (!rootfs.cached) newRootfs = rootfs.path;
      const record: ImageRecord = {
        ref,
        digest,
        config_digest: config.digest,
        platform: PLATFORM,
        source: kind,
        config: imageConfig(doc),
        rootfs: { path: rootfs.path, size_bytes: rootfs.size_bytes },
        layers: layers.map((l) => ({ digest: l.digest, size: l.size, media_type: l.mediaType })),
        warnings: rootfs.cached
          ? (await this.#index.read()).find((r) => r.digest === digest)?.warnings ?? []
          : rootfs.warnings,
        created_at: new Date().toISOString(),
      };
      this.#options.onStep?.("rootfs_placed");
      await this.#index.update((records) => place(records, record));
      return record;
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      this.#pin(needed, -1);
      if (failed) await this.#discard(added, newRootfs, digest).catch(() => {});
    }
  }

  /** After a failure: removes what the operation added that nothing else uses. */
  async #discard(added: readonly string[], rootfs: string | null, digest: string): Promise<void> {
    const keep = this.#kept(await this.#index.read());
    for (const d of added) if (!keep.has(d)) await this.blobs.remove(d);
    if (rootfs !== null && !keep.has(digest)) await Deno.remove(rootfs).catch(() => {});
  }

  #build(
    digest: string,
    layers: UnpackLayer[],
    signal: AbortSignal | undefined,
  ): Promise<BuiltRootfs> {
    const running = this.#builds.get(digest);
    if (running !== undefined) return running;
    const p = buildRootfs(this.root, digest, layers, {
      ...(signal === undefined ? {} : { signal }),
      ...(this.#options.maxUnpackedBytes ? { maxBytes: this.#options.maxUnpackedBytes } : {}),
      ...(this.#options.onStep === undefined ? {} : { onStep: this.#options.onStep }),
    })
      .finally(() => this.#builds.delete(digest));
    this.#builds.set(digest, p);
    return p;
  }
}
