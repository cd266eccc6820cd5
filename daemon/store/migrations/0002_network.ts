/**
 * Migration 2: networking. Each VM's static IPv4 lease (`ip_leases`, one per VM, one VM per
 * address), its published ports (`port_forwards`, one owner per host port and protocol), and on
 * `vms` the guest NIC's MAC, the host tap while the VMM runs, and the last address it held (so a
 * VM whose lease was freed by crash reconciliation gets the same address back when it is free).
 * Leases and ports go with their VM (`ON DELETE CASCADE`).
 *
 * @module
 */
import type { Migration } from "../migrate.ts";

/** Creates `ip_leases` and `port_forwards`; adds `mac`, `tap`, `last_ip` to `vms`. */
export const migration: Migration = {
  version: 2,
  name: "network",
  up: `
    ALTER TABLE vms ADD COLUMN mac TEXT;
    ALTER TABLE vms ADD COLUMN tap TEXT;
    ALTER TABLE vms ADD COLUMN last_ip TEXT;
    CREATE TABLE ip_leases (
      ip_num INTEGER PRIMARY KEY CHECK (ip_num BETWEEN 0 AND 4294967295),
      ip TEXT NOT NULL UNIQUE,
      vm_id INTEGER NOT NULL UNIQUE REFERENCES vms(id) ON DELETE CASCADE,
      leased_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE port_forwards (
      host_port INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
      protocol TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
      vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
      guest_port INTEGER NOT NULL CHECK (guest_port BETWEEN 1 AND 65535),
      PRIMARY KEY (host_port, protocol)
    ) STRICT;
    CREATE INDEX port_forwards_vm ON port_forwards (vm_id);
  `,
};
