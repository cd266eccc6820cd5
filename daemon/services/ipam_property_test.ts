/**
 * IPAM property test: 200 concurrent creates and deletes through the VM service (fake driver,
 * fake host network, a real SQLite file). While it runs, no address is ever held by two VMs
 * at once (checked on every event, in the order things happen); afterwards the database holds
 * exactly one lease per VM, none without a VM, none twice, all inside the pool.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { decodeBootConfig } from "../../schema/mod.ts";
import { cidrContains, parseIpv4, reservedAddresses } from "../../net/mod.ts";
import { makeTestEnv } from "../testing.ts";

/** A small deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const POOL = { subnet: "10.30.0.0/26", gateway: "10.30.0.1" }; // 61 addresses: .2-.62
const SEED = Number(Deno.env.get("VOLANT_IPAM_SEED") ?? Date.now() % 1_000_000);

Deno.test(`IPAM: 200 concurrent creates/deletes never lease an address twice or leak one (seed ${SEED})`, async () => {
  const env = await makeTestEnv({ readyMs: 5_000 }, POOL);
  const d = env.open({ behavior: { readyDelayMs: 5 } });
  const random = prng(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  try {
    const holder = new Map<string, string>(); // ip → VM, maintained from events as they happen
    const violations: string[] = [];
    d.service.events.subscribe((event) => {
      if (event.type !== "vm.state" && event.type !== "vm.deleted") return;
      const ip = event.vm.ip;
      if (event.type === "vm.state" && event.from === null && ip !== null) {
        const other = holder.get(ip);
        if (other !== undefined) {
          violations.push(`${ip} leased to ${event.name} while ${other} holds it`);
        }
        holder.set(ip, event.name);
      }
      if (event.type === "vm.deleted" && ip !== null) {
        if (holder.get(ip) !== event.name) {
          violations.push(`${event.name} released ${ip} it did not hold`);
        }
        holder.delete(ip);
      }
    });

    const names = Array.from({ length: 90 }, (_, i) => `vm-${i}`);
    const ops: Promise<unknown>[] = [];
    const outcomes = new Map<string, number>();
    const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    const allowed: Record<string, string[]> = {
      delete: ["ok", "not_found"],
      create: ["ok", "already_exists", "ip_pool_exhausted"],
      publish: ["ok", "already_exists", "ip_pool_exhausted"],
      // .1 is the gateway (ip_unavailable), .63 the broadcast address (outside the range).
      ip: ["ok", "already_exists", "ip_unavailable", "invalid_argument"],
    };
    for (let i = 0; i < 200; i++) {
      const name = pick(names);
      const roll = random();
      const kind = roll < 0.35 ? "delete" : roll < 0.5 ? "ip" : roll < 0.6 ? "publish" : "create";
      const op = kind === "delete"
        ? d.service.delete(name)
        : kind === "ip"
        ? d.service.create({ name, ip: `10.30.0.${1 + Math.floor(random() * 63)}` })
        : kind === "publish"
        ? d.service.create({
          name,
          publish: [{ host_port: 9000 + Math.floor(random() * 8), guest_port: 80 }],
        })
        : d.service.create({ name });
      ops.push(op.then(() => count(`${kind}:ok`), (err) => count(`${kind}:${err.code}`)));
      if (random() < 0.3) await new Promise((r) => setTimeout(r, 0)); // interleave differently
    }
    await Promise.all(ops);
    deepEqual(violations, []);
    const summary = JSON.stringify(Object.fromEntries(outcomes));
    for (const key of outcomes.keys()) {
      const [kind, code] = key.split(":");
      ok(allowed[kind!]!.includes(code!), `unexpected outcome ${key}: ${summary}`);
    }
    const created = ["create", "ip", "publish"].reduce(
      (n, k) => n + (outcomes.get(`${k}:ok`) ?? 0),
      0,
    );
    ok(created > 20, summary);
    ok((outcomes.get("delete:ok") ?? 0) > 5, summary);

    // The database, read directly.
    const db = new DatabaseSync(env.dbPath);
    try {
      const leases = db.prepare(
        "SELECT l.ip, l.ip_num, v.name FROM ip_leases l LEFT JOIN vms v ON v.id = l.vm_id",
      ).all() as { ip: string; ip_num: number; name: string | null }[];
      const vms = db.prepare("SELECT name FROM vms").all() as { name: string }[];
      equal(leases.length, vms.length, "one lease per VM");
      ok(leases.every((l) => l.name !== null), "no lease without a VM");
      equal(new Set(leases.map((l) => l.ip)).size, leases.length, "no address twice");
      const reserved = reservedAddresses(POOL);
      for (const l of leases) {
        ok(cidrContains(env.pool.subnet, parseIpv4(l.ip)) && !reserved.includes(l.ip), l.ip);
        equal(parseIpv4(l.ip), l.ip_num, "ip_num is the numeric address");
      }
      deepEqual(new Set(vms.map((v) => v.name)), new Set(holder.values()), "events and rows agree");
      const orphanPorts = db.prepare(
        "SELECT COUNT(*) AS n FROM port_forwards p LEFT JOIN vms v ON v.id = p.vm_id WHERE v.id IS NULL",
      ).get() as { n: number };
      equal(orphanPorts.n, 0, "no published port without a VM");
    } finally {
      db.close();
    }

    // The host side agrees: one tap per VM, the forwards are the store's, the live guests'
    // boot configs carry distinct addresses.
    const rows = d.store.vms.list();
    deepEqual(
      [...env.network.taps].sort(),
      rows.map((r) => r.tap).filter((t) => t !== null).sort(),
    );
    deepEqual(
      env.network.forwards.map((f) => `${f.hostPort}>${f.guestIp}`).sort(),
      d.store.ports.list().map((p) => `${p.host_port}>${p.ip}`).sort(),
    );
    const guestIps = env.registry.alive().map((p) => decodeBootConfig(p.spec.cmdline)?.network?.ip);
    equal(guestIps.length, rows.length, "one VMM per VM");
    equal(new Set(guestIps).size, guestIps.length, "no two guests configured with one address");
  } finally {
    await env.dispose();
  }
});
