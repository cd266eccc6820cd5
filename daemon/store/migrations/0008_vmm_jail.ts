/**
 * Migration 8: VMM jails. `jail_uid` is the uid (and gid) the VM's VMM runs as, allocated from
 * `security.uid_range` at its first jailed start and kept for the VM's life (its writable
 * disks stay owned by it); unique, so no two VMs share one. `vmm_jail` is the running VMM's
 * jail (uid, root, cgroup and limits; JSON), part of its handle: whoever releases the VMM
 * removes its cgroup and jail directory.
 *
 * @module
 */
import type { Migration } from "../migrate.ts";

/** Adds `jail_uid` and `vmm_jail` to `vms`. */
export const migration: Migration = {
  version: 8,
  name: "vmm_jail",
  up: `
    ALTER TABLE vms ADD COLUMN jail_uid INTEGER;
    ALTER TABLE vms ADD COLUMN vmm_jail TEXT;
    CREATE UNIQUE INDEX vms_jail_uid ON vms (jail_uid) WHERE jail_uid IS NOT NULL;
  `,
};
