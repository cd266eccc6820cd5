/**
 * A VM's network policy: what the guest may reach besides the internet, and who may reach it.
 * The host enforces it per tap (see README, "Network policy"); the default is
 * {@linkcode DEFAULT_NETWORK_POLICY}: egress to the internet through NAT, nothing else.
 *
 * - `egress`: `allow-internet` (public destinations; not private, shared, loopback, link-local,
 *   multicast or reserved blocks) or `deny` (only `allow_egress`).
 * - `allow_egress`: destinations outside the VM subnet allowed on top: a block, and optionally
 *   a protocol and a port.
 * - `allow_from`: VMs (or `deployment:<name>`: its replicas) that may open connections to this
 *   VM's ports — never to kestrel's.
 * - `allow_host_ports`: ports on the bridge's gateway address the guest may reach.
 *
 * Written with `zod/mini`: the plugin manifest (which kestrel parses) has a `network` section
 * with the same fields (no `allow_from`).
 *
 * @module
 */
import * as z from "zod/mini";

/** What the guest may reach outside its subnet by default. */
export const EgressMode = z.enum(["allow-internet", "deny"]);
/** One of {@linkcode EgressMode}'s values. */
export type EgressMode = z.infer<typeof EgressMode>;

const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const CIDR = new RegExp(`^${OCTET}(\\.${OCTET}){3}(/(3[0-2]|[12]?\\d))?$`);

/**
 * Whether an IPv4 block has no bits set past its prefix (`10.0.0.0/8` yes, `10.0.0.1/8` no).
 *
 * @example
 * ```ts
 * import { cidrIsNetwork } from "./network_policy.ts";
 * console.assert(cidrIsNetwork("10.0.0.0/8") && !cidrIsNetwork("10.0.0.1/8"));
 * console.assert(cidrIsNetwork("203.0.113.7"), "one address");
 * ```
 */
export function cidrIsNetwork(text: string): boolean {
  const [address, prefix = "32"] = text.split("/");
  const n = address!.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const bits = Number(prefix);
  return bits === 32 || n % 2 ** (32 - bits) === 0;
}

/** An IPv4 block (`198.51.100.0/24`) or one address (`203.0.113.7`, i.e. `/32`). */
export const Ipv4Cidr = z.string().check(
  z.regex(CIDR, "must be an IPv4 block like 198.51.100.0/24, or one address"),
  z.refine(cidrIsNetwork, "has host bits set; give the block's first address, e.g. 10.0.0.0/8"),
);

const Port = z.int().check(z.minimum(1), z.maximum(65535));
const Protocol = z.enum(["tcp", "udp"]);

/** A destination allowed on top of the egress mode. */
export const EgressRule = z.strictObject({
  cidr: Ipv4Cidr,
  /** Only this protocol (default: any; `tcp` when a port is given). */
  protocol: z.optional(Protocol),
  /** Only this destination port. */
  port: z.optional(Port),
});
/** One {@linkcode EgressRule}. */
export type EgressRule = z.infer<typeof EgressRule>;

/** A port on the gateway address the guest may reach. */
export const HostPortRule = z.strictObject({
  port: Port,
  protocol: z._default(Protocol, "tcp"),
});
/** One {@linkcode HostPortRule}. */
export type HostPortRule = z.infer<typeof HostPortRule>;

/**
 * A peer: a VM's name (the same rule as `VmName` in vm.ts), or `deployment:<name>` for every
 * replica of a deployment, now and later.
 */
const PeerName = z.string().check(
  z.regex(
    /^(deployment:)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    "must be a VM name (1-63 lowercase letters, digits or '-') or deployment:<name>",
  ),
);

/** The prefix of an `allow_from` entry naming a deployment. */
export const DEPLOYMENT_PEER = "deployment:";

const LIST_MAX = 64;
const list = <T extends z.core.SomeType>(item: T) => z.array(item).check(z.maxLength(LIST_MAX));

/** A VM's network policy (defaults applied): the `PUT …/network-policy` body and the record's. */
export const NetworkPolicy = z.strictObject({
  egress: z._default(EgressMode, "allow-internet"),
  allow_egress: z._default(list(EgressRule), []),
  allow_from: z._default(list(PeerName), []),
  allow_host_ports: z._default(list(HostPortRule), []),
});
/** A VM's network policy. */
export type NetworkPolicy = z.infer<typeof NetworkPolicy>;
/** What a client may send as a network policy (defaults optional). */
export type NetworkPolicyInput = z.input<typeof NetworkPolicy>;

/**
 * The policy fields of a create request: each one given replaces the plugin manifest's, the
 * rest come from the manifest, then the defaults.
 */
export const NetworkPolicyFields = z.strictObject({
  egress: z.optional(EgressMode),
  allow_egress: z.optional(list(EgressRule)),
  allow_from: z.optional(list(PeerName)),
  allow_host_ports: z.optional(list(HostPortRule)),
});
/** The policy fields of a create request. */
export type NetworkPolicyFields = z.infer<typeof NetworkPolicyFields>;

/** The policy a VM gets when nobody asks for another. */
export const DEFAULT_NETWORK_POLICY: NetworkPolicy = {
  egress: "allow-internet",
  allow_egress: [],
  allow_from: [],
  allow_host_ports: [],
};

/**
 * A VM's policy from its create request's fields and its plugin manifest's `network` section:
 * field by field, the request, else the manifest, else the default. An egress rule with a port
 * and no protocol gets `tcp`.
 *
 * @example
 * ```ts
 * import { mergeNetworkPolicy } from "./network_policy.ts";
 * const p = mergeNetworkPolicy(
 *   { allow_from: ["web"] },
 *   { egress: "deny", allow_egress: [{ cidr: "198.51.100.0/24", port: 443 }] },
 * );
 * console.assert(p.egress === "deny" && p.allow_from[0] === "web");
 * console.assert(p.allow_egress[0]?.protocol === "tcp");
 * ```
 */
export function mergeNetworkPolicy(
  request: NetworkPolicyFields | undefined,
  manifest: Partial<NetworkPolicyFields> | undefined,
): NetworkPolicy {
  const pick = <K extends keyof NetworkPolicy>(key: K): NetworkPolicy[K] =>
    (request?.[key] ?? manifest?.[key] ?? DEFAULT_NETWORK_POLICY[key]) as NetworkPolicy[K];
  return normalizeNetworkPolicy({
    egress: pick("egress"),
    allow_egress: pick("allow_egress"),
    allow_from: pick("allow_from"),
    allow_host_ports: pick("allow_host_ports"),
  });
}

/**
 * The policy as stored and shown: egress rules with a port name their protocol (`tcp` when not
 * given), duplicates dropped, keeping the first of each.
 *
 * @example
 * ```ts
 * import { normalizeNetworkPolicy } from "./network_policy.ts";
 * const p = normalizeNetworkPolicy({
 *   egress: "deny", allow_egress: [{ cidr: "10.0.0.0/8", port: 53 }], allow_from: ["a", "a"],
 *   allow_host_ports: [],
 * });
 * console.assert(p.allow_egress[0]?.protocol === "tcp" && p.allow_from.length === 1);
 * ```
 */
export function normalizeNetworkPolicy(policy: NetworkPolicy): NetworkPolicy {
  const unique = <T>(items: T[]): T[] => {
    const seen = new Set<string>();
    return items.filter((item) => {
      const key = JSON.stringify(item);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  };
  return {
    egress: policy.egress,
    allow_egress: unique(policy.allow_egress.map((r) => ({
      cidr: r.cidr,
      ...(r.protocol !== undefined || r.port !== undefined
        ? { protocol: r.protocol ?? "tcp" }
        : {}),
      ...(r.port !== undefined ? { port: r.port } : {}),
    }))),
    allow_from: unique([...policy.allow_from]),
    allow_host_ports: unique(policy.allow_host_ports.map((p) => ({ ...p }))),
  };
}
