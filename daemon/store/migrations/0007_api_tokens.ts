/**
 * Migration 7: API bearer tokens. Only the sha256 of each token is kept (`hash`, hex), next to
 * its public id, name, scope and times; a revoked token keeps its row (so a request with it is
 * told it was revoked) and frees its name.
 *
 * @module
 */
import type { Migration } from "../migrate.ts";

/** Creates `api_tokens`. */
export const migration: Migration = {
  version: 7,
  name: "api_tokens",
  up: `
    CREATE TABLE api_tokens (
      id TEXT PRIMARY KEY CHECK (length(id) = 12),
      name TEXT NOT NULL,
      scope TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
      hash TEXT NOT NULL CHECK (length(hash) = 64),
      created_at TEXT NOT NULL,
      last_used_at TEXT,
      revoked_at TEXT
    ) STRICT;
    CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
  `,
};
