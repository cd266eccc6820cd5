/**
 * Migration 10: deployments and VM restart policies. `deployments` holds each deployment's
 * desired state (replica count, template as JSON, its generation, max_unavailable, and
 * `deleting` once a delete began: the reconciler finishes it after a restart). A VM row names
 * the deployment it is a replica of and the template generation it was made from; `restart`
 * is its restart policy and state (JSON: policy, restarts, streak, status, next_at).
 *
 * @module
 */
import type { Migration } from "../migrate.ts";

/** Creates `deployments`; adds `deployment`, `generation` and `restart` to `vms`. */
export const migration: Migration = {
  version: 10,
  name: "deployments",
  up: `
    CREATE TABLE deployments (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      name TEXT NOT NULL UNIQUE,
      replicas INTEGER NOT NULL CHECK (replicas >= 0),
      template TEXT NOT NULL,
      generation INTEGER NOT NULL,
      max_unavailable INTEGER NOT NULL,
      deleting INTEGER NOT NULL DEFAULT 0,
      failures TEXT NOT NULL DEFAULT '[]',
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    ) STRICT;
    ALTER TABLE vms ADD COLUMN deployment TEXT;
    ALTER TABLE vms ADD COLUMN generation INTEGER;
    ALTER TABLE vms ADD COLUMN restart TEXT;
    CREATE INDEX vms_deployment ON vms (deployment) WHERE deployment IS NOT NULL;
  `,
};
