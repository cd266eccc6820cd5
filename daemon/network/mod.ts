/**
 * volantd's view of the host network: the {@linkcode HostNetwork} seam (real over `net/`,
 * fake in memory; its kestrel probe goes through `daemon/kestrel/`), the TCP probe of guests
 * without kestrel, and the address pool from the config.
 *
 * @module
 */
export type { AgentProbe, Forward, HostNetwork, ProbeOptions, TcpProbe } from "./host_network.ts";
export { ARP_RETRANS_MS, netHostNetwork, type NetHostNetworkOptions } from "./real.ts";
export {
  type FakeAgent,
  fakeGuestAgent,
  FakeHostNetwork,
  type FakeHostNetworkOptions,
  type FakeNetworkFailures,
} from "./fake.ts";
export { probeTcp } from "./tcp_probe.ts";
export { type NetworkConfig, poolFromConfig } from "./pool.ts";
