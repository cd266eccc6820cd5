/**
 * The address pool from the config's `network` section, validated with errors that name the
 * config key (`network.bridge`, `network.subnet`, `network.gateway`, `network.range_start`,
 * `network.range_end`); IPv6 is refused with a clear message.
 *
 * @module
 */
import { type DaemonConfig, VolantError } from "../../schema/mod.ts";
import { cidrContains, definePool, parseCidr, parseIpv4, type Pool } from "../../net/mod.ts";
import { validateHostNetwork } from "../../net/host_network.ts";

/** The config's `network` section. */
export type NetworkConfig = DaemonConfig["network"];

function rangeBound(
  key: "range_start" | "range_end",
  value: string,
  subnet: string,
): number {
  const field = `network.${key}`;
  if (value.includes(":")) {
    throw new VolantError(
      "invalid_argument",
      `${field}: ${JSON.stringify(value)} is IPv6; IPv6 pools are not supported yet`,
      { field, value },
    );
  }
  const ip = parseIpv4(value, field);
  if (!cidrContains(parseCidr(subnet), ip)) {
    throw new VolantError(
      "invalid_argument",
      `${field}: ${value} is outside network.subnet ${subnet}`,
      { field, value },
    );
  }
  return ip;
}

/**
 * Validates the network config and returns the pool VMs are leased from. Errors are
 * `invalid_argument` naming the key.
 *
 * @example
 * ```ts
 * import { poolFromConfig } from "./pool.ts";
 * const pool = poolFromConfig({
 *   namespace: null, bridge: "vbr0", subnet: "10.9.0.0/24", gateway: "10.9.0.1",
 *   range_start: "10.9.0.100", range_end: null, nat: true, isolation: true,
 * });
 * console.assert(pool.subnet.prefix === 24);
 * ```
 */
export function poolFromConfig(network: NetworkConfig): Pool {
  const { subnet } = validateHostNetwork({
    bridge: network.bridge,
    subnet: network.subnet,
    gateway: network.gateway,
  });
  const start = network.range_start === null
    ? undefined
    : rangeBound("range_start", network.range_start, subnet);
  const end = network.range_end === null
    ? undefined
    : rangeBound("range_end", network.range_end, subnet);
  if (start !== undefined && end !== undefined && start > end) {
    throw new VolantError(
      "invalid_argument",
      `network.range_start: ${network.range_start} is after network.range_end ` +
        `${network.range_end}`,
      { field: "network.range_start", value: network.range_start },
    );
  }
  const pool = definePool(
    {
      subnet,
      gateway: network.gateway,
      ...(network.range_start === null ? {} : { rangeStart: network.range_start }),
      ...(network.range_end === null ? {} : { rangeEnd: network.range_end }),
    },
    "network",
  );
  return pool;
}
