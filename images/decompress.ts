/**
 * Layer compression: decided by the layer's media type, verified against the blob's first
 * bytes, and undone as a stream (gzip by `DecompressionStream`, zstd by the `zstd` program,
 * because Deno 2.9's `DecompressionStream` has no zstd).
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";

/** How a layer blob is compressed. */
export type Compression = "gzip" | "zstd" | "none";

const LAYER_TYPES: Record<string, Compression> = {
  "application/vnd.oci.image.layer.v1.tar": "none",
  "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
  "application/vnd.docker.image.rootfs.diff.tar": "none",
  "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
};

/** The media type of a layer compressed with each {@linkcode Compression} (OCI names). */
export const OCI_LAYER_TYPE: Record<Compression, string> = {
  none: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
};

/**
 * The compression a layer media type declares; an unknown media type (not a filesystem layer)
 * is an `invalid_argument` error naming it.
 *
 * @example
 * ```ts
 * import { layerCompression } from "./decompress.ts";
 * console.assert(layerCompression("application/vnd.oci.image.layer.v1.tar+zstd") === "zstd");
 * ```
 */
export function layerCompression(mediaType: string, what = "Layer"): Compression {
  const c = LAYER_TYPES[mediaType];
  if (c === undefined) {
    throw new VolantError(
      "invalid_argument",
      `${what} has media type ${JSON.stringify(mediaType)}, which is not a filesystem layer ` +
        `(expected one of ${Object.keys(LAYER_TYPES).join(", ")})`,
      { media_type: mediaType },
    );
  }
  return c;
}

/**
 * The compression the first bytes of a blob show: gzip (`1f 8b`), zstd (`28 b5 2f fd`), or
 * `none` for anything else.
 *
 * @example
 * ```ts
 * import { sniffCompression } from "./decompress.ts";
 * console.assert(sniffCompression(new Uint8Array([0x1f, 0x8b, 8, 0])) === "gzip");
 * ```
 */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return "none";
}

/**
 * The compression of the file at `path`, by its magic bytes.
 *
 * @example
 * ```ts ignore
 * import { fileCompression } from "./decompress.ts";
 * console.log(await fileCompression("layer.tar.gz")); // "gzip"
 * ```
 */
export async function fileCompression(path: string): Promise<Compression> {
  using file = await Deno.open(path);
  const head = new Uint8Array(4);
  let n = 0;
  while (n < head.length) {
    const r = await file.read(head.subarray(n));
    if (r === null) break;
    n += r;
  }
  return sniffCompression(head.subarray(0, n));
}

/**
 * The uncompressed tar stream of the layer blob at `path`. The media type decides the
 * decompressor and the blob's magic bytes must agree with it (a mismatch is an
 * `invalid_argument` error naming both). zstd is decompressed by `zstd -dc`; its failure (exit
 * status and stderr) errors the stream.
 *
 * @example
 * ```ts ignore
 * import { openLayer } from "./decompress.ts";
 * const tar = await openLayer("blobs/sha256/ab…", "application/vnd.oci.image.layer.v1.tar+gzip");
 * ```
 */
export async function openLayer(
  path: string,
  mediaType: string,
  what = "Layer",
): Promise<ReadableStream<Uint8Array>> {
  const declared = layerCompression(mediaType, what);
  const actual = await fileCompression(path);
  if (actual !== declared) {
    throw new VolantError(
      "invalid_argument",
      `${what} is declared ${declared === "none" ? "uncompressed" : declared} by its media type ` +
        `${mediaType} but its content is ${actual === "none" ? "not gzip or zstd" : actual}`,
      { media_type: mediaType, declared, actual },
    );
  }
  if (declared === "zstd") return zstdStream(path, what);
  const file = await Deno.open(path);
  if (declared === "none") return file.readable;
  return gzipErrors(file.readable.pipeThrough(new DecompressionStream("gzip")), what);
}

/** Re-throws a decompressor's errors (bad deflate data, a truncated stream) as VolantErrors. */
function gzipErrors(source: ReadableStream<Uint8Array>, what: string): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (e) {
        controller.error(
          new VolantError(
            "invalid_argument",
            `${what} could not be decompressed: gzip data is corrupt or truncated (${
              e instanceof Error ? e.message : String(e)
            })`,
            {},
            { cause: e },
          ),
        );
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

function zstdStream(path: string, what: string): ReadableStream<Uint8Array> {
  const child = new Deno.Command("zstd", {
    args: ["-dcq", "--", path],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (!done) return controller.enqueue(value);
      const status = await child.status;
      if (status.success) return controller.close();
      const text = (await stderr).trim();
      controller.error(
        new VolantError(
          "invalid_argument",
          `${what} could not be decompressed: zstd exited with status ${status.code}: ${text}`,
          { exit_code: status.code },
        ),
      );
    },
    async cancel() {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await reader.cancel().catch(() => {});
      await child.status;
      await stderr;
    },
  });
}
