/**
 * The network part of a new identity: the NIC kestrel configured at boot takes the new MAC,
 * loses every IPv4 address it had, gets the new one, and the default route goes via the new
 * gateway. Everything goes through {@linkcode NetOps}, so tests use a fake.
 *
 * @module
 */
import { VolantError } from "../../schema/error.ts";
import type { ConfiguredNetwork, NetOps, NetworkPlan } from "../network.ts";

/** Whether `err` is a failed call with errno `name` (a `NetlinkError` or any `VolantError`). */
function hasErrno(err: unknown, name: string): boolean {
  return err instanceof VolantError && err.details?.errno === name;
}

/**
 * Sets `nic`'s MAC to `mac`: live (virtio-net allows it while up), or, when the driver answers
 * `EBUSY`, with the link down for the change and up again afterwards (even if it failed).
 *
 * @example
 * ```ts ignore
 * import { changeMac } from "./renumber.ts";
 * import { realNetOps } from "../network.ts";
 * changeMac(realNetOps(), "eth0", "52:54:00:00:00:02");
 * ```
 */
export function changeMac(ops: NetOps, nic: string, mac: string): void {
  try {
    ops.setMac(nic, mac);
    return;
  } catch (err) {
    if (!hasErrno(err, "EBUSY")) throw err;
  }
  ops.down(nic);
  try {
    ops.setMac(nic, mac);
  } finally {
    ops.up(nic);
  }
}

/**
 * Moves `current` (the network kestrel configured) to `plan`: the new MAC when the plan has one
 * that differs, every other IPv4 address removed, the plan's address added, the default route
 * replaced (removed when the plan has no gateway). Returns the network now configured. Throws
 * the failing operation's error; what was done before it stays done.
 *
 * @example
 * ```ts ignore
 * import { renumberNic } from "./renumber.ts";
 * import { planNetwork, realNetOps } from "../network.ts";
 * const next = renumberNic(realNetOps(), services.network!, planNetwork(message.network));
 * ```
 */
export function renumberNic(
  ops: NetOps,
  current: ConfiguredNetwork,
  plan: NetworkPlan,
): ConfiguredNetwork {
  const nic = current.nic;
  if (plan.mac !== undefined && plan.mac !== current.nicMac) changeMac(ops, nic, plan.mac);
  for (const cidr of ops.ipv4Addresses(nic)) {
    if (cidr !== plan.cidr) ops.deleteAddress(nic, cidr);
  }
  ops.addAddress(nic, plan.cidr);
  ops.replaceDefaultRoute(plan.gateway, nic);
  return { ...plan, nic, nicMac: plan.mac ?? current.nicMac };
}
