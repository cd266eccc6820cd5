/**
 * What each endpoint on the bridge (a port with its MAC and IPv4 address, e.g. a VM's tap) may
 * send, enforced with nftables on the host; see {@linkcode setEndpointPolicies}. Knows nothing
 * of VMs: an endpoint's `owner` is just the comment on its rules.
 *
 * Two tables named {@linkcode POLICY_TABLE}, rewritten as a whole in one `nft -f` transaction
 * (a change applies completely or not at all):
 *
 * - `bridge volant_policy` — `prerouting` sends each port's frames (`iifname` verdict map) to
 *   its chain `ep_N`: source MAC, ARP sender MAC and address, and IPv4 source address must be
 *   the endpoint's own, anything but IPv4 and ARP is dropped. Ports whose name starts with the
 *   guard prefix and have no policy send nothing. `forward` drops every frame between ports:
 *   endpoints never talk at layer 2. The host answers their ARP for one another (the bridge's
 *   `proxy_arp_pvlan`), so their traffic to each other is routed through it. One exception,
 *   where br_netfilter is active: it passes bridged IPv4 through the ip hooks and bridges a
 *   DNATed packet whose new destination is on the same bridge; such frames carry
 *   {@linkcode BRIDGED_MARK} (set in the ip table's `prerouting`) and are let through at layer 2
 *   because the ip table's `forward` chain judges them next.
 * - `ip volant_policy` — keyed by the (anti-spoofed) source or destination address through
 *   verdict maps: `forward` → `out_N` (what the endpoint may reach: other endpoints only as their
 *   `in_N` allows, then its allow-list, then the internet when `egress` is `allow-internet`, i.e.
 *   anything outside {@linkcode NOT_INTERNET}) and `in_N` (who may reach it: published ports
 *   (DNAT), and the endpoints of `allowFrom` on every port but the closed ones); `input` →
 *   `host_N` (only the listed ports on the gateway address; nothing else on the host); `output`
 *   drops ICMP redirects to the bridge. Replies (`ct direction reply`) and related ICMP pass; the
 *   opening side of a connection is judged at every packet, so a narrower policy also stops
 *   established connections. Host-initiated traffic (probes, proxies) is never filtered.
 *
 * With `netns`, nft runs as `ip netns exec <netns> nft …`.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { cidrContains, formatCidr, formatIpv4, parseCidr, parseIpv4 } from "./ipv4.ts";
import { formatMac, isUnicastMac, parseMac } from "./mac.ts";
import { validateIfName } from "./names.ts";
import { setSysctl } from "./sysctl.ts";
import { apply, nft, nftFailure } from "./_nft_exec.ts";
import {
  BRIDGED_MARK,
  deletePolicyScript,
  type EgressAllow,
  type EndpointPolicy,
  NOT_INTERNET,
  POLICY_TABLE,
  type PolicyNetwork,
  policyScript,
  type PortRule,
} from "./_policy_rules.ts";
import type { NftOptions } from "./nft.ts";

export {
  BRIDGED_MARK,
  type EgressAllow,
  type EndpointPolicy,
  NOT_INTERNET,
  POLICY_TABLE,
  type PolicyNetwork,
  type PortRule,
};

const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const LINK = /^[A-Za-z0-9_.-]{1,15}$/;
const PREFIX = /^[A-Za-z0-9_.-]{1,14}$/;
// deno-lint-ignore no-control-regex
const OWNER = /^[^"\\\x00-\x1f\x7f]{1,100}$/;

function invalid(field: string, value: unknown, why: string): VolantError {
  return new VolantError("invalid_argument", `${field}: ${JSON.stringify(value)} ${why}`, {
    field,
    value,
  });
}

function netnsOf(options: NftOptions | undefined): string | undefined {
  const ns = options?.netns;
  if (ns !== undefined && !NETNS_NAME.test(ns)) {
    throw invalid("netns", ns, "is not a namespace name (letters, digits, '.', '_', '-')");
  }
  return ns;
}

function checkPort(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw invalid(field, value, "is not a port (1-65535)");
  }
  return value;
}

function checkProtocol(value: string, field: string): "tcp" | "udp" {
  if (value !== "tcp" && value !== "udp") throw invalid(field, value, "is not tcp or udp");
  return value;
}

function checkPorts(rules: readonly PortRule[], field: string): PortRule[] {
  return rules.map((r, i) => ({
    port: checkPort(r.port, `${field}[${i}].port`),
    protocol: checkProtocol(r.protocol, `${field}[${i}].protocol`),
  }));
}

function checkEgress(rules: readonly EgressAllow[], field: string): EgressAllow[] {
  return rules.map((r, i) => {
    const f = `${field}[${i}]`;
    const rule: EgressAllow = { cidr: formatCidr(parseCidr(r.cidr, `${f}.cidr`)) };
    if (r.protocol !== undefined) rule.protocol = checkProtocol(r.protocol, `${f}.protocol`);
    if (r.port !== undefined) {
      if (r.protocol === undefined) throw invalid(`${f}.port`, r.port, "needs a protocol");
      rule.port = checkPort(r.port, `${f}.port`);
    }
    return rule;
  });
}

/** Validates the network; returns it with the subnet in canonical form. */
function checkNetwork(net: PolicyNetwork): PolicyNetwork {
  validateIfName(net.bridge, "bridge");
  if (!LINK.test(net.bridge)) throw invalid("bridge", net.bridge, "must be [A-Za-z0-9_.-]");
  const subnet = parseCidr(net.subnet, "subnet");
  const gateway = parseIpv4(net.gateway, "gateway");
  if (!cidrContains(subnet, gateway)) {
    throw invalid("gateway", net.gateway, `is outside the subnet ${formatCidr(subnet)}`);
  }
  if (net.guardPrefix !== undefined && !PREFIX.test(net.guardPrefix)) {
    throw invalid("guardPrefix", net.guardPrefix, "must be 1-14 of [A-Za-z0-9_.-]");
  }
  return { ...net, subnet: formatCidr(subnet), gateway: formatIpv4(gateway) };
}

/** Validates every policy (fields named `policies[i].…`); returns them sorted by link. */
function checkPolicies(
  policies: readonly EndpointPolicy[],
  net: PolicyNetwork,
): EndpointPolicy[] {
  const subnet = parseCidr(net.subnet);
  const seen = new Map<string, string>();
  const once = (key: string, field: string, value: string, owner: string) => {
    const other = seen.get(key);
    if (other !== undefined) {
      throw invalid(field, value, `is also the ${key.split("=")[0]} of ${other}`);
    }
    seen.set(key, owner);
  };
  const out = policies.map((p, i): EndpointPolicy => {
    const f = `policies[${i}]`;
    if (!OWNER.test(p.owner)) {
      throw invalid(
        `${f}.owner`,
        p.owner,
        "must be 1-100 characters without quotes, backslashes or control characters",
      );
    }
    if (!LINK.test(p.link)) throw invalid(`${f}.link`, p.link, "must be 1-15 of [A-Za-z0-9_.-]");
    const mac = formatMac(parseMac(p.mac, `${f}.mac`));
    if (!isUnicastMac(mac)) throw invalid(`${f}.mac`, p.mac, "is not a unicast MAC");
    const address = parseIpv4(p.address, `${f}.address`);
    if (!cidrContains(subnet, address) || formatIpv4(address) === net.gateway) {
      throw invalid(`${f}.address`, p.address, `is not an endpoint address of ${net.subnet}`);
    }
    if (p.egress !== "allow-internet" && p.egress !== "deny") {
      throw invalid(`${f}.egress`, p.egress, "is not allow-internet or deny");
    }
    once(`link=${p.link}`, `${f}.link`, p.link, p.owner);
    once(`address=${formatIpv4(address)}`, `${f}.address`, p.address, p.owner);
    once(`mac=${mac}`, `${f}.mac`, p.mac, p.owner);
    return {
      owner: p.owner,
      link: p.link,
      mac,
      address: formatIpv4(address),
      egress: p.egress,
      allowEgress: checkEgress(p.allowEgress, `${f}.allowEgress`),
      allowFrom: [
        ...new Set(p.allowFrom.map((a, j) => formatIpv4(parseIpv4(a, `${f}.allowFrom[${j}]`)))),
      ],
      closedPorts: checkPorts(p.closedPorts, `${f}.closedPorts`),
      hostPorts: checkPorts(p.hostPorts, `${f}.hostPorts`),
    };
  });
  return out.sort((a, b) => (a.link < b.link ? -1 : a.link > b.link ? 1 : 0));
}

/** Proxy ARP towards the port an ARP request came from: endpoints resolve each other to the host. */
function routeBetweenPorts(bridge: string, on: boolean, netns: string | undefined): void {
  const dev = bridge.replaceAll(".", "/");
  setSysctl(`net.ipv4.conf.${dev}.proxy_arp_pvlan`, on ? "1" : "0", { netns });
  // Answer at once instead of after a random delay of up to 0.8 s.
  setSysctl(`net.ipv4.neigh.${dev}.proxy_delay`, on ? "0" : "80", { netns });
}

/**
 * The nft script {@linkcode setEndpointPolicies} would apply (validated; changes nothing).
 *
 * @example
 * ```ts
 * import { endpointPolicyScript } from "./nft_policy.ts";
 * const script = endpointPolicyScript([{
 *   owner: "web", link: "vt-web", mac: "02:00:00:00:00:02", address: "10.9.0.2",
 *   egress: "deny", allowEgress: [{ cidr: "198.51.100.0/24", protocol: "tcp", port: 443 }],
 *   allowFrom: [], closedPorts: [], hostPorts: [],
 * }], { bridge: "vbr0", subnet: "10.9.0.0/24", gateway: "10.9.0.1" });
 * console.assert(script.includes("ip daddr 198.51.100.0/24 tcp dport 443 accept"));
 * ```
 */
export function endpointPolicyScript(
  policies: readonly EndpointPolicy[],
  network: PolicyNetwork,
): string {
  const net = checkNetwork(network);
  return policyScript(checkPolicies(policies, net), net);
}

/**
 * Makes the endpoint policies exactly `policies`: both tables are replaced in one atomic nft
 * transaction (on failure nothing changed), and proxy ARP towards the requesting port is on
 * for the bridge. An empty list keeps the tables (guarded ports without a policy stay mute);
 * {@linkcode deleteEndpointPolicies} removes them. Errors: `invalid_argument` naming the field
 * (`policies[1].allowEgress[0].cidr`, …), `network_error` with nft's message.
 *
 * @example
 * ```ts ignore
 * import { setEndpointPolicies } from "./nft_policy.ts";
 * await setEndpointPolicies([{
 *   owner: "web", link: "vt-web", mac: "02:00:00:00:00:02", address: "192.168.127.2",
 *   egress: "allow-internet", allowEgress: [], allowFrom: ["192.168.127.3"],
 *   closedPorts: [{ port: 12751, protocol: "tcp" }], hostPorts: [],
 * }], { bridge: "vbr0", subnet: "192.168.127.0/24", gateway: "192.168.127.1", guardPrefix: "vt-" });
 * ```
 */
export async function setEndpointPolicies(
  policies: readonly EndpointPolicy[],
  opts: PolicyNetwork & NftOptions,
): Promise<void> {
  const netns = netnsOf(opts);
  const { netns: _ns, ...network } = opts;
  const script = endpointPolicyScript(policies, network);
  routeBetweenPorts(network.bridge, true, netns);
  await apply(script, `set the policies of ${policies.length} endpoint(s)`, netns);
}

/**
 * Removes both policy tables (nothing when absent), and with `bridge` turns its proxy ARP
 * back off: the bridge forwards everything again.
 *
 * @example
 * ```ts ignore
 * import { deleteEndpointPolicies } from "./nft_policy.ts";
 * await deleteEndpointPolicies({ bridge: "vbr0", netns: "volant" });
 * ```
 */
export async function deleteEndpointPolicies(
  opts: { bridge?: string } & NftOptions = {},
): Promise<void> {
  const netns = netnsOf(opts);
  await apply(deletePolicyScript(), `delete the tables ${POLICY_TABLE}`, netns);
  if (opts.bridge !== undefined) {
    validateIfName(opts.bridge, "bridge");
    routeBetweenPorts(opts.bridge, false, netns);
  }
}

/** An endpoint with rules in place, as read back from the kernel. */
export interface EndpointInPlace {
  /** The rules' owner (their comment). */
  owner: string;
  /** Its bridge port. */
  link: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The endpoints that have rules in place (from table `bridge volant_policy`: its port map, and
 * the owner named by the comment of each port chain's first rule), ordered by link;
 * `undefined` when the table does not exist.
 *
 * @example
 * ```ts ignore
 * import { listEndpointPolicies } from "./nft_policy.ts";
 * for (const e of (await listEndpointPolicies()) ?? []) console.log(e.owner, e.link);
 * ```
 */
export async function listEndpointPolicies(
  options?: NftOptions,
): Promise<EndpointInPlace[] | undefined> {
  const netns = netnsOf(options);
  const result = await nft(["-j", "list", "table", "bridge", POLICY_TABLE], netns);
  if (!result.ok) {
    if (/No such file or directory/.test(result.stderr)) return undefined;
    throw nftFailure(`list table bridge ${POLICY_TABLE}`, result, netns);
  }
  const doc = JSON.parse(result.stdout) as unknown;
  const items = isObject(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
  const owners = new Map<string, string>();
  const links = new Map<string, string>();
  for (const item of items) {
    if (!isObject(item)) continue;
    const rule = item.rule;
    if (
      isObject(rule) && typeof rule.chain === "string" && typeof rule.comment === "string" &&
      !owners.has(rule.chain)
    ) owners.set(rule.chain, rule.comment);
    const map = item.map;
    if (isObject(map) && map.name === "endpoints" && Array.isArray(map.elem)) {
      for (const elem of map.elem) {
        if (!Array.isArray(elem) || typeof elem[0] !== "string" || !isObject(elem[1])) continue;
        const jump = elem[1].jump;
        if (isObject(jump) && typeof jump.target === "string") links.set(elem[0], jump.target);
      }
    }
  }
  return [...links].map(([link, chain]) => ({ owner: owners.get(chain) ?? "", link }))
    .sort((a, b) => (a.link < b.link ? -1 : a.link > b.link ? 1 : 0));
}
