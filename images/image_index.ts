/**
 * The image store's metadata: one JSON file (`<root>/images.json`) holding every
 * {@linkcode ImageRecord}, validated on read and replaced atomically (temp file, fsync,
 * rename) on write; updates within a process run one at a time.
 *
 * @module
 */
import * as z from "zod/mini";
import { VolantError } from "../schema/error.ts";

const Digest = z.string().check(z.regex(/^sha256:[0-9a-f]{64}$/));
const Strings = z.array(z.string());

/** Where an image came from. */
export const ImageSourceKind = z.enum(["registry", "oci-layout", "docker-archive"]);
/** Where an image came from. */
export type ImageSourceKind = z.infer<typeof ImageSourceKind>;

/** A stored image: what VMs boot from and how its process is meant to run. */
export const ImageRecord = z.object({
  /** Canonical reference (`docker.io/library/nginx:latest`, `localhost/app:1`, `…@sha256:…`). */
  ref: z.string(),
  /** The linux/amd64 image manifest's digest: the image's identity. */
  digest: Digest,
  /** The image config blob's digest. */
  config_digest: Digest,
  /** Always `linux/amd64`. */
  platform: z.string(),
  /** Where it came from. */
  source: ImageSourceKind,
  /** The config's process fields. */
  config: z.object({
    entrypoint: z.nullable(Strings),
    cmd: z.nullable(Strings),
    env: Strings,
    workdir: z.nullable(z.string()),
    user: z.nullable(z.string()),
    exposed_ports: Strings,
  }),
  /** The shared read-only erofs root filesystem. */
  rootfs: z.object({ path: z.string(), size_bytes: z.int().check(z.gte(0)) }),
  /** The layers, bottom first. */
  layers: z.array(
    z.object({ digest: Digest, size: z.int().check(z.gte(0)), media_type: z.string() }),
  ),
  /** What the unpack could not apply (xattrs without `setfattr`, device nodes without root). */
  warnings: Strings,
  /** When the record was stored (ISO 8601). */
  created_at: z.string(),
});
/** A stored image. */
export type ImageRecord = z.infer<typeof ImageRecord>;

const IndexDocument = z.object({ version: z.literal(1), images: z.array(ImageRecord) });

/**
 * The digests an image needs kept: manifest, config and layers.
 *
 * @example
 * ```ts ignore
 * import { recordBlobs } from "./image_index.ts";
 * for (const d of recordBlobs(record)) console.log(d);
 * ```
 */
export function recordBlobs(record: ImageRecord): string[] {
  return [record.digest, record.config_digest, ...record.layers.map((l) => l.digest)];
}

/**
 * The index file.
 *
 * @example
 * ```ts ignore
 * import { ImageIndexFile } from "./image_index.ts";
 * const index = new ImageIndexFile("/var/lib/volant/images/images.json");
 * await index.update((records) => records.filter((r) => r.ref !== "docker.io/library/nginx:latest"));
 * ```
 */
export class ImageIndexFile {
  /** The file. */
  readonly path: string;
  #queue: Promise<unknown> = Promise.resolve();

  /** An index kept at `path`. */
  constructor(path: string) {
    this.path = path;
  }

  /** Every record (none when the file does not exist). A corrupt file is an `internal` error naming it. */
  async read(): Promise<ImageRecord[]> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw this.#corrupt(e instanceof Error ? e.message : String(e));
    }
    const r = IndexDocument.safeParse(json);
    if (!r.success) {
      throw this.#corrupt(
        r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
      );
    }
    return r.data.images;
  }

  /**
   * Replaces the records with `fn(records)`, atomically; calls run one after another. Returns
   * the records written.
   */
  update(
    fn: (records: ImageRecord[]) => ImageRecord[] | Promise<ImageRecord[]>,
  ): Promise<ImageRecord[]> {
    const run = this.#queue.then(async () => {
      const next = await fn(await this.read());
      await this.#write(next);
      return next;
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  async #write(images: ImageRecord[]): Promise<void> {
    const dir = this.path.slice(0, this.path.lastIndexOf("/")) || "/";
    await Deno.mkdir(dir, { recursive: true });
    const temp = `${this.path}.tmp-${crypto.randomUUID()}`;
    try {
      const bytes = new TextEncoder().encode(
        `${JSON.stringify({ version: 1, images }, null, 2)}\n`,
      );
      using file = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
      let at = 0;
      while (at < bytes.length) at += await file.write(bytes.subarray(at));
      await file.syncData();
    } catch (e) {
      await Deno.remove(temp).catch(() => {});
      throw e;
    }
    await Deno.rename(temp, this.path);
  }

  #corrupt(why: string): VolantError {
    return new VolantError(
      "internal",
      `Image index ${this.path} is corrupt (${why}); move it away to start with an empty image list`,
      { path: this.path },
    );
  }
}
