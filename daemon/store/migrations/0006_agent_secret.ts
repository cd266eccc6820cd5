/**
 * Migration 6: how the daemon reaches a VM's kestrel. `agent_port` is the port the VM was
 * booted with (the config's `guest.agent_port` at its last start), `agent_secret` the random
 * secret in its boot config that kestrel requires on every request (base64url; made anew at
 * every start, cleared when the VMM ends; never in API output, events or logs). Both NULL for
 * VMs booted before this migration (kestrel on its old port, without a secret).
 *
 * @module
 */
import type { Migration } from "../migrate.ts";

/** Adds `agent_port` and `agent_secret` to `vms`. */
export const migration: Migration = {
  version: 6,
  name: "agent_secret",
  up: `
    ALTER TABLE vms ADD COLUMN agent_port INTEGER;
    ALTER TABLE vms ADD COLUMN agent_secret TEXT;
  `,
};
