/** Hostname rules kestrel applies (at boot and to a new identity). @module */

/** Longest hostname Linux accepts (`HOST_NAME_MAX`). */
export const HOSTNAME_MAX = 64;

/**
 * Whether `name` is a valid hostname: RFC 1123 labels (letters, digits, inner hyphens, at most
 * 63 each) joined by dots, at most 64 bytes in all.
 *
 * @example
 * ```ts
 * import { isValidHostname } from "./hostname.ts";
 * console.assert(isValidHostname("web-1.local") && !isValidHostname("-bad") && !isValidHostname(""));
 * ```
 */
export function isValidHostname(name: string): boolean {
  if (name.length === 0 || name.length > HOSTNAME_MAX) return false;
  return name.split(".").every((label) =>
    /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label)
  );
}
