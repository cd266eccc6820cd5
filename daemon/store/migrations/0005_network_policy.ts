/**
 * Migration 5: each VM's network policy (see `schema/network_policy.ts`). The egress mode and
 * the allow-lists (JSON) in `vm_network_policies`, the peers that may reach the VM in
 * `vm_policy_peers` (by row id, in the order given). A VM without a row has the default
 * policy (VMs created before this migration). Both go with their VM, and a peer's rows with the
 * peer (`ON DELETE CASCADE`): a VM created later under a deleted peer's name is not trusted.
 *
 * @module
 */
import type { Migration } from "../migrate.ts";

/** Creates `vm_network_policies` and `vm_policy_peers`. */
export const migration: Migration = {
  version: 5,
  name: "network_policy",
  up: `
    CREATE TABLE vm_network_policies (
      vm_id INTEGER PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
      egress TEXT NOT NULL CHECK (egress IN ('allow-internet', 'deny')),
      allow_egress TEXT NOT NULL,
      allow_host_ports TEXT NOT NULL
    ) STRICT;
    CREATE TABLE vm_policy_peers (
      vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
      peer_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
      position INTEGER NOT NULL,
      PRIMARY KEY (vm_id, peer_id),
      CHECK (vm_id != peer_id)
    ) STRICT;
    CREATE INDEX vm_policy_peers_peer ON vm_policy_peers (peer_id);
  `,
};
