/**
 * Migration 11: network policy peers by deployment. `allow_from` may name a deployment
 * (`deployment:<name>`): every replica it has, now or later, may reach the VM. Kept by name as
 * JSON beside the policy (a deployment's replicas change; its name does not).
 *
 * @module
 */
import type { Migration } from "../migrate.ts";

/** Adds `allow_from_deployments` to `vm_network_policies`. */
export const migration: Migration = {
  version: 11,
  name: "policy_peer_deployments",
  up: `
    ALTER TABLE vm_network_policies
      ADD COLUMN allow_from_deployments TEXT NOT NULL DEFAULT '[]';
  `,
};
