/**
 * Network interface names: validation against the kernel's rules, and the deterministic tap
 * name of a VM.
 *
 * @module
 */
import { sha256 } from "./_sha256.ts";
import { VolantError } from "../schema/error.ts";

/** Longest interface name in bytes (`IFNAMSIZ` 16 minus the NUL). */
export const IFNAME_MAX = 15;

/**
 * Prefix of every tap Volant creates (`vt-web`, `vt-a-r_k3j4m2pq`), so the daemon can find
 * orphan taps with `listLinks().filter((l) => l.name.startsWith(TAP_PREFIX))`.
 */
export const TAP_PREFIX = "vt-";

/**
 * Throws `invalid_argument` naming `field` unless `name` is a valid Linux interface name:
 * 1-15 bytes (UTF-8), not `.` or `..`, and none of `/`, `:`, whitespace or control characters
 * (the kernel's `dev_valid_name`), nor `%` (the kernel would treat it as a pattern and pick a
 * name itself). Returns `name`.
 *
 * @example
 * ```ts
 * import { validateIfName } from "./names.ts";
 * validateIfName("vbr0", "network.bridge");
 * try {
 *   validateIfName("a-very-long-name0", "network.bridge");
 * } catch (err) {
 *   console.assert((err as Error).message.startsWith("network.bridge:"));
 * }
 * ```
 */
export function validateIfName(name: string, field: string): string {
  const bytes = new TextEncoder().encode(name).length;
  let problem: string | undefined;
  if (bytes === 0) problem = "is empty";
  else if (bytes > IFNAME_MAX) problem = `is ${bytes} bytes long (at most ${IFNAME_MAX})`;
  else if (name === "." || name === "..") problem = "cannot be '.' or '..'";
  // deno-lint-ignore no-control-regex
  else if (/[/:%\s\x00-\x1f\x7f]/.test(name)) {
    problem = "contains '/', ':', '%', whitespace or a control character";
  }
  if (problem !== undefined) {
    throw new VolantError(
      "invalid_argument",
      `${field}: interface name ${JSON.stringify(name)} ${problem}; use 1-${IFNAME_MAX} ` +
        "letters, digits, '-', '_' or '.'",
      { field, value: name },
    );
  }
  return name;
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** The first `chars` base32 characters (lowercase, 5 bits each) of SHA-256(`text`). */
function hash32(text: string, chars: number): string {
  const digest = sha256(text);
  let out = "";
  let bits = 0;
  let acc = 0;
  for (const byte of digest) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      bits -= 5;
      out += BASE32[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
    if (out.length === chars) break;
  }
  return out;
}

/**
 * The tap name of VM `vmName`: deterministic, at most 15 bytes, starting with `prefix`.
 *
 * - `prefix + vmName` when the VM name is made of `[a-z0-9-]` and fits (`vt-web`);
 * - otherwise `prefix + <head> + "_" + <8 base32 chars of SHA-256(vmName)>`, where `<head>` is
 *   the start of the name (lowercase letters, digits and `-` only) filling the remaining bytes,
 *   e.g. `vt-a-r_xxxxxxxx` for `a-rather-long-vm-name` (3 bytes of head with the default prefix).
 *
 * The two forms cannot collide: VM names never contain `_`. Two long names collide only when
 * their 40-bit hashes and heads match (about 1 in 10^12 per pair).
 *
 * `prefix` must be 1-6 characters of `[a-z0-9-]` so the hash always fits.
 *
 * @example
 * ```ts
 * import { tapNameFor } from "./names.ts";
 * console.assert(tapNameFor("web") === "vt-web");
 * const long = tapNameFor("a-rather-long-vm-name");
 * console.assert(long.length === 15 && long.startsWith("vt-a-r_"));
 * ```
 */
export function tapNameFor(vmName: string, prefix: string = TAP_PREFIX): string {
  if (!/^[a-z0-9-]{1,6}$/.test(prefix)) {
    throw new VolantError(
      "invalid_argument",
      `prefix: tap name prefix ${JSON.stringify(prefix)} must be 1-6 of [a-z0-9-]`,
      { field: "prefix", value: prefix },
    );
  }
  if (vmName === "") {
    throw new VolantError("invalid_argument", "vmName: cannot derive a tap name from ''", {
      field: "vmName",
    });
  }
  if (/^[a-z0-9-]+$/.test(vmName) && prefix.length + vmName.length <= IFNAME_MAX) {
    return prefix + vmName;
  }
  const hash = hash32(vmName, 8);
  const room = IFNAME_MAX - prefix.length - 1 - hash.length;
  const head = vmName.toLowerCase().replace(/[^a-z0-9-]/g, "").slice(0, room);
  return `${prefix}${head}_${hash}`;
}
