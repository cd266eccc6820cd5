/**
 * MAC addresses: parse, format, and derive a stable locally administered unicast address
 * from a seed (a VM's name), the way each VM gets the same MAC on every start.
 *
 * @module
 */
import { sha256 } from "./_sha256.ts";
import { VolantError } from "../schema/error.ts";

/**
 * Parses `aa:bb:cc:dd:ee:ff` (also `-` separated, any case) into 6 bytes; throws
 * `invalid_argument` naming `field` otherwise.
 *
 * @example
 * ```ts
 * import { parseMac } from "./mac.ts";
 * console.assert(parseMac("02:AB:cd:00:11:22")[1] === 0xab);
 * ```
 */
export function parseMac(text: string, field = "mac"): Uint8Array {
  const m =
    /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i
      .exec(text);
  if (m === null) {
    throw new VolantError(
      "invalid_argument",
      `${field}: ${JSON.stringify(text)} is not a MAC address; expected six hex byte pairs ` +
        "like 02:00:00:00:00:01",
      { field, value: text },
    );
  }
  return Uint8Array.from([m[1], m[3], m[4], m[5], m[6], m[7]], (h) => parseInt(h ?? "", 16));
}

/**
 * Formats bytes as lowercase colon-separated hex (`02:ab:cd:00:11:22`).
 *
 * @example
 * ```ts
 * import { formatMac } from "./mac.ts";
 * console.assert(formatMac(new Uint8Array([2, 0, 0, 0, 0, 1])) === "02:00:00:00:00:01");
 * ```
 */
export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * Whether `text` is a valid MAC address for a VM NIC: parseable, unicast (low bit of the
 * first byte clear) and not all zeros.
 *
 * @example
 * ```ts
 * import { isUnicastMac } from "./mac.ts";
 * console.assert(isUnicastMac("02:00:00:00:00:01"));
 * console.assert(!isUnicastMac("01:00:5e:00:00:01")); // multicast
 * ```
 */
export function isUnicastMac(text: string): boolean {
  let bytes: Uint8Array;
  try {
    bytes = parseMac(text);
  } catch {
    return false;
  }
  return ((bytes[0] ?? 1) & 1) === 0 && bytes.some((b) => b !== 0);
}

/**
 * The MAC for `seed`: `02` (locally administered, unicast) followed by the first 5 bytes of
 * SHA-256(`seed`). Synchronous (a small SHA-256 in `_sha256.ts`) so it can be used anywhere;
 * WebCrypto's digest would make every caller async.
 *
 * @example
 * ```ts
 * import { macFor } from "./mac.ts";
 * const mac = macFor("web");
 * console.assert(mac.startsWith("02:") && mac === macFor("web"));
 * ```
 */
export function macFor(seed: string): string {
  const digest = sha256(seed);
  const bytes = new Uint8Array(6);
  bytes[0] = 0x02;
  bytes.set(digest.subarray(0, 5), 1);
  return formatMac(bytes);
}
