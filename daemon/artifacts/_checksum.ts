/** Checksum parsing shared by the artifact cache's modules. @module */
import { VolantError } from "../../schema/error.ts";

const HEX = /^[0-9a-f]{64}$/;
const CHECKSUM = /^sha256:([0-9a-f]{64})$/;

/**
 * The hex digest of `sha256:<hex>` (or of a bare 64-digit hex string); anything else is an
 * `invalid_argument` error naming `field`.
 *
 * @example
 * ```ts
 * import { checksumHex } from "./_checksum.ts";
 * console.assert(checksumHex("sha256:" + "a".repeat(64)) === "a".repeat(64));
 * ```
 */
export function checksumHex(checksum: string, field = "checksum"): string {
  if (HEX.test(checksum)) return checksum;
  const m = CHECKSUM.exec(checksum);
  if (m?.[1] === undefined) {
    throw new VolantError(
      "invalid_argument",
      `${field}: ${JSON.stringify(checksum)} must be sha256:<64 lowercase hex digits>`,
      { field, value: checksum },
    );
  }
  return m[1];
}
