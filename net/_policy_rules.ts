/**
 * The nft script of the endpoint policies (see `nft_policy.ts`): two tables, `bridge
 * volant_policy` (anti-spoofing per bridge port, no frames between ports) and `ip volant_policy`
 * (what each endpoint may reach through the host, keyed by its anti-spoofed address), rewritten
 * as a whole in one transaction. Pure: validated input in, script text out. Internal to
 * `nft_policy.ts`.
 *
 * @module
 */
import { type Cidr, cidrContains, formatCidr, parseCidr } from "./ipv4.ts";

/** Both tables' name (families `bridge` and `ip`). */
export const POLICY_TABLE = "volant_policy";

/**
 * Destinations that are not "the internet" for an endpoint whose egress is `allow-internet`:
 * this network, private (RFC 1918), shared (carrier-grade NAT, RFC 6598), loopback,
 * link-local (cloud metadata at 169.254.169.254), multicast, and reserved + broadcast.
 */
export const NOT_INTERNET: readonly string[] = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "224.0.0.0/4",
  "240.0.0.0/4",
];

/**
 * The packet mark bit set on IPv4 packets from the bridge in the ip stack's prerouting: a
 * bridged frame carrying it was (by br_netfilter) and will be judged by the ip table's forward
 * chain. One bit, OR-ed in, so other users of packet marks keep theirs.
 */
export const BRIDGED_MARK = "0x10000000";

/** A port and its protocol. */
export interface PortRule {
  port: number;
  protocol: "tcp" | "udp";
}

/** One allowed egress destination: a block, and optionally a protocol and a port. */
export interface EgressAllow {
  /** CIDR block (no host bits). */
  cidr: string;
  /** Only this protocol (any port when `port` is absent); default: any protocol. */
  protocol?: "tcp" | "udp";
  /** Only this destination port (needs `protocol`). */
  port?: number;
}

/** What one endpoint (a bridge port with its MAC and IPv4 address) may send and receive. */
export interface EndpointPolicy {
  /** Who the rules belong to (a VM name), kept as their comments. */
  owner: string;
  /** The bridge port (a tap) the endpoint's frames arrive on. */
  link: string;
  /** The only source MAC the endpoint may use (Ethernet and ARP). */
  mac: string;
  /** The only source IPv4 address the endpoint may use (IP and ARP). */
  address: string;
  /**
   * `allow-internet`: destinations outside {@linkcode NOT_INTERNET} and the subnet are
   * allowed (through the host's NAT); `deny`: only {@linkcode EndpointPolicy.allowEgress}.
   */
  egress: "allow-internet" | "deny";
  /** Destinations allowed on top of `egress` (outside the subnet). */
  allowEgress: readonly EgressAllow[];
  /** Addresses of other endpoints that may open connections to this one's ports. */
  allowFrom: readonly string[];
  /** Ports of this endpoint no other endpoint may reach, even one in `allowFrom`. */
  closedPorts: readonly PortRule[];
  /** Ports on the gateway address this endpoint may reach (nothing else on the host). */
  hostPorts: readonly PortRule[];
}

/** Where the endpoints are: the bridge, its subnet and the host's address on it. */
export interface PolicyNetwork {
  /** The bridge the endpoints' links are ports of. */
  bridge: string;
  /** The endpoints' subnet (canonical CIDR). */
  subnet: string;
  /** The host's address on the bridge. */
  gateway: string;
  /** Ports whose name starts with this and that have no policy send nothing (e.g. `vt-`). */
  guardPrefix?: string;
}

function q(text: string): string {
  return `"${text}"`;
}

function set(items: readonly (string | number)[]): string {
  return items.length === 1 ? String(items[0]) : `{ ${items.join(", ")} }`;
}

/** {@linkcode NOT_INTERNET} plus the subnet when none of them covers it. */
export function notInternet(subnet: string): string[] {
  const own: Cidr = parseCidr(subnet, "subnet");
  const covered = NOT_INTERNET.some((block) => {
    const c = parseCidr(block);
    return c.prefix <= own.prefix && cidrContains(c, own.network);
  });
  return covered ? [...NOT_INTERNET] : [...NOT_INTERNET, formatCidr(own)];
}

function ports(rules: readonly PortRule[], protocol: "tcp" | "udp"): number[] {
  return [...new Set(rules.filter((r) => r.protocol === protocol).map((r) => r.port))]
    .sort((a, b) => a - b);
}

function egressRule(rule: EgressAllow): string {
  let match = `ip daddr ${rule.cidr}`;
  if (rule.protocol !== undefined) {
    match += rule.port === undefined
      ? ` meta l4proto ${rule.protocol}`
      : ` ${rule.protocol} dport ${rule.port}`;
  }
  return `${match} accept`;
}

/** The chains of endpoint `i` in the bridge table: anti-spoofing. */
function bridgeChain(p: EndpointPolicy, i: number): string[] {
  const chain = `add chain bridge ${POLICY_TABLE} ep_${i}`;
  const rule = (text: string) => `add rule bridge ${POLICY_TABLE} ep_${i} ${text}`;
  return [
    `${chain} { comment ${q(p.owner)}; }`,
    // The owner's name on the first rule too: `nft -j` lists rule comments, not chain ones.
    rule(`ether saddr != ${p.mac} drop comment ${q(p.owner)}`),
    rule(`ether type arp arp htype != 1 drop`),
    rule(`ether type arp arp hlen != 6 drop`),
    rule(`ether type arp arp plen != 4 drop`),
    rule(`ether type arp arp saddr ether != ${p.mac} drop`),
    rule(`ether type arp arp saddr ip != ${p.address} drop`),
    rule(`ether type arp accept`),
    rule(`ether type ip ip saddr != ${p.address} drop`),
    rule(`ether type ip accept`),
    rule("drop"),
  ];
}

/** The chains of endpoint `i` in the ip table: its egress, its ingress, the host. */
function ipChains(p: EndpointPolicy, i: number, net: PolicyNetwork): string[] {
  const T = `ip ${POLICY_TABLE}`;
  const out: string[] = [];
  const chain = (name: string, what: string) =>
    out.push(`add chain ${T} ${name}_${i} { comment ${q(`${what} ${p.owner}`)}; }`);
  const rule = (name: string, text: string) => out.push(`add rule ${T} ${name}_${i} ${text}`);

  chain("out", "traffic from");
  // Other endpoints: the destination's ingress decides.
  rule("out", `ip daddr ${net.subnet} ip daddr vmap @to_endpoint`);
  rule("out", `ip daddr ${net.subnet} drop`);
  for (const allow of p.allowEgress) rule("out", egressRule(allow));
  if (p.egress === "allow-internet") {
    rule("out", "ip daddr @not_internet drop");
    rule("out", "accept");
  } else {
    rule("out", "drop");
  }

  chain("in", "traffic to");
  // Published ports (DNAT by the host) are open to whoever reaches the host's port.
  rule("in", "ct status dnat accept");
  if (p.allowFrom.length > 0) {
    const from = `ip saddr ${set([...p.allowFrom].sort())}`;
    const tcp = ports(p.closedPorts, "tcp");
    const udp = ports(p.closedPorts, "udp");
    rule(
      "in",
      `${from} ${tcp.length === 0 ? "meta l4proto tcp" : `tcp dport != ${set(tcp)}`} accept`,
    );
    rule(
      "in",
      `${from} ${udp.length === 0 ? "meta l4proto udp" : `udp dport != ${set(udp)}`} accept`,
    );
    rule("in", `${from} icmp type echo-request accept`);
  }
  rule("in", "drop");

  chain("host", "host services for");
  for (const protocol of ["tcp", "udp"] as const) {
    const open = ports(p.hostPorts, protocol);
    if (open.length > 0) {
      rule("host", `ip daddr ${net.gateway} ${protocol} dport ${set(open)} accept`);
    }
  }
  rule("host", "drop");
  return out;
}

function addElements(kind: string, name: string, entries: string[]): string[] {
  return entries.length === 0 ? [] : [`add element ${kind} ${name} { ${entries.join(", ")} }`];
}

/**
 * The script that replaces both tables with the rules of `policies` (validated, sorted by
 * link): one `nft -f` transaction. An empty list still installs the tables, so a guarded port
 * without a policy sends nothing.
 */
export function policyScript(policies: readonly EndpointPolicy[], net: PolicyNetwork): string {
  const B = `bridge ${POLICY_TABLE}`;
  const T = `ip ${POLICY_TABLE}`;
  const bridge = q(net.bridge);
  const guard = net.guardPrefix === undefined ? undefined : q(`${net.guardPrefix}*`);
  const lines: string[] = [
    // Replace whatever is there: create (a no-op when it exists), delete, create again.
    `add table ${B}`,
    `delete table ${B}`,
    `add table ${T}`,
    `delete table ${T}`,

    `add table ${B}`,
    `add map ${B} endpoints { type ifname : verdict; }`,
    `add set ${B} links { type ifname; }`,
    ...policies.flatMap((p, i) => bridgeChain(p, i)),
    ...addElements(B, "endpoints", policies.map((p, i) => `${q(p.link)} : jump ep_${i}`)),
    ...addElements(B, "links", policies.map((p) => q(p.link))),
    `add chain ${B} prerouting { type filter hook prerouting priority -200; policy accept; }`,
    `add rule ${B} prerouting iifname vmap @endpoints`,
    ...(guard === undefined ? [] : [
      `add rule ${B} prerouting iifname ${guard} drop comment ${
        q("a guarded port without a policy")
      }`,
    ]),
    `add chain ${B} forward { type filter hook forward priority -200; policy accept; }`,
    // Where br_netfilter passes bridged IPv4 through the ip hooks (it bridges a DNATed packet
    // whose new destination is on the same bridge), the ip table's forward chain judges it.
    `add rule ${B} forward meta mark & ${BRIDGED_MARK} == ${BRIDGED_MARK} accept`,
    // No other frames between ports: endpoints reach each other only through the host (proxy
    // ARP), where the ip table's rules apply.
    `add rule ${B} forward iifname @links drop`,
    `add rule ${B} forward oifname @links drop`,
    ...(guard === undefined ? [] : [
      `add rule ${B} forward iifname ${guard} drop`,
      `add rule ${B} forward oifname ${guard} drop`,
    ]),

    `add table ${T}`,
    `add set ${T} not_internet { type ipv4_addr; flags interval; }`,
    ...addElements(T, "not_internet", notInternet(net.subnet)),
    `add map ${T} from_endpoint { type ipv4_addr : verdict; }`,
    `add map ${T} to_endpoint { type ipv4_addr : verdict; }`,
    `add map ${T} to_host { type ipv4_addr : verdict; }`,
    ...policies.flatMap((p, i) => ipChains(p, i, net)),
    ...addElements(T, "from_endpoint", policies.map((p, i) => `${p.address} : jump out_${i}`)),
    ...addElements(T, "to_endpoint", policies.map((p, i) => `${p.address} : jump in_${i}`)),
    ...addElements(T, "to_host", policies.map((p, i) => `${p.address} : jump host_${i}`)),
    // Packets from the bridge that went through the ip stack (br_netfilter included): see the
    // bridge forward chain.
    `add chain ${T} prerouting { type filter hook prerouting priority -300; policy accept; }`,
    `add rule ${T} prerouting iifname ${bridge} meta mark set meta mark | ${BRIDGED_MARK}`,
    `add chain ${T} forward { type filter hook forward priority -10; policy accept; }`,
    `add rule ${T} forward ct state related accept`,
    // Replies of connections allowed when they were opened; the opening side's packets are
    // judged again at every packet, so a narrowed policy also stops established connections.
    `add rule ${T} forward ct direction reply accept`,
    `add rule ${T} forward iifname ${bridge} ip saddr vmap @from_endpoint`,
    `add rule ${T} forward oifname ${bridge} ip daddr vmap @to_endpoint`,
    `add chain ${T} input { type filter hook input priority -10; policy accept; }`,
    `add rule ${T} input iifname != ${bridge} accept`,
    `add rule ${T} input ct state related accept`,
    `add rule ${T} input ct direction reply accept`,
    `add rule ${T} input ip saddr vmap @to_host`,
    `add chain ${T} output { type filter hook output priority -10; policy accept; }`,
    // Endpoint-to-endpoint traffic leaves the bridge it came in on: no redirects.
    `add rule ${T} output oifname ${bridge} icmp type redirect drop`,
  ];
  return lines.join("\n") + "\n";
}

/** The script that removes both tables (nothing when they are absent). */
export function deletePolicyScript(): string {
  return [
    `add table bridge ${POLICY_TABLE}`,
    `delete table bridge ${POLICY_TABLE}`,
    `add table ip ${POLICY_TABLE}`,
    `delete table ip ${POLICY_TABLE}`,
  ].join("\n") + "\n";
}
