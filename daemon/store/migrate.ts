/**
 * Numbered migrations, applied in order, each in its own transaction and recorded in
 * `schema_version`. Re-running is a no-op.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { VolantError } from "../../schema/mod.ts";

/** One schema step. `up` is SQL (several statements allowed) or a function for data moves. */
export interface Migration {
  /** Strictly increasing number; recorded in `schema_version`. */
  version: number;
  /** Short name (the file name's suffix). */
  name: string;
  /** The change: SQL, or a function for data moves. */
  up: string | ((db: DatabaseSync) => void);
}

/**
 * Applies the missing migrations; returns the versions applied now.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { migrate } from "./migrate.ts";
 * const db = new DatabaseSync(":memory:");
 * const steps = [{ version: 1, name: "t", up: "CREATE TABLE t (x INTEGER)" }];
 * console.assert(migrate(db, steps).length === 1 && migrate(db, steps).length === 0);
 * ```
 */
export function migrate(
  db: DatabaseSync,
  migrations: readonly Migration[],
  now: () => Date = () => new Date(),
): number[] {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version <= migrations[i - 1]!.version) {
      throw new VolantError("internal", "Migrations must have strictly increasing versions", {
        version: migrations[i]!.version,
      });
    }
  }
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_version (" +
      "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT",
  );
  const row = db.prepare("SELECT MAX(version) AS v FROM schema_version").get() as
    | { v: number | null }
    | undefined;
  const current = row?.v ?? 0;
  const latest = migrations.at(-1)?.version ?? 0;
  if (current > latest) {
    throw new VolantError(
      "internal",
      `The database schema is version ${current}, newer than this volantd knows (${latest}); ` +
        "run a newer volantd",
      { current, latest },
    );
  }
  // Versions are numbers handed out ahead of time, so one may land before a lower one: every
  // migration not recorded yet is applied, not only those above the highest recorded.
  const done = new Set(
    (db.prepare("SELECT version FROM schema_version").all() as { version: number }[])
      .map((r) => Number(r.version)),
  );
  const applied: number[] = [];
  for (const m of migrations) {
    if (done.has(m.version)) continue;
    db.exec("BEGIN IMMEDIATE");
    try {
      if (typeof m.up === "string") db.exec(m.up);
      else m.up(db);
      db.prepare("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)")
        .run(m.version, m.name, now().toISOString());
      db.exec("COMMIT");
    } catch (err) {
      db.exec("ROLLBACK");
      throw new VolantError(
        "internal",
        `Migration ${m.version} (${m.name}) failed: ${(err as Error).message}`,
        { version: m.version },
        { cause: err },
      );
    }
    applied.push(m.version);
  }
  return applied;
}
