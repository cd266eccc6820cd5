/**
 * Interface addresses over rtnetlink: add, delete and list (`ip addr`). IPv4 is added and
 * deleted; listing reports IPv6 addresses too.
 *
 * @module
 */
import { broadcastOf, formatIpv4, networkOf, parseInterfaceAddress } from "../ipv4.ts";
import { validateIfName } from "../names.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  IFA_ADDRESS,
  IFA_BROADCAST,
  IFA_LABEL,
  IFA_LOCAL,
  IFLA_IFNAME,
  NLM_F_CREATE,
  NLM_F_EXCL,
  RT_SCOPE_HOST,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RTM_DELADDR,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
} from "./_constants.ts";
import {
  attrString,
  MessageBuilder,
  readIfAddrMsg,
  readIfInfoMsg,
  writeIfAddrMsg,
  writeIfInfoMsg,
} from "./_message.ts";
import { NetlinkError } from "./error.ts";
import { perform, requireIndex } from "./_op.ts";

/** One address on a link, as the kernel reports it. */
export interface AddressInfo {
  /** Index of the link carrying it. */
  index: number;
  /** Name of the link carrying it. */
  link: string;
  /** `"inet"` (IPv4) or `"inet6"`. */
  family: "inet" | "inet6";
  /** The address (`10.0.0.1`, `fe80::1`). */
  address: string;
  /** Prefix length. */
  prefix: number;
  /** `address/prefix`. */
  cidr: string;
  /** `"global"`, `"link"`, `"host"` or the raw scope number. */
  scope: string;
  /** The IPv4 label (usually the link name). */
  label: string | undefined;
}

function u32be(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

function formatIpv6(b: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((b[2 * i] ?? 0) << 8) | (b[2 * i + 1] ?? 0));
  // RFC 5952: compress the longest run (length ≥ 2) of zero groups, the first one on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

function formatAddress(family: number, bytes: Uint8Array | undefined): string {
  if (bytes === undefined) return "";
  if (family === AF_INET && bytes.length === 4) {
    return formatIpv4(
      (((bytes[0] ?? 0) << 24) | ((bytes[1] ?? 0) << 16) | ((bytes[2] ?? 0) << 8) |
        (bytes[3] ?? 0)) >>> 0,
    );
  }
  return formatIpv6(bytes);
}

function scopeName(scope: number): string {
  return scope === RT_SCOPE_UNIVERSE
    ? "global"
    : scope === RT_SCOPE_LINK
    ? "link"
    : scope === RT_SCOPE_HOST
    ? "host"
    : String(scope);
}

function addressRequest(type: number, flags: number, link: string, cidr: string): MessageBuilder {
  const { address, prefix } = parseInterfaceAddress(cidr, "address");
  const index = requireIndex(link, type === RTM_NEWADDR ? "add address" : "delete address");
  const b = writeIfAddrMsg(new MessageBuilder(type, flags), {
    family: AF_INET,
    prefixLength: prefix,
    flags: 0,
    scope: RT_SCOPE_UNIVERSE,
    index,
  }).attr(IFA_LOCAL, u32be(address)).attr(IFA_ADDRESS, u32be(address));
  if (type === RTM_NEWADDR && prefix <= 30) {
    b.attr(IFA_BROADCAST, u32be(broadcastOf(networkOf(address, prefix))));
  }
  return b;
}

/**
 * Adds IPv4 address `cidr` (`192.168.127.1/24`) to `link`, with the subnet's broadcast
 * address. Throws `EEXIST: address … already on link …` when present, `ENODEV` when the link
 * is missing.
 *
 * @example
 * ```ts ignore
 * import { addAddress } from "./address.ts";
 * addAddress("vbr0", "192.168.127.1/24");
 * ```
 */
export function addAddress(link: string, cidr: string): void {
  validateIfName(link, "link");
  const request = addressRequest(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, link, cidr);
  perform({
    op: "add address",
    subject: `${cidr} to link ${link}`,
    link,
    phrases: { EEXIST: `address ${cidr} already on link ${link}` },
    details: { address: cidr },
  }, (sock) => sock.request(request));
}

/**
 * Adds `cidr` to `link` unless it is already there; returns whether it added it.
 *
 * @example
 * ```ts ignore
 * import { ensureAddress } from "./address.ts";
 * ensureAddress("vbr0", "192.168.127.1/24");
 * ```
 */
export function ensureAddress(link: string, cidr: string): boolean {
  try {
    addAddress(link, cidr);
    return true;
  } catch (err) {
    if (err instanceof NetlinkError && err.errno === "EEXIST") return false;
    throw err;
  }
}

/**
 * Removes IPv4 address `cidr` from `link`. Throws `EADDRNOTAVAIL: address … is not on link …`
 * when it is not there.
 *
 * @example
 * ```ts ignore
 * import { deleteAddress } from "./address.ts";
 * deleteAddress("vbr0", "192.168.127.1/24");
 * ```
 */
export function deleteAddress(link: string, cidr: string): void {
  validateIfName(link, "link");
  const request = addressRequest(RTM_DELADDR, 0, link, cidr);
  perform({
    op: "delete address",
    subject: `${cidr} from link ${link}`,
    link,
    phrases: { EADDRNOTAVAIL: `address ${cidr} is not on link ${link}` },
    details: { address: cidr },
  }, (sock) => sock.request(request));
}

/**
 * The addresses of `link`, or of every link when omitted (IPv4 first, then IPv6, in kernel
 * order). Throws `ENODEV` when `link` is given and missing.
 *
 * @example
 * ```ts ignore
 * import { listAddresses } from "./address.ts";
 * for (const a of listAddresses("vbr0")) console.log(a.cidr);
 * ```
 */
export function listAddresses(link?: string): AddressInfo[] {
  const only = link === undefined
    ? undefined
    : requireIndex(link, "list addresses", "link", "link");
  return perform({ op: "list", subject: "addresses" }, (sock) => {
    const names = new Map<number, string>();
    for (const m of sock.dump(writeIfInfoMsg(new MessageBuilder(RTM_GETLINK), {}))) {
      if (m.type !== RTM_NEWLINK) continue;
      const l = readIfInfoMsg(m.payload);
      names.set(l.index, attrString(l.attrs, IFLA_IFNAME) ?? "");
    }
    const request = writeIfAddrMsg(new MessageBuilder(RTM_GETADDR), {
      family: AF_UNSPEC,
      prefixLength: 0,
      flags: 0,
      scope: 0,
      index: 0,
    });
    const out: AddressInfo[] = [];
    for (const m of sock.dump(request)) {
      if (m.type !== RTM_NEWADDR) continue;
      const a = readIfAddrMsg(m.payload);
      if (only !== undefined && a.index !== only) continue;
      if (a.family !== AF_INET && a.family !== AF_INET6) continue;
      const address = formatAddress(a.family, a.attrs.get(IFA_LOCAL) ?? a.attrs.get(IFA_ADDRESS));
      out.push({
        index: a.index,
        link: names.get(a.index) ?? "",
        family: a.family === AF_INET ? "inet" : "inet6",
        address,
        prefix: a.prefixLength,
        cidr: `${address}/${a.prefixLength}`,
        scope: scopeName(a.scope),
        label: attrString(a.attrs, IFA_LABEL),
      });
    }
    return out.sort((x, y) => (x.family === y.family ? 0 : x.family === "inet" ? -1 : 1));
  });
}
