/** The {@linkcode PluginStore} and {@linkcode KeyStore} over `plugins`, `plugin_artifacts` and `trusted_keys`. @module */
import type { DatabaseSync } from "node:sqlite";
import { VolantError } from "../../schema/mod.ts";
import type { SqlRow } from "./_vm_store.ts";
import type {
  KeyStore,
  NewPlugin,
  PluginArtifactRow,
  PluginRow,
  PluginStore,
  TrustedKeyRow,
} from "./types.ts";

function toPlugin(r: SqlRow, artifacts: PluginArtifactRow[]): PluginRow {
  return {
    name: String(r.name),
    version: String(r.version),
    enabled: Number(r.enabled) === 1,
    manifest: String(r.manifest),
    signature: r.signature === "verified" ? "verified" : "unsigned",
    key_id: r.key_id === null ? null : String(r.key_id),
    source: r.source === null ? null : String(r.source),
    installed_at: String(r.installed_at),
    updated_at: String(r.updated_at),
    artifacts,
  };
}

function toArtifact(r: SqlRow): PluginArtifactRow {
  return {
    role: String(r.role),
    url: String(r.url),
    checksum: String(r.checksum),
    size: Number(r.size),
  };
}

/** Builds the plugin store over an open database. */
export function createPluginStore(db: DatabaseSync, now: () => Date): PluginStore {
  const one = db.prepare("SELECT * FROM plugins WHERE name = ?");
  const all = db.prepare("SELECT * FROM plugins ORDER BY name");
  const artifactsOf = db.prepare(
    "SELECT role, url, checksum, size FROM plugin_artifacts WHERE plugin = ? ORDER BY rowid",
  );
  const users = db.prepare("SELECT name FROM vms WHERE plugin = ? ORDER BY name");
  const checksums = db.prepare("SELECT DISTINCT checksum FROM plugin_artifacts");

  function get(name: string): PluginRow | undefined {
    const r = one.get(name) as SqlRow | undefined;
    return r === undefined
      ? undefined
      : toPlugin(r, (artifactsOf.all(name) as SqlRow[]).map(toArtifact));
  }

  return {
    get,
    list: () =>
      (all.all() as SqlRow[]).map((r) =>
        toPlugin(r, (artifactsOf.all(String(r.name)) as SqlRow[]).map(toArtifact))
      ),
    insert(plugin: NewPlugin): PluginRow {
      const ts = now().toISOString();
      try {
        db.prepare(
          "INSERT INTO plugins (name, version, enabled, manifest, signature, key_id, source, " +
            "installed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ).run(
          plugin.name,
          plugin.version,
          plugin.enabled ? 1 : 0,
          plugin.manifest,
          plugin.signature,
          plugin.key_id,
          plugin.source,
          ts,
          ts,
        );
      } catch (err) {
        if (String((err as Error).message).includes("UNIQUE constraint failed: plugins.name")) {
          throw new VolantError(
            "already_exists",
            `plugin ${plugin.name} is already installed (remove it first to replace it)`,
            { plugin: plugin.name },
          );
        }
        throw err;
      }
      const add = db.prepare(
        "INSERT INTO plugin_artifacts (plugin, role, url, checksum, size) VALUES (?, ?, ?, ?, ?)",
      );
      for (const a of plugin.artifacts) add.run(plugin.name, a.role, a.url, a.checksum, a.size);
      return get(plugin.name)!;
    },
    setEnabled(name: string, enabled: boolean): PluginRow {
      const r = db.prepare("UPDATE plugins SET enabled = ?, updated_at = ? WHERE name = ?")
        .run(enabled ? 1 : 0, now().toISOString(), name);
      if (Number(r.changes) === 0) {
        throw new VolantError("not_found", `plugin ${name} is not installed`, { plugin: name });
      }
      return get(name)!;
    },
    usedBy: (name: string) => (users.all(name) as SqlRow[]).map((r) => String(r.name)),
    delete(name: string): boolean {
      const vms = (users.all(name) as SqlRow[]).map((r) => String(r.name));
      if (vms.length > 0) {
        throw new VolantError(
          "invalid_state",
          `plugin ${name} is used by VM${vms.length > 1 ? "s" : ""} ${vms.join(", ")}; ` +
            "delete them first",
          { plugin: name, vms },
        );
      }
      return Number(db.prepare("DELETE FROM plugins WHERE name = ?").run(name).changes) > 0;
    },
    checksums: () => new Set((checksums.all() as SqlRow[]).map((r) => String(r.checksum))),
  };
}

/** Builds the trusted-key store over an open database. */
export function createKeyStore(db: DatabaseSync, now: () => Date): KeyStore {
  const toKey = (r: SqlRow): TrustedKeyRow => ({
    key_id: String(r.key_id),
    public_key: String(r.public_key),
    comment: r.comment === null ? null : String(r.comment),
    added_at: String(r.added_at),
  });
  return {
    list: () =>
      (db.prepare("SELECT * FROM trusted_keys ORDER BY added_at, key_id").all() as SqlRow[])
        .map(toKey),
    get(keyId: string) {
      const r = db.prepare("SELECT * FROM trusted_keys WHERE key_id = ?").get(keyId) as
        | SqlRow
        | undefined;
      return r === undefined ? undefined : toKey(r);
    },
    add(key) {
      db.prepare(
        "INSERT INTO trusted_keys (key_id, public_key, comment, added_at) VALUES (?, ?, ?, ?) " +
          "ON CONFLICT (key_id) DO UPDATE SET comment = excluded.comment",
      ).run(key.key_id, key.public_key, key.comment, now().toISOString());
      return toKey(
        db.prepare("SELECT * FROM trusted_keys WHERE key_id = ?").get(key.key_id) as SqlRow,
      );
    },
    remove: (keyId: string) =>
      Number(db.prepare("DELETE FROM trusted_keys WHERE key_id = ?").run(keyId).changes) > 0,
  };
}
