/** The {@linkcode TokenStore} over `api_tokens`. @module */
import type { DatabaseSync } from "node:sqlite";
import { VolantError } from "../../schema/mod.ts";
import type { SqlRow } from "./_vm_store.ts";
import type { NewToken, TokenRow, TokenStore } from "./types.ts";

function toToken(r: SqlRow): TokenRow {
  return {
    id: String(r.id),
    name: String(r.name),
    scope: r.scope === "admin" ? "admin" : "read",
    hash: String(r.hash),
    created_at: String(r.created_at),
    last_used_at: r.last_used_at === null ? null : String(r.last_used_at),
    revoked_at: r.revoked_at === null ? null : String(r.revoked_at),
  };
}

/** Builds the token store over an open database. */
export function createTokenStore(db: DatabaseSync, now: () => Date): TokenStore {
  const byId = db.prepare("SELECT * FROM api_tokens WHERE id = ?");
  const activeByName = db.prepare(
    "SELECT * FROM api_tokens WHERE name = ? AND revoked_at IS NULL",
  );
  const all = db.prepare("SELECT * FROM api_tokens ORDER BY created_at, id");
  const active = db.prepare(
    "SELECT * FROM api_tokens WHERE revoked_at IS NULL ORDER BY created_at, id",
  );
  const insert = db.prepare(
    "INSERT INTO api_tokens (id, name, scope, hash, created_at) VALUES (?, ?, ?, ?, ?)",
  );
  const revoke = db.prepare(
    "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
  );
  const touch = db.prepare("UPDATE api_tokens SET last_used_at = ? WHERE id = ?");
  const count = db.prepare("SELECT COUNT(*) AS n FROM api_tokens WHERE revoked_at IS NULL");

  const get = (id: string) => {
    const r = byId.get(id) as SqlRow | undefined;
    return r === undefined ? undefined : toToken(r);
  };

  return {
    get,
    activeByName(name) {
      const r = activeByName.get(name) as SqlRow | undefined;
      return r === undefined ? undefined : toToken(r);
    },
    list: (includeRevoked) => ((includeRevoked ? all : active).all() as SqlRow[]).map(toToken),
    insert(token: NewToken) {
      try {
        insert.run(token.id, token.name, token.scope, token.hash, now().toISOString());
      } catch (err) {
        if (/UNIQUE constraint failed: api_tokens\.name/.test(String(err))) {
          throw new VolantError(
            "already_exists",
            `A token named ${token.name} exists already; revoke it first or pick another name`,
            { name: token.name },
          );
        }
        throw err;
      }
      return get(token.id)!;
    },
    revoke(id) {
      revoke.run(now().toISOString(), id);
      return get(id);
    },
    touch(id, at) {
      touch.run(at, id);
    },
    activeCount: () => Number((count.get() as SqlRow).n),
  };
}
