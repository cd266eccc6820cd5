/**
 * Compression of the appliance archive, deterministic: gzip through the runtime's
 * `CompressionStream` (no file name, mtime 0), zstd through the `zstd` CLI at a fixed level on
 * one thread with the content size recorded. Both are formats the guest kernel unpacks
 * (`CONFIG_RD_GZIP`, `CONFIG_RD_ZSTD`).
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";

/** How the archive is packed. */
export type Compression = "gzip" | "zstd" | "none";

/** The zstd level used (fixed, so the bytes depend on the input only). */
export const ZSTD_LEVEL = 19;

/** The archive's file extension for each compression. */
export const ARCHIVE_EXTENSIONS: Readonly<Record<Compression, string>> = {
  gzip: ".cpio.gz",
  zstd: ".cpio.zst",
  none: ".cpio",
};

async function gzip(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function zstd(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const args = [`-${ZSTD_LEVEL}`, "-T1", "-q", "-c", `--stream-size=${data.length}`, "-"];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("zstd", {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { LC_ALL: "C" },
    }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new VolantError(
        "internal",
        'output.compression = "zstd" needs the zstd program: install it with `apt-get install ' +
          'zstd`, or use compression = "gzip"',
        { tool: "zstd", package: "zstd" },
      );
    }
    throw err;
  }
  const writer = child.stdin.getWriter();
  const [out] = await Promise.all([
    child.output(),
    writer.write(data).then(() => writer.close()),
  ]);
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new VolantError("internal", `zstd ${args.join(" ")} failed: ${stderr || "no message"}`, {
      tool: "zstd",
      code: out.code,
    });
  }
  return new Uint8Array(out.stdout);
}

/**
 * Compresses archive bytes; the same bytes in give the same bytes out.
 *
 * @example
 * ```ts
 * import { compressArchive } from "./compress.ts";
 * const packed = await compressArchive(new TextEncoder().encode("070701"), "gzip");
 * console.assert(packed[0] === 0x1f && packed[1] === 0x8b);
 * ```
 */
export function compressArchive(
  data: Uint8Array,
  compression: Compression,
): Promise<Uint8Array<ArrayBuffer>> {
  const bytes = data.buffer instanceof ArrayBuffer
    ? data as Uint8Array<ArrayBuffer>
    : new Uint8Array(data);
  switch (compression) {
    case "gzip":
      return gzip(bytes);
    case "zstd":
      return zstd(bytes);
    case "none":
      return Promise.resolve(bytes);
  }
}
