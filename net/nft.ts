/**
 * NAT and port forwards with nftables, through the `nft` command: changes are `nft -f -`
 * scripts applied as one atomic transaction, state is read back with `nft -j list`.
 *
 * Everything lives in table `ip volant` ({@linkcode NFT_TABLE}), in chains with one owner each:
 * {@linkcode ensureNat} owns `nat_postrouting` and `nat_forward`, {@linkcode setPortForwards}
 * owns `pf_prerouting`, `pf_output`, `pf_postrouting` and `pf_forward`, so neither ever
 * touches the other's rules. A group's chains are deleted when it has no rules, and the table
 * when no chain is left. Knows nothing of VMs: a forward's `owner` is just its rule comment.
 *
 * With `netns`, nft runs as `ip netns exec <netns> nft …`; without it, in the current network
 * namespace (volantd runs inside its own).
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { cidrContains, formatCidr, parseCidr, parseIpv4 } from "./ipv4.ts";
import { validateIfName } from "./names.ts";
import { withNetns } from "./netns.ts";
import { readDnat } from "./_nft_json.ts";
import { apply, nft, readTable } from "./_nft_exec.ts";
import {
  forwardRules,
  groupMatches,
  groupScript,
  NAT_CHAINS,
  natRules,
  PF_CHAINS,
  type RuleDef,
  TABLE,
} from "./_nft_rules.ts";

/** The nftables table Volant owns (family `ip`). */
export const NFT_TABLE: typeof TABLE = TABLE;

/** One forwarded host port. */
export interface PortForward {
  /** The port on the host's addresses (1-65535). */
  hostPort: number;
  /** The guest address behind the bridge (inside the subnet). */
  guestIp: string;
  /** The port in the guest (1-65535). */
  guestPort: number;
  /** `tcp` or `udp`. */
  protocol: "tcp" | "udp";
  /** Who the forward belongs to (a VM name), kept as the rules' comment. */
  owner: string;
}

/** Where nft runs. */
export interface NftOptions {
  /** A named network namespace (`ip netns`); default the current namespace. */
  netns?: string;
}

const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
// deno-lint-ignore no-control-regex
const OWNER = /^[^"\\\x00-\x1f\x7f]{1,100}$/;

function netnsOf(options: NftOptions | undefined): string | undefined {
  const ns = options?.netns;
  if (ns !== undefined && !NETNS_NAME.test(ns)) {
    throw new VolantError(
      "invalid_argument",
      `netns: ${JSON.stringify(ns)} is not a namespace name (letters, digits, '.', '_', '-')`,
      { field: "netns", value: ns },
    );
  }
  return ns;
}

/**
 * Whether an nft that works is here: `nft list tables` succeeds (binary present, kernel
 * support, enough privilege), in `netns` when given.
 *
 * @example
 * ```ts ignore
 * import { nftAvailable } from "./nft.ts";
 * if (!(await nftAvailable())) console.log("apt-get install nftables");
 * ```
 */
export async function nftAvailable(options?: NftOptions): Promise<boolean> {
  try {
    return (await nft(["list", "tables"], netnsOf(options))).ok;
  } catch (err) {
    if (err instanceof VolantError && err.code === "network_error") return false;
    throw err;
  }
}

/**
 * Masquerades traffic from `subnet` leaving through an interface other than `bridge`, and
 * accepts forwarding to and from the bridge; `enabled: false` removes those rules. Idempotent:
 * returns whether it changed anything (with `dryRun`, whether it would, changing nothing).
 *
 * @example
 * ```ts ignore
 * import { ensureNat } from "./nft.ts";
 * await ensureNat({ subnet: "192.168.127.0/24", bridge: "vbr0", enabled: true }); // true
 * await ensureNat({ subnet: "192.168.127.0/24", bridge: "vbr0", enabled: true }); // false
 * ```
 */
export async function ensureNat(
  opts: { subnet: string; bridge: string; enabled: boolean; dryRun?: boolean } & NftOptions,
): Promise<boolean> {
  const subnet = formatCidr(parseCidr(opts.subnet, "subnet"));
  const bridge = validateIfName(opts.bridge, "bridge");
  const netns = netnsOf(opts);
  const state = await readTable(NFT_TABLE, netns);
  const rules = opts.enabled ? natRules(subnet, bridge) : new Map<string, RuleDef[]>();
  if (groupMatches(state, NAT_CHAINS, rules)) return false;
  if (opts.dryRun) return true;
  await apply(
    groupScript(state, NAT_CHAINS, rules),
    `${opts.enabled ? "add" : "remove"} NAT for ${subnet}`,
    netns,
  );
  return true;
}

function checkPort(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new VolantError("invalid_argument", `${field}: ${value} is not a port (1-65535)`, {
      field,
      value,
    });
  }
}

function checkForwards(forwards: readonly PortForward[], subnet: string): void {
  const cidr = parseCidr(subnet, "subnet");
  const seen = new Map<string, string>();
  forwards.forEach((f, i) => {
    const field = `forwards[${i}]`;
    checkPort(f.hostPort, `${field}.hostPort`);
    checkPort(f.guestPort, `${field}.guestPort`);
    if (f.protocol !== "tcp" && f.protocol !== "udp") {
      throw new VolantError(
        "invalid_argument",
        `${field}.protocol: ${JSON.stringify(f.protocol)} is not tcp or udp`,
        { field: `${field}.protocol`, value: f.protocol },
      );
    }
    if (!cidrContains(cidr, parseIpv4(f.guestIp, `${field}.guestIp`))) {
      throw new VolantError(
        "invalid_argument",
        `${field}.guestIp: ${f.guestIp} is outside the subnet ${subnet}`,
        { field: `${field}.guestIp`, value: f.guestIp },
      );
    }
    if (!OWNER.test(f.owner)) {
      throw new VolantError(
        "invalid_argument",
        `${field}.owner: ${JSON.stringify(f.owner)} must be 1-100 characters without quotes, ` +
          "backslashes or control characters",
        { field: `${field}.owner`, value: f.owner },
      );
    }
    const key = `${f.hostPort}/${f.protocol}`;
    const other = seen.get(key);
    if (other !== undefined) {
      throw new VolantError(
        "invalid_argument",
        `host port ${key} is forwarded twice (for ${other} and ${f.owner}); a host port can ` +
          "reach only one guest",
        { field: `${field}.hostPort`, value: f.hostPort, owners: [other, f.owner] },
      );
    }
    seen.set(key, f.owner);
  });
}

/**
 * Makes the port-forward rules exactly `forwards`, in one atomic nft transaction: DNAT in
 * prerouting for traffic arriving from outside, DNAT in output for traffic the host sends to
 * one of its own (non-loopback) addresses, accept in forward, and masquerade for the hairpin
 * and host-originated cases. An empty list removes the port-forward chains.
 *
 * @example
 * ```ts ignore
 * import { setPortForwards } from "./nft.ts";
 * await setPortForwards(
 *   [{ hostPort: 8080, guestIp: "192.168.127.2", guestPort: 80, protocol: "tcp", owner: "web" }],
 *   { bridge: "vbr0", subnet: "192.168.127.0/24" },
 * );
 * ```
 */
export async function setPortForwards(
  forwards: readonly PortForward[],
  opts: { bridge: string; subnet: string } & NftOptions,
): Promise<void> {
  const subnet = formatCidr(parseCidr(opts.subnet, "subnet"));
  const bridge = validateIfName(opts.bridge, "bridge");
  const netns = netnsOf(opts);
  checkForwards(forwards, subnet);
  const state = await readTable(NFT_TABLE, netns);
  const rules = forwardRules(forwards, bridge, subnet);
  if (groupMatches(state, PF_CHAINS, rules)) return;
  const script = groupScript(state, PF_CHAINS, rules);
  if (script !== "") await apply(script, `set ${forwards.length} port forward(s)`, netns);
}

/**
 * The port forwards in place, read from the kernel (order of the rules).
 *
 * @example
 * ```ts ignore
 * import { listPortForwards } from "./nft.ts";
 * for (const f of await listPortForwards()) console.log(f.hostPort, "→", f.owner);
 * ```
 */
export async function listPortForwards(options?: NftOptions): Promise<PortForward[]> {
  const state = await readTable(NFT_TABLE, netnsOf(options));
  const forwards: PortForward[] = [];
  for (const rule of state?.get("pf_prerouting")?.rules ?? []) {
    const dnat = readDnat(rule.expr);
    if (dnat === undefined) continue;
    forwards.push({
      hostPort: dnat.port,
      guestIp: dnat.toAddr,
      guestPort: dnat.toPort,
      protocol: dnat.protocol,
      owner: rule.comment ?? "",
    });
  }
  return forwards;
}

/**
 * Deletes table `ip volant` with all its chains (NAT and port forwards); nothing when absent.
 *
 * @example
 * ```ts ignore
 * import { deleteNftTable } from "./nft.ts";
 * await deleteNftTable({ netns: "volant" });
 * ```
 */
export async function deleteNftTable(options?: NftOptions): Promise<void> {
  const netns = netnsOf(options);
  if (await readTable(NFT_TABLE, netns) === undefined) return;
  await apply(`delete table ip ${NFT_TABLE}\n`, `delete table ip ${NFT_TABLE}`, netns);
}

const TCP_LISTEN = "0A";

function socketsOn(text: string, port: number, listenOnly: boolean): boolean {
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    if (local === undefined || fields[3] === undefined) continue;
    const hexPort = local.slice(local.lastIndexOf(":") + 1);
    if (parseInt(hexPort, 16) !== port) continue;
    if (!listenOnly || fields[3] === TCP_LISTEN) return true;
  }
  return false;
}

/**
 * Whether a socket in this network namespace (or `netns`) listens on `port`: a TCP socket in
 * LISTEN state, or any bound UDP socket, IPv4 or IPv6 (`/proc/net/{tcp,tcp6,udp,udp6}`).
 *
 * @example
 * ```ts ignore
 * import { portInUse } from "./nft.ts";
 * if (await portInUse(8080, "tcp")) console.log("8080 is taken");
 * ```
 */
export async function portInUse(
  port: number,
  protocol: "tcp" | "udp",
  options?: NftOptions,
): Promise<boolean> {
  checkPort(port, "port");
  const netns = netnsOf(options);
  const read = (): boolean =>
    [protocol, `${protocol}6`].some((file) => {
      let text: string;
      try {
        text = Deno.readTextFileSync(`/proc/thread-self/net/${file}`);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return false; // e.g. IPv6 disabled
        throw err;
      }
      return socketsOn(text, port, protocol === "tcp");
    });
  return await Promise.resolve(netns === undefined ? read() : withNetns(netns, read));
}
