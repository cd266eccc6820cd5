/**
 * The SQLite store (`node:sqlite`): WAL, foreign keys, a busy timeout, migrations on open,
 * and the {@linkcode VmStore} over the `vms` table.
 *
 * @module
 */
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { VolantError } from "../../schema/mod.ts";
import type { VmmHandle } from "../../hypervisor/driver.ts";
import { migrate, type Migration } from "./migrate.ts";
import { MIGRATIONS } from "./migrations/mod.ts";
import type { NewVm, Store, VmPatch, VmRow, VmStore } from "./types.ts";

/** Options of {@linkcode openStore}. */
export interface OpenStoreOptions {
  /** Clock for timestamps; default `new Date()`. */
  now?: () => Date;
  /** Milliseconds a writer waits for a lock; default 5000. */
  busyTimeoutMs?: number;
  /** Migrations to apply; default all of `store/migrations/`. */
  migrations?: readonly Migration[];
}

type SqlRow = Record<string, SQLInputValue>;

const PLAIN_COLUMNS = [
  "state",
  "cpu_cores",
  "memory_mb",
  "kernel",
  "kernel_cmdline",
  "hypervisor",
  "started_at",
  "ready_at",
  "boot_ms",
  "last_error",
  "serial_offset",
] as const;

function handleColumns(handle: VmmHandle | null): Record<string, SQLInputValue> {
  return {
    vmm_driver: handle?.driver ?? null,
    vmm_pid: handle?.pid ?? null,
    vmm_start_time: handle?.startTime ?? null,
    vmm_api_socket: handle?.apiSocket ?? null,
    vmm_runtime_dir: handle?.runtimeDir ?? null,
    vmm_log: handle?.vmmLog ?? null,
  };
}

function toRow(r: SqlRow): VmRow {
  const handle: VmmHandle | null = r.vmm_pid === null ? null : {
    driver: String(r.vmm_driver),
    pid: Number(r.vmm_pid),
    startTime: Number(r.vmm_start_time),
    apiSocket: String(r.vmm_api_socket),
    runtimeDir: String(r.vmm_runtime_dir),
    vmmLog: String(r.vmm_log),
  };
  return {
    id: Number(r.id),
    name: String(r.name),
    state: r.state as VmRow["state"],
    cpu_cores: Number(r.cpu_cores),
    memory_mb: Number(r.memory_mb),
    kernel: r.kernel as VmRow["kernel"],
    kernel_cmdline: r.kernel_cmdline === null ? null : String(r.kernel_cmdline),
    hypervisor: r.hypervisor as VmRow["hypervisor"],
    kvm: Number(r.kvm) === 1,
    created_at: String(r.created_at),
    updated_at: String(r.updated_at),
    started_at: r.started_at === null ? null : String(r.started_at),
    ready_at: r.ready_at === null ? null : String(r.ready_at),
    boot_ms: r.boot_ms === null ? null : Number(r.boot_ms),
    last_error: r.last_error === null ? null : String(r.last_error),
    serial_offset: Number(r.serial_offset),
    handle,
  };
}

function transactionRunner(db: DatabaseSync): <T>(fn: () => T) => T {
  let depth = 0;
  return function transaction<T>(fn: () => T): T {
    const savepoint = `sp${depth}`;
    db.exec(depth === 0 ? "BEGIN IMMEDIATE" : `SAVEPOINT ${savepoint}`);
    depth++;
    try {
      const result = fn();
      if (result instanceof Promise) {
        throw new VolantError("internal", "store transactions must be synchronous");
      }
      depth--;
      db.exec(depth === 0 ? "COMMIT" : `RELEASE ${savepoint}`);
      return result;
    } catch (err) {
      depth--;
      db.exec(depth === 0 ? "ROLLBACK" : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
      throw err;
    }
  };
}

function createVmStore(
  db: DatabaseSync,
  now: () => Date,
  transaction: <T>(fn: () => T) => T,
): VmStore {
  const selectOne = db.prepare("SELECT * FROM vms WHERE name = ?");
  const selectAll = db.prepare("SELECT * FROM vms ORDER BY name");
  const countAll = db.prepare("SELECT COUNT(*) AS n FROM vms");
  const deleteOne = db.prepare("DELETE FROM vms WHERE name = ?");

  function get(name: string): VmRow | undefined {
    const r = selectOne.get(name) as SqlRow | undefined;
    return r === undefined ? undefined : toRow(r);
  }

  function insert(vm: NewVm): VmRow {
    const ts = now().toISOString();
    const values: Record<string, SQLInputValue> = {
      name: vm.name,
      kvm: vm.kvm ? 1 : 0,
      created_at: ts,
      updated_at: ts,
      ...handleColumns(vm.handle),
    };
    for (const column of PLAIN_COLUMNS) values[column] = vm[column];
    const keys = Object.keys(values);
    try {
      db.prepare(
        `INSERT INTO vms (${keys.join(", ")}) VALUES (${keys.map((k) => `:${k}`).join(", ")})`,
      ).run(values);
    } catch (err) {
      if (String((err as Error).message).includes("UNIQUE constraint failed: vms.name")) {
        throw new VolantError("already_exists", `VM ${vm.name} already exists`, {
          name: vm.name,
        });
      }
      throw err;
    }
    return get(vm.name)!;
  }

  function update(name: string, patch: VmPatch): VmRow {
    const values: Record<string, SQLInputValue> = { updated_at: now().toISOString() };
    for (const column of PLAIN_COLUMNS) {
      const value = patch[column];
      if (value !== undefined) values[column] = value;
    }
    if (patch.kvm !== undefined) values.kvm = patch.kvm ? 1 : 0;
    if (patch.handle !== undefined) Object.assign(values, handleColumns(patch.handle));
    const sets = Object.keys(values).map((k) => `${k} = :${k}`).join(", ");
    const result = db.prepare(`UPDATE vms SET ${sets} WHERE name = :name`).run({
      ...values,
      name,
    });
    if (Number(result.changes) === 0) {
      throw new VolantError("not_found", `VM ${name} does not exist`, { name });
    }
    return get(name)!;
  }

  return {
    insert,
    get,
    list: () => (selectAll.all() as SqlRow[]).map(toRow),
    count: () => Number((countAll.get() as SqlRow).n),
    update,
    delete: (name) => Number(deleteOne.run(name).changes) > 0,
    transaction,
  };
}

/**
 * Opens (creating when missing) the database at `path`, configures it and applies migrations.
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
  const transaction = transactionRunner(db);
  const vms = createVmStore(db, now, transaction);
  let open = true;
  return {
    path,
    vms,
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
