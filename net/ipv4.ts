/**
 * IPv4 addresses and CIDR blocks as unsigned 32-bit integers. Pure: no I/O.
 *
 * Parsing is strict: four decimal octets 0-255 without leading zeros (`010.0.0.1` is refused,
 * as some tools read it as octal). A CIDR block must not have host bits set
 * (`192.168.127.5/24` is refused with a hint naming `192.168.127.0/24`); an interface address
 * such as `192.168.127.1/24` is parsed with {@linkcode parseInterfaceAddress} instead.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";

/** A CIDR block: the network address (host bits zero) and the prefix length. */
export interface Cidr {
  /** The network address as an unsigned 32-bit integer. */
  network: number;
  /** Prefix length, 0-32. */
  prefix: number;
}

/** An address with its prefix length, as configured on an interface (`10.0.0.2/24`). */
export interface InterfaceAddress {
  /** The address as an unsigned 32-bit integer. */
  address: number;
  /** Prefix length, 0-32. */
  prefix: number;
}

function invalid(field: string, text: string, why: string, example: string): VolantError {
  return new VolantError(
    "invalid_argument",
    `${field}: ${JSON.stringify(text)} ${why}; expected ${example}`,
    { field, value: text },
  );
}

function refuseIpv6(field: string, text: string, what: string): void {
  if (text.includes(":")) {
    throw new VolantError(
      "invalid_argument",
      `${field}: ${JSON.stringify(text)} is IPv6; IPv6 ${what} are not supported yet`,
      { field, value: text },
    );
  }
}

/**
 * Parses a dotted-quad IPv4 address into an unsigned 32-bit integer; throws
 * `invalid_argument` naming `field`.
 *
 * @example
 * ```ts
 * import { parseIpv4 } from "./ipv4.ts";
 * console.assert(parseIpv4("192.168.127.1") === 0xc0a87f01);
 * ```
 */
export function parseIpv4(text: string, field = "address"): number {
  refuseIpv6(field, text, "addresses");
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p))) {
    throw invalid(field, text, "is not an IPv4 address", "four decimal octets like 192.168.127.10");
  }
  let n = 0;
  for (const p of parts) {
    const octet = Number(p);
    if (octet > 255) {
      throw invalid(field, text, `has octet ${octet} > 255`, "octets 0-255");
    }
    n = n * 256 + octet;
  }
  return n;
}

/**
 * Formats an unsigned 32-bit integer as a dotted quad.
 *
 * @example
 * ```ts
 * import { formatIpv4 } from "./ipv4.ts";
 * console.assert(formatIpv4(0x0a000001) === "10.0.0.1");
 * ```
 */
export function formatIpv4(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new RangeError(`Not an IPv4 address integer: ${n}`);
  }
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * The netmask of a prefix length as an unsigned integer (`24` → `0xffffff00`).
 *
 * @example
 * ```ts
 * import { netmask } from "./ipv4.ts";
 * console.assert(netmask(24) === 0xffffff00 && netmask(0) === 0);
 * ```
 */
export function netmask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function splitPrefix(text: string, field: string, example: string): [string, number] {
  const slash = text.indexOf("/");
  if (slash < 0) throw invalid(field, text, "has no prefix length", example);
  const len = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]?)$/.test(len) || Number(len) > 32) {
    throw invalid(field, text, `has prefix length ${JSON.stringify(len)}`, "a prefix 0-32");
  }
  return [text.slice(0, slash), Number(len)];
}

/**
 * Parses a CIDR block (`192.168.127.0/24`). Refuses host bits (`192.168.127.5/24`) with a
 * message naming the block that was probably meant, and IPv6 (`IPv6 … not supported yet`).
 *
 * @example
 * ```ts
 * import { parseCidr } from "./ipv4.ts";
 * const c = parseCidr("10.1.0.0/16");
 * console.assert(c.prefix === 16 && c.network === 0x0a010000);
 * ```
 */
export function parseCidr(text: string, field = "cidr"): Cidr {
  refuseIpv6(field, text, "networks");
  const example = "a block like 192.168.127.0/24";
  const [addr, prefix] = splitPrefix(text, field, example);
  const ip = parseIpv4(addr, field);
  const network = (ip & netmask(prefix)) >>> 0;
  if (network !== ip) {
    throw invalid(
      field,
      text,
      `has host bits set (did you mean ${formatIpv4(network)}/${prefix}?)`,
      example,
    );
  }
  return { network, prefix };
}

/**
 * Parses an interface address with prefix (`192.168.127.1/24`); host bits are expected.
 *
 * @example
 * ```ts
 * import { parseInterfaceAddress } from "./ipv4.ts";
 * const a = parseInterfaceAddress("10.0.0.2/24");
 * console.assert(a.prefix === 24 && a.address === 0x0a000002);
 * ```
 */
export function parseInterfaceAddress(text: string, field = "address"): InterfaceAddress {
  refuseIpv6(field, text, "addresses");
  const [addr, prefix] = splitPrefix(text, field, "an address with prefix like 10.0.0.2/24");
  return { address: parseIpv4(addr, field), prefix };
}

/**
 * Formats a CIDR block (`192.168.127.0/24`).
 *
 * @example
 * ```ts
 * import { formatCidr, parseCidr } from "./ipv4.ts";
 * console.assert(formatCidr(parseCidr("10.0.0.0/8")) === "10.0.0.0/8");
 * ```
 */
export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.network)}/${cidr.prefix}`;
}

/**
 * The block's last address (all host bits set).
 *
 * @example
 * ```ts
 * import { broadcastOf, formatIpv4, parseCidr } from "./ipv4.ts";
 * console.assert(formatIpv4(broadcastOf(parseCidr("10.0.0.0/24"))) === "10.0.0.255");
 * ```
 */
export function broadcastOf(cidr: Cidr): number {
  return (cidr.network | ~netmask(cidr.prefix)) >>> 0;
}

/**
 * The block containing `address` at `prefix` (`10.0.0.7`, 24 → `10.0.0.0/24`).
 *
 * @example
 * ```ts
 * import { formatCidr, networkOf, parseIpv4 } from "./ipv4.ts";
 * console.assert(formatCidr(networkOf(parseIpv4("10.0.0.7"), 24)) === "10.0.0.0/24");
 * ```
 */
export function networkOf(address: number, prefix: number): Cidr {
  return { network: (address & netmask(prefix)) >>> 0, prefix };
}

/**
 * Whether `address` lies in `cidr`.
 *
 * @example
 * ```ts
 * import { cidrContains, parseCidr, parseIpv4 } from "./ipv4.ts";
 * console.assert(cidrContains(parseCidr("10.0.0.0/24"), parseIpv4("10.0.0.9")));
 * ```
 */
export function cidrContains(cidr: Cidr, address: number): boolean {
  return ((address & netmask(cidr.prefix)) >>> 0) === cidr.network;
}

/**
 * Whether two CIDR blocks share any address (given as text or parsed).
 *
 * @example
 * ```ts
 * import { overlaps } from "./ipv4.ts";
 * console.assert(overlaps("10.0.0.0/8", "10.1.0.0/16"));
 * console.assert(!overlaps("10.0.0.0/24", "10.0.1.0/24"));
 * ```
 */
export function overlaps(a: Cidr | string, b: Cidr | string): boolean {
  const x = typeof a === "string" ? parseCidr(a, "a") : a;
  const y = typeof b === "string" ? parseCidr(b, "b") : b;
  const prefix = Math.min(x.prefix, y.prefix);
  return ((x.network & netmask(prefix)) >>> 0) === ((y.network & netmask(prefix)) >>> 0);
}
