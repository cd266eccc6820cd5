/**
 * Networking primitives for Volant, usable on the host (bridge and taps) and inside the guest
 * (eth0's address and default route), with nothing but glibc and Deno: rtnetlink and TUN/TAP
 * over FFI, network namespaces, an IPv4 allocator, interface names and MAC addresses. Knows
 * nothing of VMs, storage or plugins.
 *
 * ```ts ignore
 * import { createTap, ensureBridge, macFor, nextFree, setLink, setLinkUp, tapNameFor } from "./mod.ts";
 * ensureBridge("vbr0");
 * setLinkUp("vbr0");
 * const ip = nextFree({ subnet: "192.168.127.0/24", gateway: "192.168.127.1" }, ["192.168.127.2"]);
 * const tap = tapNameFor("web");
 * createTap(tap);
 * setLink(tap, { master: "vbr0", up: true });
 * console.log(ip, macFor("web"));
 * ```
 *
 * @module
 */
export * from "./netlink/mod.ts";
export { createTap, deleteTap, ensureTap, type TapOptions } from "./tap.ts";
export { IFNAME_MAX, TAP_PREFIX, tapNameFor, validateIfName } from "./names.ts";
export { formatMac, isUnicastMac, macFor, parseMac } from "./mac.ts";
export {
  broadcastOf,
  type Cidr,
  cidrContains,
  formatCidr,
  formatIpv4,
  type InterfaceAddress,
  netmask,
  networkOf,
  overlaps,
  parseCidr,
  parseInterfaceAddress,
  parseIpv4,
} from "./ipv4.ts";
export {
  checkRequested,
  definePool,
  nextFree,
  type Pool,
  poolExhausted,
  poolSize,
  type PoolSpec,
  reservedAddresses,
} from "./ipam.ts";
export { currentNetns, NETNS_RUN_DIR, withNetns } from "./netns.ts";
export { describeErrno, errnoName, errnoText } from "./errno.ts";
export { getSysctl, setSysctl, type SysctlOptions, sysctlPath } from "./sysctl.ts";
export {
  deleteNftTable,
  ensureNat,
  listPortForwards,
  NFT_TABLE,
  nftAvailable,
  type NftOptions,
  type PortForward,
  portInUse,
  setPortForwards,
} from "./nft.ts";
export {
  deleteEndpointPolicies,
  type EgressAllow,
  type EndpointInPlace,
  type EndpointPolicy,
  endpointPolicyScript,
  listEndpointPolicies,
  NOT_INTERNET,
  POLICY_TABLE,
  type PolicyNetwork,
  type PortRule,
  setEndpointPolicies,
} from "./nft_policy.ts";
export {
  type HostNetworkOptions,
  type HostNetworkResult,
  netnsExists,
  prepareHostNetwork,
  validateHostNetwork,
  validateNetnsName,
} from "./host_network.ts";
