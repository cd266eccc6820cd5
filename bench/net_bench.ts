/**
 * Networking benchmarks (issue 4): (a) tap create + attach + up through Deno FFI (netlink and
 * TUN ioctls, what volantd does) against the same through `ip tuntap add` + `ip link set`, in a
 * network namespace made for the run; (b) lease allocation with 10 000 addresses taken: the
 * numeric allocator (`nextFree` over the taken set, as the daemon does inside its transaction)
 * against a pool-table allocator in SQLite (every address a row, `ORDER BY` the lowest free one,
 * as the original Volant does).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { createTap, deleteTap, ensureBridge, setLinkUp, setMaster, withNetns } from "../net/mod.ts";
import { definePool, formatIpv4, nextFree, parseIpv4 } from "../net/mod.ts";

/** What the networking benchmark measured. */
export interface NetBenchResult {
  /** Per-tap create + attach + up + delete through FFI, ms. */
  ffiTapMs: number[];
  /** The same through the `ip` tool, ms. */
  ipTapMs: number[];
  /** Leases per second with 10 000 taken, numeric allocator. */
  nextFreePerSec: number;
  /** Leases per second with 10 000 taken, pool-table allocator in SQLite. */
  poolTablePerSec: number;
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

function leaseRates(taken: number, leases: number): { numeric: number; table: number } {
  const pool = definePool({ subnet: "10.128.0.0/16", gateway: "10.128.0.1" });
  const used = new Set<number>();
  for (let n = 0; n < taken; n++) used.add(pool.first + n);
  let started = performance.now();
  for (let i = 0; i < leases; i++) {
    used.add(parseIpv4(nextFree(pool, used)));
  }
  const numeric = leases / ((performance.now() - started) / 1000);

  const db = new DatabaseSync(":memory:");
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
    db.exec("BEGIN");
    const row = pick.get() as { ip_num: number };
    take.run(`vm-${i}`, row.ip_num);
    db.exec("COMMIT");
  }
  const table = leases / ((performance.now() - started) / 1000);
  db.close();
  return { numeric, table };
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
    const rates = leaseRates(10_000, 2_000);
    return {
      ffiTapMs,
      ipTapMs,
      nextFreePerSec: rates.numeric,
      poolTablePerSec: rates.table,
    };
  } finally {
    await ip("netns", "del", ns);
  }
}
