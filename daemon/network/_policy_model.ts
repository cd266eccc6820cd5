/**
 * What the endpoint policies `net/nft_policy.ts` installs let through, decided in memory: the
 * fake host network's model of the rules (private to this folder), so the VM service's tests
 * can ask "may VM a reach VM b's port 80?" without root. Mirrors the nft rules: connections
 * opened by the host always pass; a guest reaches the gateway only on its host ports, other
 * guests only where their `allowFrom` names it (never on a closed port), and the outside
 * through its allow-list, then the internet when its egress allows it.
 *
 * @module
 */
import {
  cidrContains,
  type EndpointPolicy,
  NOT_INTERNET,
  parseCidr,
  parseIpv4,
} from "../../net/mod.ts";

/** The network the model judges in. */
export interface ModelNetwork {
  /** The guests' subnet. */
  subnet: string;
  /** The host's address on the bridge. */
  gateway: string;
}

function within(block: string, address: string): boolean {
  const cidr = parseCidr(block.includes("/") ? block : `${block}/32`);
  return cidrContains(cidr, parseIpv4(address));
}

/**
 * Whether a connection from `from` to `to`:`port`/`protocol` would be let through by
 * `endpoints` (the policies last set).
 *
 * @example
 * ```ts
 * import { policyAllows } from "./_policy_model.ts";
 * const ok = policyAllows([], { subnet: "10.9.0.0/24", gateway: "10.9.0.1" }, {
 *   from: "10.9.0.1", to: "10.9.0.2", port: 80, protocol: "tcp",
 * });
 * console.assert(ok, "the host reaches every guest");
 * ```
 */
export function policyAllows(
  endpoints: readonly EndpointPolicy[],
  net: ModelNetwork,
  c: { from: string; to: string; port: number; protocol: "tcp" | "udp" },
): boolean {
  const src = endpoints.find((e) => e.address === c.from);
  const dst = endpoints.find((e) => e.address === c.to);
  const inbound = (e: EndpointPolicy) =>
    e.allowFrom.includes(c.from) &&
    !e.closedPorts.some((p) => p.port === c.port && p.protocol === c.protocol);
  if (src === undefined) {
    // The host (or anything the rules do not own): only its way in to a guest is judged.
    return c.from === net.gateway || dst === undefined || inbound(dst);
  }
  if (c.to === net.gateway) {
    return src.hostPorts.some((p) => p.port === c.port && p.protocol === c.protocol);
  }
  if (within(net.subnet, c.to)) return dst !== undefined && inbound(dst);
  const listed = src.allowEgress.some((r) =>
    within(r.cidr, c.to) &&
    (r.protocol === undefined || r.protocol === c.protocol) &&
    (r.port === undefined || r.port === c.port)
  );
  if (listed) return true;
  return src.egress === "allow-internet" && !NOT_INTERNET.some((b) => within(b, c.to));
}
