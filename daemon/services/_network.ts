/**
 * The VM service's networking steps: address allocation (inside the caller's transaction),
 * re-leasing after crash reconciliation, checking and applying published ports, and what the
 * guest's NIC and boot config get. Leases and ports live with the VM (kept across stop and
 * start, freed on delete and by crash reconciliation); taps live with the VMM run.
 *
 * Port forwards: the rules are those of every VM that holds a lease, whether it runs or not,
 * so a published port stays reserved (and routed to the VM's address) for as long as the VM
 * exists; they are rewritten after every change and disappear with the VM.
 *
 * @module
 */
import { type PortMapping, VolantError } from "../../schema/mod.ts";
import {
  checkRequested,
  macFor,
  type Pool,
  poolExhausted,
  reservedAddresses,
} from "../../net/mod.ts";
import { formatIpv4, parseIpv4 } from "../../net/ipv4.ts";
import type { VmRow } from "../store/mod.ts";
import type { Forward } from "../network/mod.ts";
import type { VmRuntime } from "./_runtime.ts";
import { agentPort, refuseAgentPort } from "./_agent.ts";

/** The mutex key that serialises rewrites of the port forwards (never a VM name). */
const FORWARDS_KEY = "#forwards";

/** What the guest's NIC and kestrel's boot config get. */
export interface GuestNic {
  /** Host tap. */
  tap: string;
  /** Guest MAC. */
  mac: string;
  /** Guest address. */
  ip: string;
  /** Subnet prefix length. */
  prefix: number;
  /** Default gateway (the host's bridge address). */
  gateway: string;
}

/** The MAC of VM `name`: stable, locally administered, from the name. */
export function macOf(name: string): string {
  return macFor(name);
}

/**
 * Leases an address to the row `vmId` (the requested one, or the lowest free one) inside the
 * caller's transaction. Errors: `invalid_argument` (outside the pool), `ip_unavailable`
 * (reserved or leased), `ip_pool_exhausted`.
 */
export function leaseAddress(rt: VmRuntime, vmId: number, requested?: string): string {
  const holder = requested === undefined ? undefined : rt.leases.byAddress(requested);
  if (holder !== undefined) {
    throw new VolantError(
      "ip_unavailable",
      `ip: ${requested} is already leased to VM ${holder.vm}; omit it to get the next free ` +
        "address",
      { field: "ip", value: requested, owner: holder.vm },
    );
  }
  let ip: string;
  if (requested === undefined) {
    const reserved = new Set(reservedAddresses(rt.pool).map((a) => parseIpv4(a)));
    const free = rt.leases.lowestFree(rt.pool.first, rt.pool.last, reserved);
    if (free === null) throw poolExhausted(rt.pool);
    ip = formatIpv4(free);
  } else {
    // Leased by another VM was answered above; this checks the range and reserved addresses.
    ip = checkRequested(rt.pool, requested, []);
  }
  return rt.leases.add(vmId, ip).ip;
}

/** Whether `ip` lies in the pool's allocation range (a config change can move the pool). */
export function inPool(pool: Pool, ip: string): boolean {
  const n = parseIpv4(ip);
  return n >= pool.first && n <= pool.last;
}

/**
 * Makes sure VM `name` holds a lease in the pool before it launches: its last address when
 * that is free (and still in the pool), else the lowest free one; a lease left outside the pool
 * by a config change is replaced. Returns the row and whether it leased now.
 */
export function ensureLease(rt: VmRuntime, name: string): { row: VmRow; leased: boolean } {
  return rt.transaction(() => {
    let row = rt.store.get(name);
    if (!row) throw new VolantError("not_found", `VM ${name} does not exist`, { name });
    if (row.mac === null) rt.store.update(name, { mac: macOf(name) });
    if (row.ip !== null && inPool(rt.pool, row.ip)) {
      return { row: rt.store.get(name)!, leased: false };
    }
    if (row.ip !== null) {
      rt.logger.warn("lease outside the pool replaced", { vm: name, ip: row.ip });
      rt.leases.release(row.id);
      row = rt.store.get(name)!;
    }
    let ip: string | undefined;
    if (row.last_ip !== null) {
      try {
        ip = leaseAddress(rt, row.id, row.last_ip);
      } catch (err) {
        if (!(err instanceof VolantError)) throw err;
      }
    }
    ip ??= leaseAddress(rt, row.id);
    rt.logger.info("address leased", { vm: name, ip, previous: row.last_ip ?? undefined });
    return { row: rt.store.get(name)!, leased: true };
  });
}

/** Frees VM `name`'s lease (its `last_ip` stays for the next start); returns the address. */
export function freeLease(rt: VmRuntime, name: string): string | null {
  const row = rt.store.get(name);
  if (!row || row.ip === null) return null;
  const ip = rt.leases.release(row.id);
  rt.logger.info("address freed", { vm: name, ip: ip ?? undefined });
  return ip;
}

/** The NIC of a row that holds a lease. */
export function guestNic(rt: VmRuntime, row: VmRow, tap: string): GuestNic {
  if (row.ip === null) throw new VolantError("internal", `VM ${row.name} holds no lease`);
  return {
    tap,
    mac: row.mac ?? macOf(row.name),
    ip: row.ip,
    prefix: rt.pool.subnet.prefix,
    gateway: formatIpv4(rt.pool.gateway),
  };
}

/**
 * Refuses a `publish` list before anything is created: a host port twice in the list, already
 * published by a VM, or with a host socket listening on it. `already_exists` naming
 * `publish[i].host_port`.
 */
export async function checkPublish(rt: VmRuntime, publish: readonly PortMapping[]): Promise<void> {
  refuseAgentPort(publish, agentPort(rt)); // kestrel's port: invalid_argument naming guest_port
  for (const [i, port] of publish.entries()) {
    const field = `publish[${i}].host_port`;
    const where = `${port.host_port}/${port.protocol}`;
    const refuse = (why: string, extra: Record<string, unknown> = {}) =>
      new VolantError("already_exists", `${field}: host port ${where} ${why}; choose another`, {
        field,
        value: port.host_port,
        protocol: port.protocol,
        ...extra,
      });
    const earlier = publish.findIndex((p) =>
      p.host_port === port.host_port && p.protocol === port.protocol
    );
    if (earlier < i) throw refuse(`is also publish[${earlier}]`);
    const owner = rt.ports.owner(port.host_port, port.protocol);
    if (owner !== undefined) throw refuse(`is already published by VM ${owner}`, { owner });
    if (await rt.network.portInUse(port.host_port, port.protocol)) {
      throw refuse("is in use on the host (a process listens on it)");
    }
  }
}

/** The forwards of every VM that holds a lease in the pool. */
export function currentForwards(rt: VmRuntime): Forward[] {
  return rt.ports.list().filter((f) => f.ip !== null && inPool(rt.pool, f.ip)).map((f) => ({
    hostPort: f.host_port,
    guestIp: f.ip!,
    guestPort: f.guest_port,
    protocol: f.protocol,
    owner: f.vm,
  }));
}

/**
 * Rewrites the host's port forwards from the store. Serialised, and the store is read inside
 * the lock, so the last rewrite always reflects the latest state.
 */
export async function syncForwards(rt: VmRuntime): Promise<void> {
  await rt.mutex.run(FORWARDS_KEY, async () => {
    const forwards = currentForwards(rt);
    await rt.network.setForwards(forwards);
    rt.logger.debug("port forwards set", { count: forwards.length });
  });
}
