/**
 * volantd's view of the host network: the {@linkcode HostNetwork} seam (real over `net/`,
 * fake in memory), kestrel's `/healthz` probe, and the address pool from the config.
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
export { parseHttpResponse, probeAgent } from "./agent_probe.ts";
export { type NetworkConfig, poolFromConfig } from "./pool.ts";
