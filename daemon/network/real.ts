/**
 * The real {@linkcode HostNetwork}: bridge, forwarding and NAT through `net/host_network.ts`,
 * taps through netlink and `/dev/net/tun` (`net/`), port forwards and listening sockets through
 * `net/nft.ts`, the guests' network policies through `net/nft_policy.ts`. volantd runs inside its own namespace already, so it leaves `netns` unset;
 * tests pass the namespace they created.
 *
 * @module
 */
import { createTap, deleteTap, listLinks, setLinkUp, setMaster, withNetns } from "../../net/mod.ts";
import { prepareHostNetwork } from "../../net/host_network.ts";
import { portInUse, setPortForwards } from "../../net/nft.ts";
import { deleteEndpointPolicies, setEndpointPolicies } from "../../net/nft_policy.ts";
import { TAP_PREFIX } from "../../net/names.ts";
import { VolantError } from "../../schema/mod.ts";
import { setSysctl } from "../../net/sysctl.ts";
import { kestrelHealth } from "../kestrel/client.ts";
import { probeTcp } from "./tcp_probe.ts";
import type { Forward, HostNetwork } from "./host_network.ts";

/** How often the host repeats an unanswered ARP request on the bridge (kernel default 1000). */
export const ARP_RETRANS_MS = 100;

/** Options of {@linkcode netHostNetwork}: the config's `network` section. */
export interface NetHostNetworkOptions {
  /** Bridge the taps attach to. */
  bridge: string;
  /** The VMs' subnet (CIDR). */
  subnet: string;
  /** The host's address on the bridge. */
  gateway: string;
  /** Masquerade guest traffic leaving the subnet. */
  nat: boolean;
  /**
   * Enforce the guests' network policies (`network.isolation`); default true. Off: `prepare`
   * removes the policy tables and `setPolicies` does nothing.
   */
  isolation?: boolean;
  /** A named namespace to act in (tests); default the current one. */
  netns?: string;
}

/**
 * The host network over `net/`.
 *
 * @example
 * ```ts ignore
 * import { netHostNetwork } from "./real.ts";
 * const net = netHostNetwork({ bridge: "vbr0", subnet: "192.168.127.0/24",
 *   gateway: "192.168.127.1", nat: true });
 * await net.prepare();
 * await net.createTap("vt-web");
 * ```
 */
export function netHostNetwork(options: NetHostNetworkOptions): HostNetwork {
  const { bridge, subnet, gateway, netns } = options;
  const isolation = options.isolation ?? true;
  const inNs = <T>(fn: () => T): T =>
    netns === undefined ? fn() : withNetns(netns, fn as () => never) as T;
  return {
    description: `bridge ${bridge} in ${
      netns === undefined ? "the current network namespace" : `namespace ${netns}`
    }`,
    async prepare() {
      const result = await prepareHostNetwork({ ...options });
      // Probe a booting guest's address every 100 ms instead of every second: readiness is the
      // first answer from kestrel, and until the guest is up the host's ARP requests go unanswered.
      const key = `net.ipv4.neigh.${bridge.replaceAll(".", "/")}.retrans_time_ms`;
      if (setSysctl(key, String(ARP_RETRANS_MS), { netns })) {
        result.changes.push(`set ${key} to ${ARP_RETRANS_MS}`);
      }
      // With isolation the VM service installs the policies (reconciliation); without, none stay.
      if (!isolation) await deleteEndpointPolicies({ bridge, netns });
      return result;
    },
    // deno-lint-ignore require-await
    async createTap(name, owner) {
      inNs(() => {
        createTap(name, owner === undefined ? {} : { owner: owner.uid, group: owner.gid });
        try {
          setMaster(name, bridge);
          setLinkUp(name);
        } catch (err) {
          deleteTap(name, { missingOk: true });
          throw err;
        }
      });
    },
    // deno-lint-ignore require-await
    deleteTap: async (name) => inNs(() => deleteTap(name, { missingOk: true })),
    // deno-lint-ignore require-await
    listTaps: async (prefix) =>
      inNs(() =>
        listLinks().filter((l) => l.kind === "tun" && l.name.startsWith(prefix))
          .map((l) => l.name).sort()
      ),
    setForwards: (forwards: readonly Forward[]) =>
      setPortForwards(forwards, { bridge, subnet, netns }),
    setPolicies: async (endpoints) => {
      if (!isolation) return;
      try {
        await setEndpointPolicies(endpoints, {
          bridge,
          subnet,
          gateway,
          guardPrefix: TAP_PREFIX,
          netns,
        });
      } catch (err) {
        if (!(err instanceof VolantError) || err.code !== "network_error") throw err;
        throw new VolantError(
          "network_error",
          `${err.message} (volantd enforces the VMs' network policies with nftables tables of ` +
            "the families bridge and ip; network.isolation: false in the daemon config turns " +
            "them off)",
          err.details,
          { cause: err },
        );
      }
    },
    portInUse: (port, protocol) => portInUse(port, protocol, { netns }),
    probeAgent: (target, probe) => kestrelHealth(target, probe),
    probeTcp: (ip, port, probe) => probeTcp(ip, port, probe),
  };
}
