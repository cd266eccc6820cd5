/**
 * Preparing the host's side of the VM network, idempotently: the bridge with the gateway
 * address, up; IPv4 forwarding; and the NAT for the subnet. Used by volantd at start-up
 * (inside its namespace) and by `volar setup` (in a named namespace when given).
 *
 * It first plans (reads links, addresses, the sysctl and the nft table), then acts: invalid
 * input or a missing `nft` fails before anything changes, and `dryRun` only plans.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { definePool } from "./ipam.ts";
import { formatCidr, formatIpv4, networkOf, overlaps, parseIpv4 } from "./ipv4.ts";
import { validateIfName } from "./names.ts";
import { NETNS_RUN_DIR, withNetns } from "./netns.ts";
import { ensureAddress, listAddresses } from "./netlink/address.ts";
import { ensureBridge } from "./netlink/create_link.ts";
import { getLink, setLinkUp } from "./netlink/link.ts";
import { ensureNat } from "./nft.ts";
import { getSysctl, setSysctl } from "./sysctl.ts";

/** What {@linkcode prepareHostNetwork} sets up (the config's `network` section). */
export interface HostNetworkOptions {
  /** The bridge the VMs' taps attach to (`network.bridge`), at most 15 characters. */
  bridge: string;
  /** The VMs' IPv4 subnet (`network.subnet`), e.g. `192.168.127.0/24`. */
  subnet: string;
  /** The host's address on the bridge (`network.gateway`), inside the subnet. */
  gateway: string;
  /** Masquerade the subnet's traffic leaving through other interfaces (`network.nat`). */
  nat: boolean;
  /** A named network namespace to work in; default the current one. */
  netns?: string;
  /** Only report what would change; change nothing. */
  dryRun?: boolean;
}

/** What {@linkcode prepareHostNetwork} did (or, with `dryRun`, would do). */
export interface HostNetworkResult {
  /** One human line per change, e.g. `created bridge vbr0`; empty when nothing changed. */
  changes: string[];
}

const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const IP_FORWARD = "net.ipv4.ip_forward";

/**
 * Throws `invalid_argument` naming `field` unless `name` can name a network namespace
 * (`ip netns`): 1-64 letters, digits, `.`, `_` or `-`, not starting with a punctuation mark.
 * Returns `name`.
 *
 * @example
 * ```ts
 * import { validateNetnsName } from "./host_network.ts";
 * validateNetnsName("volant", "network.namespace");
 * try {
 *   validateNetnsName("a/b", "--netns");
 * } catch (err) {
 *   console.assert((err as Error).message.startsWith("--netns:"));
 * }
 * ```
 */
export function validateNetnsName(name: string, field: string): string {
  if (!NETNS_NAME.test(name)) {
    throw new VolantError(
      "invalid_argument",
      `${field}: ${JSON.stringify(name)} is not a network namespace name; use 1-64 letters, ` +
        "digits, '.', '_' or '-', starting with a letter or digit",
      { field, value: name },
    );
  }
  return name;
}

/**
 * Whether named network namespace `name` exists (`/run/netns/<name>`).
 *
 * @example
 * ```ts ignore
 * import { netnsExists } from "./host_network.ts";
 * if (!netnsExists("volant")) console.log("ip netns add volant");
 * ```
 */
export function netnsExists(name: string): boolean {
  validateNetnsName(name, "netns");
  try {
    Deno.statSync(`${NETNS_RUN_DIR}/${name}`);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * Validates the network settings without touching the system: the bridge name, the subnet,
 * and the gateway (inside the subnet, neither its network nor its broadcast address). Errors
 * are `invalid_argument` naming the config key (`network.bridge`, `network.subnet`,
 * `network.gateway`, `network.namespace`). Returns the subnet in canonical form and the
 * gateway's interface address.
 *
 * @example
 * ```ts
 * import { validateHostNetwork } from "./host_network.ts";
 * const net = validateHostNetwork({ bridge: "vbr0", subnet: "10.9.0.0/24", gateway: "10.9.0.1" });
 * console.assert(net.gatewayCidr === "10.9.0.1/24" && net.subnet === "10.9.0.0/24");
 * ```
 */
export function validateHostNetwork(
  opts: Pick<HostNetworkOptions, "bridge" | "subnet" | "gateway" | "netns">,
): { subnet: string; gatewayCidr: string } {
  validateIfName(opts.bridge, "network.bridge");
  const pool = definePool({ subnet: opts.subnet, gateway: opts.gateway }, "network");
  if (opts.netns !== undefined) validateNetnsName(opts.netns, "network.namespace");
  return {
    subnet: formatCidr(pool.subnet),
    gatewayCidr: `${formatIpv4(pool.gateway)}/${pool.subnet.prefix}`,
  };
}

interface LinkPlan {
  create: boolean;
  address: boolean;
  up: boolean;
}

/** Reads the bridge's state (in the current namespace) and checks the subnet is free. */
function planLinks(bridge: string, subnet: string, gatewayCidr: string): LinkPlan {
  const link = getLink(bridge);
  if (link !== undefined && link.kind !== "bridge") {
    throw new VolantError(
      "invalid_argument",
      `network.bridge: link ${bridge} exists but is ${
        link.kind === undefined ? "not a bridge" : `a ${link.kind}, not a bridge`
      }; delete it or choose another bridge name`,
      { field: "network.bridge", value: bridge, kind: link.kind },
    );
  }
  for (const a of listAddresses()) {
    if (a.family !== "inet" || a.link === bridge) continue;
    if (overlaps(networkOf(parseIpv4(a.address), a.prefix), subnet)) {
      throw new VolantError(
        "invalid_argument",
        `network.subnet: ${subnet} overlaps ${a.cidr} on ${a.link}; choose a subnet no other ` +
          "interface uses",
        { field: "network.subnet", value: subnet, link: a.link, address: a.cidr },
      );
    }
  }
  const hasGateway = link !== undefined &&
    listAddresses(bridge).some((a) => a.family === "inet" && a.cidr === gatewayCidr);
  return { create: link === undefined, address: !hasGateway, up: !link?.up };
}

function inNetns<T>(netns: string | undefined, fn: () => T): T {
  return netns === undefined ? fn() : withNetns(netns, fn as () => never) as T;
}

/** Whether NAT would change; a missing nft means "no rules to remove" when NAT is off. */
async function planNat(opts: HostNetworkOptions, subnet: string): Promise<boolean> {
  const nat = { subnet, bridge: opts.bridge, enabled: opts.nat, netns: opts.netns };
  try {
    return await ensureNat({ ...nat, dryRun: true });
  } catch (err) {
    const missing = err instanceof VolantError && err.details?.command === "nft";
    if (missing && !opts.nat) return false;
    throw err;
  }
}

/**
 * Makes the bridge exist with the gateway address and be up, turns on IPv4 forwarding, and
 * adds (or, with `nat: false`, removes) the NAT, each only when needed; returns a line per
 * change. With `dryRun` it changes nothing and returns what it would do (`would create bridge
 * vbr0`, …), also for a `netns` that does not exist yet. Without `dryRun`, a missing `netns`
 * is a `not_found` error.
 *
 * @example
 * ```ts ignore
 * import { prepareHostNetwork } from "./host_network.ts";
 * const { changes } = await prepareHostNetwork({
 *   bridge: "vbr0",
 *   subnet: "192.168.127.0/24",
 *   gateway: "192.168.127.1",
 *   nat: true,
 * });
 * for (const line of changes) console.log(line); // "created bridge vbr0", …
 * ```
 */
export async function prepareHostNetwork(opts: HostNetworkOptions): Promise<HostNetworkResult> {
  const { subnet, gatewayCidr } = validateHostNetwork(opts);
  const { bridge, netns, dryRun = false } = opts;
  const say = (done: string, planned: string) => dryRun ? `would ${planned}` : done;

  if (netns !== undefined && !netnsExists(netns)) {
    if (!dryRun) {
      throw new VolantError(
        "not_found",
        `network namespace ${netns} does not exist; create it with \`ip netns add ${netns}\``,
        { netns },
      );
    }
    return {
      changes: [
        say("", `create bridge ${bridge}`),
        say("", `add ${gatewayCidr} to ${bridge}`),
        say("", `set ${bridge} up`),
        say("", `enable ${IP_FORWARD}`),
        ...(opts.nat ? [say("", `add NAT for ${subnet}`)] : []),
      ],
    };
  }

  // Plan: read everything first, so bad input or a missing tool changes nothing.
  const links = inNetns(netns, () => planLinks(bridge, subnet, gatewayCidr));
  const forward = getSysctl(IP_FORWARD, { netns }) !== "1";
  const nat = await planNat(opts, subnet);

  const changes: string[] = [];
  if (links.create) changes.push(say(`created bridge ${bridge}`, `create bridge ${bridge}`));
  if (links.address) {
    changes.push(say(`added ${gatewayCidr} to ${bridge}`, `add ${gatewayCidr} to ${bridge}`));
  }
  if (links.up) changes.push(say(`set ${bridge} up`, `set ${bridge} up`));
  if (forward) changes.push(say(`enabled ${IP_FORWARD}`, `enable ${IP_FORWARD}`));
  if (nat) {
    const verb = opts.nat ? ["added", "add"] : ["removed", "remove"];
    changes.push(say(`${verb[0]} NAT for ${subnet}`, `${verb[1]} NAT for ${subnet}`));
  }
  if (dryRun) return { changes };

  inNetns(netns, () => {
    if (links.create) ensureBridge(bridge);
    if (links.address) ensureAddress(bridge, gatewayCidr);
    if (links.up) setLinkUp(bridge);
  });
  if (forward) setSysctl(IP_FORWARD, "1", { netns });
  if (nat) await ensureNat({ subnet, bridge, enabled: opts.nat, netns });
  return { changes };
}
