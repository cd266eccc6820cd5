/**
 * Content digests as OCI writes them: `sha256:<64 lowercase hex digits>`. Only sha256 is
 * accepted (every registry and image tool in use writes it).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { VolantError } from "../schema/error.ts";

const DIGEST = /^sha256:([0-9a-f]{64})$/;

/**
 * The hex part of a `sha256:<hex>` digest; anything else is an `invalid_argument` error naming
 * `what` (the field or document the digest came from).
 *
 * @example
 * ```ts
 * import { digestHex } from "./digest.ts";
 * console.assert(digestHex("sha256:" + "ab".repeat(32)) === "ab".repeat(32));
 * ```
 */
export function digestHex(digest: string, what = "digest"): string {
  const m = DIGEST.exec(digest);
  if (m?.[1] === undefined) {
    throw new VolantError(
      "invalid_argument",
      `${what}: ${
        JSON.stringify(digest)
      } is not a digest; expected sha256:<64 lowercase hex digits>`,
      { field: what, value: digest },
    );
  }
  return m[1];
}

/**
 * Whether `value` is a `sha256:<hex>` digest.
 *
 * @example
 * ```ts
 * import { isDigest } from "./digest.ts";
 * console.assert(!isDigest("sha256:xyz"));
 * ```
 */
export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

/**
 * The `sha256:<hex>` digest of `bytes`.
 *
 * @example
 * ```ts
 * import { sha256Digest } from "./digest.ts";
 * console.assert(sha256Digest(new Uint8Array()).startsWith("sha256:e3b0c442"));
 * ```
 */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/**
 * The `sha256:<hex>` digest and size of a file, read in 1 MiB pieces.
 *
 * @example
 * ```ts ignore
 * import { fileDigest } from "./digest.ts";
 * const { digest, size } = await fileDigest("/etc/hostname");
 * ```
 */
export async function fileDigest(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  using file = await Deno.open(path);
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
    size += n;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}
