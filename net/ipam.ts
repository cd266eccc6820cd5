/**
 * Static IPv4 allocation from a pool. Pure: no I/O — the caller passes the addresses already
 * leased (from its database) and records the one returned.
 *
 * Addresses are handed out in NUMERIC order (…9, .10, .11, … .99, .100), never in text order.
 * The network address, the broadcast address and the gateway are never handed out.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import {
  broadcastOf,
  type Cidr,
  cidrContains,
  formatCidr,
  formatIpv4,
  parseCidr,
  parseIpv4,
} from "./ipv4.ts";

/** A pool as written in configuration. */
export interface PoolSpec {
  /** The subnet, e.g. `192.168.127.0/24` (no host bits). */
  subnet: string;
  /** The host's address on the bridge, inside the subnet, e.g. `192.168.127.1`. */
  gateway: string;
  /** First address to hand out (default: network + 1). */
  rangeStart?: string;
  /** Last address to hand out (default: broadcast - 1). */
  rangeEnd?: string;
}

/** A validated pool (see {@linkcode definePool}). */
export interface Pool {
  /** The subnet. */
  readonly subnet: Cidr;
  /** The gateway address. */
  readonly gateway: number;
  /** First address of the allocation range. */
  readonly first: number;
  /** Last address of the allocation range. */
  readonly last: number;
  /** A one-line description for messages, e.g. `192.168.127.0/24 range .2-.254`. */
  readonly description: string;
}

/**
 * Validates a pool spec: an IPv4 subnet of prefix ≤ 30 without host bits, a gateway inside it
 * that is neither its network nor its broadcast address, and an optional range inside it with
 * start ≤ end. Errors are `invalid_argument` and name the field (`<field>.gateway`, …); IPv6
 * input says `IPv6 pools are not supported yet`.
 *
 * @example
 * ```ts
 * import { definePool } from "./ipam.ts";
 * const pool = definePool({ subnet: "192.168.127.0/24", gateway: "192.168.127.1" });
 * console.assert(pool.subnet.prefix === 24);
 * ```
 */
export function definePool(spec: PoolSpec, field = "pool"): Pool {
  for (const [key, value] of Object.entries(spec)) {
    if (typeof value === "string" && value.includes(":")) {
      throw new VolantError(
        "invalid_argument",
        `${field}.${key}: ${JSON.stringify(value)} is IPv6; IPv6 pools are not supported yet`,
        { field: `${field}.${key}`, value },
      );
    }
  }
  const subnet = parseCidr(spec.subnet, `${field}.subnet`);
  const cidr = formatCidr(subnet);
  if (subnet.prefix > 30) {
    throw new VolantError(
      "invalid_argument",
      `${field}.subnet: ${cidr} is too small; use a prefix of 30 or less so it holds a ` +
        "gateway and at least one VM",
      { field: `${field}.subnet`, value: spec.subnet },
    );
  }
  const network = subnet.network;
  const broadcast = broadcastOf(subnet);
  const inside = (key: string, text: string): number => {
    const ip = parseIpv4(text, `${field}.${key}`);
    if (!cidrContains(subnet, ip)) {
      throw new VolantError(
        "invalid_argument",
        `${field}.${key}: ${text} is outside the subnet ${cidr}`,
        { field: `${field}.${key}`, value: text },
      );
    }
    return ip;
  };
  const gateway = inside("gateway", spec.gateway);
  if (gateway === network || gateway === broadcast) {
    throw new VolantError(
      "invalid_argument",
      `${field}.gateway: ${spec.gateway} is the ${gateway === network ? "network" : "broadcast"} ` +
        `address of ${cidr}; use a host address such as ${formatIpv4(network + 1)}`,
      { field: `${field}.gateway`, value: spec.gateway },
    );
  }
  const first = spec.rangeStart === undefined ? network + 1 : inside("rangeStart", spec.rangeStart);
  const last = spec.rangeEnd === undefined ? broadcast - 1 : inside("rangeEnd", spec.rangeEnd);
  if (first > last) {
    throw new VolantError(
      "invalid_argument",
      `${field}.rangeStart: ${formatIpv4(first)} is after rangeEnd ${formatIpv4(last)}`,
      { field: `${field}.rangeStart`, value: spec.rangeStart },
    );
  }
  const pool = { subnet, gateway, first, last, description: "" };
  const size = usable(pool);
  if (size === 0) {
    throw new VolantError(
      "invalid_argument",
      `${field}: the range ${formatIpv4(first)}-${formatIpv4(last)} holds no address besides ` +
        "the network, broadcast and gateway addresses",
      { field },
    );
  }
  pool.description = `${cidr} range ${formatIpv4(first)}-${formatIpv4(last)} ` +
    `gateway ${formatIpv4(gateway)}`;
  return Object.freeze(pool);
}

function toPool(pool: Pool | PoolSpec): Pool {
  return typeof pool.subnet === "string" ? definePool(pool as PoolSpec) : pool as Pool;
}

function reserved(pool: Pool): number[] {
  return [pool.subnet.network, broadcastOf(pool.subnet), pool.gateway];
}

function usable(pool: Pool): number {
  const inRange = reserved(pool).filter((ip) => ip >= pool.first && ip <= pool.last);
  return pool.last - pool.first + 1 - new Set(inRange).size;
}

/**
 * The addresses never handed out: network, broadcast and gateway.
 *
 * @example
 * ```ts
 * import { reservedAddresses } from "./ipam.ts";
 * const r = reservedAddresses({ subnet: "10.0.0.0/24", gateway: "10.0.0.1" });
 * console.assert(r.join() === "10.0.0.0,10.0.0.255,10.0.0.1");
 * ```
 */
export function reservedAddresses(pool: Pool | PoolSpec): string[] {
  return reserved(toPool(pool)).map(formatIpv4);
}

/**
 * How many addresses the pool can hand out (range size minus reserved addresses in it).
 *
 * @example
 * ```ts
 * import { poolSize } from "./ipam.ts";
 * console.assert(poolSize({ subnet: "10.0.0.0/24", gateway: "10.0.0.1" }) === 253);
 * ```
 */
export function poolSize(pool: Pool | PoolSpec): number {
  return usable(toPool(pool));
}

function takenSet(taken: Iterable<string | number>): Set<number> {
  const out = new Set<number>();
  for (const t of taken) out.add(typeof t === "number" ? t : parseIpv4(t, "taken"));
  return out;
}

/**
 * The lowest free address of the pool in numeric order, skipping reserved and `taken`
 * addresses (dotted strings or integers; entries outside the pool are ignored). Throws
 * `ip_pool_exhausted` naming the pool when nothing is free.
 *
 * @example
 * ```ts
 * import { nextFree } from "./ipam.ts";
 * const pool = { subnet: "10.0.0.0/24", gateway: "10.0.0.1" };
 * console.assert(nextFree(pool, ["10.0.0.2", "10.0.0.3"]) === "10.0.0.4");
 * ```
 */
export function nextFree(pool: Pool | PoolSpec, taken: Iterable<string | number>): string {
  const p = toPool(pool);
  // A Set of integers is used as it is (no copy: callers that keep one pay O(1) per lease).
  const first = taken instanceof Set ? taken.values().next() : undefined;
  const busy: ReadonlySet<string | number> =
    first && (first.done || typeof first.value === "number")
      ? taken as ReadonlySet<number>
      : takenSet(taken);
  const held = new Set(reserved(p));
  // At most |busy| + |reserved| + 1 steps: the loop stops at the first free address.
  for (let ip = p.first; ip <= p.last; ip++) {
    if (!busy.has(ip) && !held.has(ip)) return formatIpv4(ip);
  }
  throw poolExhausted(p);
}

/**
 * The `ip_pool_exhausted` error for `pool` (what {@linkcode nextFree} throws; allocators that
 * search elsewhere, such as volantd's SQL search, throw the same).
 *
 * @example
 * ```ts
 * import { poolExhausted } from "./ipam.ts";
 * const err = poolExhausted({ subnet: "10.0.0.0/30", gateway: "10.0.0.1" });
 * console.assert(err.code === "ip_pool_exhausted");
 * ```
 */
export function poolExhausted(pool: Pool | PoolSpec): VolantError {
  const p = toPool(pool);
  return new VolantError(
    "ip_pool_exhausted",
    `No free address left in pool ${p.description} (${usable(p)} addresses, all leased); ` +
      "delete a VM or widen the pool",
    { pool: p.description, size: usable(p) },
  );
}

/**
 * Checks that `ip` may be leased: inside the pool's range (else `invalid_argument`), not
 * reserved and not taken (else `ip_unavailable`). Returns it normalised.
 *
 * @example
 * ```ts
 * import { checkRequested } from "./ipam.ts";
 * const pool = { subnet: "10.0.0.0/24", gateway: "10.0.0.1" };
 * console.assert(checkRequested(pool, "10.0.0.50", ["10.0.0.2"]) === "10.0.0.50");
 * ```
 */
export function checkRequested(
  pool: Pool | PoolSpec,
  ip: string,
  taken: Iterable<string | number>,
): string {
  const p = toPool(pool);
  const n = parseIpv4(ip, "ip");
  if (n < p.first || n > p.last) {
    throw new VolantError(
      "invalid_argument",
      `ip: ${ip} is outside pool ${p.description}`,
      { field: "ip", value: ip, pool: p.description },
    );
  }
  const why = n === p.gateway
    ? "the gateway"
    : n === p.subnet.network
    ? "the network address"
    : n === broadcastOf(p.subnet)
    ? "the broadcast address"
    : takenSet(taken).has(n)
    ? "already leased"
    : undefined;
  if (why !== undefined) {
    throw new VolantError(
      "ip_unavailable",
      `ip: ${ip} is ${why} in pool ${p.description}; omit it to get the next free address`,
      { field: "ip", value: ip, pool: p.description },
    );
  }
  return formatIpv4(n);
}
