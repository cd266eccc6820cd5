/**
 * Migration 3: plugins. The registry (`plugins`: the manifest exactly as installed, so its
 * signature can be checked again; how it was verified), its artifacts (`plugin_artifacts`, each a
 * blob in the content-addressed cache), the keys manifests may be signed with (`trusted_keys`),
 * and on `vms` the plugin a VM runs and its workload's last reported status (JSON). A plugin used by a VM cannot be removed (`RESTRICT`).
 *
 * @module
 */
import type { Migration } from "../migrate.ts";

/** Creates `plugins`, `plugin_artifacts`, `trusted_keys`; adds `plugin` to `vms`. */
export const migration: Migration = {
  version: 3,
  name: "plugins",
  up: `
    CREATE TABLE plugins (
      name TEXT PRIMARY KEY,
      version TEXT NOT NULL,
      enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
      manifest TEXT NOT NULL,
      signature TEXT NOT NULL CHECK (signature IN ('verified', 'unsigned')),
      key_id TEXT,
      source TEXT,
      installed_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE plugin_artifacts (
      plugin TEXT NOT NULL REFERENCES plugins(name) ON DELETE CASCADE,
      role TEXT NOT NULL,
      url TEXT NOT NULL,
      checksum TEXT NOT NULL,
      size INTEGER NOT NULL,
      PRIMARY KEY (plugin, role)
    ) STRICT;
    CREATE INDEX plugin_artifacts_checksum ON plugin_artifacts (checksum);
    CREATE TABLE trusted_keys (
      key_id TEXT PRIMARY KEY,
      public_key TEXT NOT NULL UNIQUE,
      comment TEXT,
      added_at TEXT NOT NULL
    ) STRICT;
    ALTER TABLE vms ADD COLUMN plugin TEXT REFERENCES plugins(name) ON DELETE RESTRICT;
    ALTER TABLE vms ADD COLUMN workload TEXT;
  `,
};
