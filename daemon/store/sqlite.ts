/**
 * The SQLite store (`node:sqlite`): WAL, foreign keys, a busy timeout, migrations on open,
 * the VM rows, address leases, published ports and the event log, and transactions across all
 * of them.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { VolantError } from "../../schema/mod.ts";
import { migrate, type Migration } from "./migrate.ts";
import { MIGRATIONS } from "./migrations/mod.ts";
import { createVmStore, type SqlRow } from "./_vm_store.ts";
import { createLeaseStore, createPortStore } from "./_network_store.ts";
import { createPolicyStore } from "./_policy_store.ts";
import { createKeyStore, createPluginStore } from "./_plugin_store.ts";
import { createTokenStore } from "./_token_store.ts";
import { createDeploymentStore } from "./_deployment_store.ts";
import { type AfterCommit, createEventStore } from "./_event_store.ts";
import type { Store } from "./types.ts";

/** Options of {@linkcode openStore}. */
export interface OpenStoreOptions {
  /** Clock for timestamps; default `new Date()`. */
  now?: () => Date;
  /** Milliseconds a writer waits for a lock; default 5000. */
  busyTimeoutMs?: number;
  /** Migrations to apply; default all of `store/migrations/`. */
  migrations?: readonly Migration[];
}

/**
 * Transactions that nest with savepoints, and work deferred until the outermost one commits
 * (events are heard only once what they report is committed; dropped when it rolls back).
 */
function transactionRunner(db: DatabaseSync): {
  transaction: <T>(fn: () => T) => T;
  afterCommit: AfterCommit;
} {
  let depth = 0;
  let deferred: Array<() => void> = [];
  function transaction<T>(fn: () => T): T {
    const savepoint = `sp${depth}`;
    const mark = deferred.length;
    db.exec(depth === 0 ? "BEGIN IMMEDIATE" : `SAVEPOINT ${savepoint}`);
    depth++;
    let result: T;
    let left = false;
    try {
      result = fn();
      if (result instanceof Promise) {
        throw new VolantError("internal", "store transactions must be synchronous");
      }
      depth--;
      left = true;
      db.exec(depth === 0 ? "COMMIT" : `RELEASE ${savepoint}`);
    } catch (err) {
      // A failed COMMIT or RELEASE left the level already.
      if (!left) depth--;
      db.exec(depth === 0 ? "ROLLBACK" : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
      deferred.length = mark;
      throw err;
    }
    if (depth === 0 && deferred.length > 0) {
      const run = deferred;
      deferred = [];
      for (const fn of run) fn();
    }
    return result;
  }
  return {
    transaction,
    afterCommit: (fn) => depth === 0 ? fn() : void deferred.push(fn),
  };
}

/**
 * Makes the database file (created empty when missing) and its WAL files readable by their owner
 * only: it holds the VMs' kestrel secrets. SQLite gives the WAL files the database's mode.
 */
function ownerOnly(path: string): void {
  if (path === ":memory:" || path.startsWith("file:")) return;
  Deno.openSync(path, { create: true, write: true, mode: 0o600 }).close();
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      Deno.chmodSync(file, 0o600);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}

/**
 * Opens (creating when missing, mode 0600) the database at `path`, configures it and applies migrations.
 * Use `<state_dir>/volant.db` in the daemon.
 *
 * @example
 * ```ts
 * import { openStore } from "./sqlite.ts";
 * const dir = await Deno.makeTempDir();
 * const store = openStore(`${dir}/volant.db`);
 * console.assert(store.vms.list().length === 0);
 * store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openStore(path: string, options: OpenStoreOptions = {}): Store {
  const now = options.now ?? (() => new Date());
  ownerOnly(path);
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA foreign_keys = ON");
    db.exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
    db.exec("PRAGMA synchronous = NORMAL");
    migrate(db, options.migrations ?? MIGRATIONS, now);
  } catch (err) {
    db.close();
    if (err instanceof VolantError) throw err;
    throw new VolantError(
      "internal",
      `Cannot open the database ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    );
  }
  const { transaction, afterCommit } = transactionRunner(db);
  const vms = createVmStore(db, now, transaction);
  const leases = createLeaseStore(db, now);
  const ports = createPortStore(db);
  let open = true;
  return {
    path,
    vms,
    leases,
    ports,
    policies: createPolicyStore(db),
    plugins: createPluginStore(db, now),
    keys: createKeyStore(db, now),
    tokens: createTokenStore(db, now),
    events: createEventStore(db, afterCommit, transaction),
    deployments: createDeploymentStore(db, now),
    transaction,
    schemaVersion() {
      const r = db.prepare("SELECT MAX(version) AS v FROM schema_version").get() as SqlRow;
      return Number(r.v ?? 0);
    },
    pragma(name: string): string | number | null {
      if (!/^[a-z_]+$/.test(name)) throw new VolantError("invalid_argument", `bad pragma ${name}`);
      const row = db.prepare(`PRAGMA ${name}`).get() as SqlRow | undefined;
      const value = row === undefined ? null : Object.values(row)[0] ?? null;
      return typeof value === "string" || value === null ? value : Number(value);
    },
    close() {
      if (!open) return;
      open = false;
      db.close();
    },
  };
}
