/**
 * IPv4 routes in the main table over rtnetlink: add, delete and list (`ip route`). kestrel
 * uses this for the guest's default route.
 *
 * @module
 */
import { formatCidr, formatIpv4, parseCidr, parseIpv4 } from "../ipv4.ts";
import { VolantError } from "../../schema/error.ts";
import {
  AF_INET,
  IFLA_IFNAME,
  NLM_F_CREATE,
  NLM_F_EXCL,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTM_DELROUTE,
  RTM_GETLINK,
  RTM_GETROUTE,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTN_UNICAST,
  RTN_UNSPEC,
  RTPROT_BOOT,
  RTPROT_UNSPEC,
} from "./_constants.ts";
import {
  attrString,
  attrU32,
  MessageBuilder,
  readIfInfoMsg,
  readRtMsg,
  writeIfInfoMsg,
  writeRtMsg,
} from "./_message.ts";
import { perform, requireIndex } from "./_op.ts";

/** A route to add or delete. */
export interface RouteSpec {
  /** `"default"` or an IPv4 CIDR block without host bits (`10.1.0.0/16`). */
  dst: string;
  /** Next hop; omit for a route straight onto `dev`. */
  gateway?: string;
  /** Outgoing link; required when there is no gateway. */
  dev?: string;
  /** Route metric (`ip route … metric N`). */
  metric?: number;
}

/** A route in the main table, as the kernel reports it. */
export interface RouteInfo {
  /** `"default"` or `a.b.c.d/len`. */
  dst: string;
  /** Next hop, if any. */
  gateway: string | undefined;
  /** Outgoing link name, if any. */
  dev: string | undefined;
  /** Preferred source address, if any. */
  src: string | undefined;
  /** Metric, if set. */
  metric: number | undefined;
  /** Who installed it: `"kernel"`, `"boot"`, `"static"` or the raw number. */
  protocol: string;
  /** `"global"`, `"link"`, `"host"` or the raw number. */
  scope: string;
}

function u32be(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

function be32(b: Uint8Array | undefined): number | undefined {
  return b === undefined || b.length < 4
    ? undefined
    : ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

function describe(spec: RouteSpec): string {
  return spec.dst + (spec.gateway === undefined ? "" : ` via ${spec.gateway}`) +
    (spec.dev === undefined ? "" : ` dev ${spec.dev}`) +
    (spec.metric === undefined ? "" : ` metric ${spec.metric}`);
}

function routeRequest(type: number, flags: number, spec: RouteSpec): MessageBuilder {
  const op = type === RTM_NEWROUTE ? "add route" : "delete route";
  const dst = spec.dst === "default" ? { network: 0, prefix: 0 } : parseCidr(spec.dst, "dst");
  const gateway = spec.gateway === undefined ? undefined : parseIpv4(spec.gateway, "gateway");
  if (type === RTM_NEWROUTE && gateway === undefined && spec.dev === undefined) {
    throw new VolantError(
      "invalid_argument",
      `route ${describe(spec)}: give a gateway, a dev, or both`,
      { field: "gateway" },
    );
  }
  const oif = spec.dev === undefined ? undefined : requireIndex(spec.dev, op, "link", "dev");
  const adding = type === RTM_NEWROUTE;
  const b = writeRtMsg(new MessageBuilder(type, flags), {
    family: AF_INET,
    dstLength: dst.prefix,
    srcLength: 0,
    tos: 0,
    table: RT_TABLE_MAIN,
    protocol: adding ? RTPROT_BOOT : RTPROT_UNSPEC,
    scope: adding ? (gateway === undefined ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE) : RT_SCOPE_NOWHERE,
    type: adding ? RTN_UNICAST : RTN_UNSPEC,
    flags: 0,
  }).attrU32(RTA_TABLE, RT_TABLE_MAIN);
  if (dst.prefix > 0) b.attr(RTA_DST, u32be(dst.network));
  if (gateway !== undefined) b.attr(RTA_GATEWAY, u32be(gateway));
  if (oif !== undefined) b.attrU32(RTA_OIF, oif);
  if (spec.metric !== undefined) b.attrU32(RTA_PRIORITY, spec.metric);
  return b;
}

/**
 * Adds an IPv4 route to the main table (`ip route add`). Throws `EEXIST` when it exists,
 * `ENETUNREACH` when the gateway is not on any connected subnet (add the address and bring
 * the link up first), `ENODEV` when `dev` is missing.
 *
 * @example
 * ```ts ignore
 * import { addRoute } from "./route.ts";
 * addRoute({ dst: "default", gateway: "192.168.127.1", dev: "eth0" });
 * ```
 */
export function addRoute(spec: RouteSpec): void {
  const request = routeRequest(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, spec);
  const what = describe(spec);
  perform({
    op: "add route",
    subject: what,
    ...(spec.dev === undefined ? {} : { link: spec.dev }),
    phrases: {
      EEXIST: `route ${what} already exists`,
      ENETUNREACH:
        `gateway ${spec.gateway} of route ${what} is not reachable: no connected subnet ` +
        "covers it (add an address on the link and bring it up first)",
    },
    details: { route: { ...spec } },
  }, (sock) => sock.request(request));
}

/**
 * Deletes an IPv4 route from the main table (`ip route del`); only the fields given must
 * match. Throws `ESRCH: route … does not exist` when nothing matches.
 *
 * @example
 * ```ts ignore
 * import { deleteRoute } from "./route.ts";
 * deleteRoute({ dst: "default" });
 * ```
 */
export function deleteRoute(spec: RouteSpec): void {
  const request = routeRequest(RTM_DELROUTE, 0, spec);
  const what = describe(spec);
  perform({
    op: "delete route",
    subject: what,
    ...(spec.dev === undefined ? {} : { link: spec.dev }),
    phrases: { ESRCH: `route ${what} does not exist` },
    details: { route: { ...spec } },
  }, (sock) => sock.request(request));
}

const PROTOCOLS: Record<number, string> = { 2: "kernel", 3: "boot", 4: "static" };
const SCOPES: Record<number, string> = { 0: "global", 253: "link", 254: "host" };

/**
 * The IPv4 unicast routes of the main table (`ip route show`).
 *
 * @example
 * ```ts ignore
 * import { listRoutes } from "./route.ts";
 * const gw = listRoutes().find((r) => r.dst === "default")?.gateway;
 * ```
 */
export function listRoutes(): RouteInfo[] {
  return perform({ op: "list", subject: "routes" }, (sock) => {
    const names = new Map<number, string>();
    for (const m of sock.dump(writeIfInfoMsg(new MessageBuilder(RTM_GETLINK), {}))) {
      if (m.type !== RTM_NEWLINK) continue;
      const l = readIfInfoMsg(m.payload);
      names.set(l.index, attrString(l.attrs, IFLA_IFNAME) ?? "");
    }
    const request = writeRtMsg(new MessageBuilder(RTM_GETROUTE), {
      family: AF_INET,
      dstLength: 0,
      srcLength: 0,
      tos: 0,
      table: 0,
      protocol: 0,
      scope: 0,
      type: 0,
      flags: 0,
    });
    const out: RouteInfo[] = [];
    for (const m of sock.dump(request)) {
      if (m.type !== RTM_NEWROUTE) continue;
      const r = readRtMsg(m.payload);
      const table = attrU32(r.attrs, RTA_TABLE) ?? r.table;
      if (table !== RT_TABLE_MAIN || r.type !== RTN_UNICAST) continue;
      const dst = be32(r.attrs.get(RTA_DST));
      const gateway = be32(r.attrs.get(RTA_GATEWAY));
      const src = be32(r.attrs.get(RTA_PREFSRC));
      const oif = attrU32(r.attrs, RTA_OIF);
      out.push({
        dst: r.dstLength === 0 ? "default" : formatCidr({ network: dst ?? 0, prefix: r.dstLength }),
        gateway: gateway === undefined ? undefined : formatIpv4(gateway),
        dev: oif === undefined ? undefined : names.get(oif),
        src: src === undefined ? undefined : formatIpv4(src),
        metric: attrU32(r.attrs, RTA_PRIORITY),
        protocol: PROTOCOLS[r.protocol] ?? String(r.protocol),
        scope: SCOPES[r.scope] ?? String(r.scope),
      });
    }
    return out;
  });
}
