/**
 * The {@linkcode LeaseStore} over `ip_leases` and the {@linkcode PortStore} over
 * `port_forwards`. Addresses are keyed by their unsigned 32-bit value, so "taken" and the order
 * of leases are numeric (….9, .10, … .100), never textual.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { type PortMapping, VolantError } from "../../schema/mod.ts";
import { formatIpv4, parseIpv4 } from "../../net/ipv4.ts";
import type { SqlRow } from "./_vm_store.ts";
import type { ForwardRow, Lease, LeaseStore, PortStore } from "./types.ts";

function constraint(err: unknown): string {
  const message = String((err as Error)?.message ?? err);
  return message.includes("constraint failed") ? message : "";
}

function toLease(r: SqlRow): Lease {
  return {
    ip: String(r.ip),
    vm_id: Number(r.vm_id),
    vm: String(r.vm),
    leased_at: String(r.leased_at),
  };
}

const LEASES = "SELECT l.ip, l.vm_id, v.name AS vm, l.leased_at FROM ip_leases l " +
  "JOIN vms v ON v.id = l.vm_id";

/** Builds the lease store over an open database. */
export function createLeaseStore(db: DatabaseSync, now: () => Date): LeaseStore {
  const takenAll = db.prepare("SELECT ip_num FROM ip_leases");
  const insert = db.prepare(
    "INSERT INTO ip_leases (ip_num, ip, vm_id, leased_at) VALUES (?, ?, ?, ?)",
  );
  const setLast = db.prepare("UPDATE vms SET last_ip = ? WHERE id = ?");
  const leasedAt = db.prepare("SELECT 1 AS x FROM ip_leases WHERE ip_num = ?");
  // The end of the run of consecutive leases that starts at `?`, plus one: walks the primary key
  // in order and stops at the first gap.
  const gapAfter = db.prepare(
    "SELECT l.ip_num + 1 AS c FROM ip_leases l WHERE l.ip_num >= ? AND NOT EXISTS " +
      "(SELECT 1 FROM ip_leases m WHERE m.ip_num = l.ip_num + 1) ORDER BY l.ip_num LIMIT 1",
  );

  function lowestFree(first: number, last: number, reserved: ReadonlySet<number>): number | null {
    let from = first;
    while (from <= last) {
      const candidate = leasedAt.get(from) === undefined
        ? from
        : Number((gapAfter.get(from) as SqlRow).c);
      if (candidate > last) return null;
      if (!reserved.has(candidate)) return candidate;
      from = candidate + 1;
    }
    return null;
  }
  const byVm = db.prepare(`${LEASES} WHERE l.vm_id = ?`);
  const byIp = db.prepare(`${LEASES} WHERE l.ip_num = ?`);
  const all = db.prepare(`${LEASES} ORDER BY l.ip_num`);
  const remove = db.prepare("DELETE FROM ip_leases WHERE vm_id = ? RETURNING ip");
  const orphans = db.prepare(
    "DELETE FROM ip_leases WHERE vm_id NOT IN (SELECT id FROM vms) RETURNING ip, vm_id, leased_at",
  );

  function get(vmId: number): Lease | undefined {
    const r = byVm.get(vmId) as SqlRow | undefined;
    return r === undefined ? undefined : toLease(r);
  }

  function add(vmId: number, ip: string): Lease {
    const num = parseIpv4(ip, "ip");
    const normal = formatIpv4(num);
    try {
      insert.run(num, normal, vmId, now().toISOString());
    } catch (err) {
      const why = constraint(err);
      if (why.includes("ip_leases.vm_id")) {
        throw new VolantError("already_exists", `VM ${get(vmId)?.vm} already holds a lease`, {
          vm_id: vmId,
          ip: get(vmId)?.ip,
        });
      }
      if (why.includes("ip_leases.ip")) {
        const owner = (byIp.get(num) as SqlRow | undefined)?.vm;
        throw new VolantError(
          "ip_unavailable",
          `ip: ${normal} is already leased${owner ? ` to VM ${owner}` : ""}; omit it to get ` +
            "the next free address",
          { field: "ip", value: normal, owner },
        );
      }
      throw err;
    }
    setLast.run(normal, vmId);
    return get(vmId)!;
  }

  return {
    byAddress(ip: string) {
      const r = byIp.get(parseIpv4(ip, "ip")) as SqlRow | undefined;
      return r === undefined ? undefined : toLease(r);
    },
    taken: () => new Set((takenAll.all() as SqlRow[]).map((r) => Number(r.ip_num))),
    lowestFree,
    add,
    get,
    release(vmId) {
      const r = remove.get(vmId) as SqlRow | undefined;
      return r === undefined ? null : String(r.ip);
    },
    list: () => (all.all() as SqlRow[]).map(toLease),
    releaseOrphans: () =>
      (orphans.all() as SqlRow[]).map((r) => ({
        ip: String(r.ip),
        vm_id: Number(r.vm_id),
        leased_at: String(r.leased_at),
      })),
  };
}

/** Builds the port store over an open database. */
export function createPortStore(db: DatabaseSync): PortStore {
  const insert = db.prepare(
    "INSERT INTO port_forwards (host_port, protocol, vm_id, guest_port) VALUES (?, ?, ?, ?)",
  );
  const ownerOf = db.prepare(
    "SELECT v.name FROM port_forwards p JOIN vms v ON v.id = p.vm_id " +
      "WHERE p.host_port = ? AND p.protocol = ?",
  );
  const all = db.prepare(
    "SELECT v.name AS vm, l.ip, p.host_port, p.guest_port, p.protocol FROM port_forwards p " +
      "JOIN vms v ON v.id = p.vm_id LEFT JOIN ip_leases l ON l.vm_id = p.vm_id " +
      "ORDER BY p.host_port, p.protocol",
  );

  function owner(hostPort: number, protocol: "tcp" | "udp"): string | undefined {
    const r = ownerOf.get(hostPort, protocol) as SqlRow | undefined;
    return r === undefined ? undefined : String(r.name);
  }

  return {
    add(vmId: number, ports: readonly PortMapping[]) {
      for (const [i, port] of ports.entries()) {
        try {
          insert.run(port.host_port, port.protocol, vmId, port.guest_port);
        } catch (err) {
          if (!constraint(err).includes("port_forwards.host_port")) throw err;
          const by = owner(port.host_port, port.protocol);
          const field = `publish[${i}].host_port`;
          const twice = ports.slice(0, i).some((p) =>
            p.host_port === port.host_port && p.protocol === port.protocol
          );
          throw new VolantError(
            "already_exists",
            `${field}: host port ${port.host_port}/${port.protocol} is ` +
              (twice ? "published twice in this request" : `already published by VM ${by}`) +
              "; choose another host port",
            { field, value: port.host_port, protocol: port.protocol, owner: by },
          );
        }
      }
    },
    owner,
    list: () =>
      (all.all() as SqlRow[]).map((r): ForwardRow => ({
        vm: String(r.vm),
        ip: r.ip === null ? null : String(r.ip),
        host_port: Number(r.host_port),
        guest_port: Number(r.guest_port),
        protocol: r.protocol === "udp" ? "udp" : "tcp",
      })),
  };
}
