/**
 * Networking benchmarks (issue 4): (a) tap create + attach + up through Deno FFI (netlink and
 * TUN ioctls, what volantd does) against the same through `ip tuntap add` + `ip link set`, in a
 * network namespace made for the run; (b) lease allocation with 10 000 addresses taken:
 * volantd's path (one SQLite transaction: find the lowest free address in SQL, walking the
 * leases' primary key to the first gap, then insert the lease) against a pool-table allocator
 * in SQLite (every address a row, `ORDER BY` the lowest free one, as the original Volant does),
 * with the journal mode and `synchronous` level of volantd's store (read from its connection).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { createTap, deleteTap, ensureBridge, setLinkUp, setMaster, withNetns } from "../net/mod.ts";
import { definePool, formatIpv4, parseIpv4, type Pool, reservedAddresses } from "../net/mod.ts";
import { openStore } from "../daemon/store/mod.ts";

/** What the networking benchmark measured. */
export interface NetBenchResult {
  /** Per-tap create + attach + up + delete through FFI, ms. */
  ffiTapMs: number[];
  /** The same through the `ip` tool, ms. */
  ipTapMs: number[];
  /** Leases per second with 10 000 taken, volantd's store path (SQLite + net/ nextFree). */
  storeLeasesPerSec: number;
  /** Leases per second with 10 000 taken, pool-table allocator in SQLite. */
  poolTablePerSec: number;
  /** The SQLite journal mode both sides ran with (volantd's store's). */
  sqliteJournalMode: string;
  /** The SQLite `synchronous` level both sides ran with (volantd's store's; 1 = NORMAL). */
  sqliteSynchronous: number;
}

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

function ffiTap(ns: string, name: string): number {
  const started = performance.now();
  withNetns(ns, () => {
    createTap(name);
    setMaster(name, "vbench0");
    setLinkUp(name);
  });
  const ms = performance.now() - started;
  withNetns(ns, () => deleteTap(name));
  return ms;
}

async function ipTap(ns: string, name: string): Promise<number> {
  const started = performance.now();
  await ip("-n", ns, "tuntap", "add", "dev", name, "mode", "tap", "vnet_hdr");
  await ip("-n", ns, "link", "set", name, "master", "vbench0", "up");
  const ms = performance.now() - started;
  await ip("-n", ns, "link", "del", name);
  return ms;
}

/** Bulk-fills a fresh volantd database with `vms` VM rows, the first `leased` of them leased. */
function fillStore(path: string, pool: Pool, vms: number, leased: number): void {
  const db = new DatabaseSync(path);
  const vm = db.prepare(
    "INSERT INTO vms (id, name, state, cpu_cores, memory_mb, kernel, hypervisor, kvm, " +
      "created_at, updated_at) VALUES (?, ?, 'stopped', 1, 256, 'bzImage-volant', 'qemu', 0, ?, ?)",
  );
  const lease = db.prepare(
    "INSERT INTO ip_leases (ip_num, ip, vm_id, leased_at) VALUES (?, ?, ?, ?)",
  );
  const ts = new Date().toISOString();
  db.exec("BEGIN");
  for (let id = 1; id <= vms; id++) {
    vm.run(id, `vm-${id}`, ts, ts);
    if (id <= leased) lease.run(pool.first + id - 1, formatIpv4(pool.first + id - 1), id, ts);
  }
  db.exec("COMMIT");
  db.close();
}

function leaseRates(
  dir: string,
  taken: number,
  leases: number,
): { store: number; table: number; journal: string; synchronous: number } {
  const pool = definePool({
    subnet: "10.128.0.0/16",
    gateway: "10.254.255.254".replace(/^10\.254/, "10.128"),
  });
  // volantd's path: inside one store transaction, read the taken set, pick the lowest free
  // address with net/'s nextFree, record the lease.
  const path = `${dir}/volant.db`;
  openStore(path).close();
  fillStore(path, pool, taken + leases, taken);
  const store = openStore(path);
  let started = performance.now();
  const reserved = new Set(reservedAddresses(pool).map((a) => parseIpv4(a)));
  for (let id = taken + 1; id <= taken + leases; id++) {
    store.transaction(() => {
      const free = store.leases.lowestFree(pool.first, pool.last, reserved);
      store.leases.add(id, formatIpv4(free!));
    });
  }
  const storeRate = leases / ((performance.now() - started) / 1000);
  // The baseline runs with the store's own durability settings, read from its connection.
  const journal = String(store.pragma("journal_mode"));
  const synchronous = Number(store.pragma("synchronous"));
  store.close();

  // The original's scheme: a row per pool address, the lowest free one by ORDER BY.
  const db = new DatabaseSync(`${dir}/pool.db`);
  db.exec(`PRAGMA journal_mode = ${journal}`);
  db.exec(`PRAGMA synchronous = ${synchronous}`);
  const same = (name: string) => Object.values(db.prepare(`PRAGMA ${name}`).get() ?? {})[0];
  if (String(same("journal_mode")) !== journal || Number(same("synchronous")) !== synchronous) {
    throw new Error(
      `the baseline database did not take volantd's journal_mode ${journal} and synchronous ` +
        `${synchronous}`,
    );
  }
  db.exec("CREATE TABLE pool (ip_num INTEGER PRIMARY KEY, ip TEXT, vm TEXT)");
  const insert = db.prepare("INSERT INTO pool (ip_num, ip, vm) VALUES (?, ?, ?)");
  db.exec("BEGIN");
  for (let n = pool.first; n <= pool.last; n++) {
    insert.run(n, formatIpv4(n), n - pool.first < taken ? "taken" : null);
  }
  db.exec("COMMIT");
  const pick = db.prepare("SELECT ip_num FROM pool WHERE vm IS NULL ORDER BY ip_num LIMIT 1");
  const take = db.prepare("UPDATE pool SET vm = ? WHERE ip_num = ?");
  started = performance.now();
  for (let i = 0; i < leases; i++) {
    db.exec("BEGIN IMMEDIATE");
    const row = pick.get() as { ip_num: number };
    take.run(`vm-${i}`, row.ip_num);
    db.exec("COMMIT");
  }
  const table = leases / ((performance.now() - started) / 1000);
  db.close();
  return { store: storeRate, table, journal, synchronous };
}

/**
 * Runs the networking benchmark with `runs` taps per method.
 *
 * @example
 * ```ts ignore
 * import { runNetBench } from "./net_bench.ts";
 * const result = await runNetBench(20);
 * ```
 */
export async function runNetBench(runs: number): Promise<NetBenchResult> {
  const ns = `volant-bench-${crypto.randomUUID().slice(0, 8)}`;
  const dir = await Deno.makeTempDir({ prefix: "volant-bench-net-" });
  await ip("netns", "add", ns);
  try {
    withNetns(ns, () => {
      ensureBridge("vbench0");
      setLinkUp("vbench0");
    });
    const ffiTapMs: number[] = [];
    const ipTapMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      ffiTapMs.push(ffiTap(ns, `vt-bench${i}`));
      ipTapMs.push(await ipTap(ns, `vt-ipb${i}`));
    }
    const rates = leaseRates(dir, 10_000, 1_000);
    return {
      ffiTapMs,
      ipTapMs,
      storeLeasesPerSec: rates.store,
      poolTablePerSec: rates.table,
      sqliteJournalMode: rates.journal,
      sqliteSynchronous: rates.synchronous,
    };
  } finally {
    await ip("netns", "del", ns);
    await Deno.remove(dir, { recursive: true });
  }
}
