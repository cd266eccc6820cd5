import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { VolantError } from "../../schema/mod.ts";
import { definePool, formatIpv4, nextFree, parseIpv4, reservedAddresses } from "../../net/mod.ts";
import { newVm } from "./testing.ts";
import { migrate, MIGRATIONS, openStore, type Store } from "./mod.ts";

async function withStore(fn: (store: Store, path: string) => void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-store-net-" });
  const store = openStore(`${dir}/volant.db`);
  try {
    fn(store, `${dir}/volant.db`);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const code = (c: string) => (err: VolantError) => err.code === c;

Deno.test("migration 2 upgrades a version-1 database in place; VMs keep their data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-store-net-" });
  try {
    const path = `${dir}/volant.db`;
    const v1 = new DatabaseSync(path);
    migrate(v1, MIGRATIONS.filter((m) => m.version === 1));
    v1.prepare(
      "INSERT INTO vms (name, state, cpu_cores, memory_mb, kernel, hypervisor, kvm, created_at, " +
        "updated_at) VALUES ('old', 'stopped', 2, 512, 'bzImage-volant', 'qemu', 0, 't0', 't0')",
    ).run();
    v1.close();
    const store = openStore(path);
    try {
      equal(store.schemaVersion(), MIGRATIONS.at(-1)!.version);
      const old = store.vms.get("old")!;
      equal(old.memory_mb, 512);
      deepEqual([old.mac, old.tap, old.last_ip, old.ip, old.ports], [null, null, null, null, []]);
      store.leases.add(old.id, "192.168.127.7");
      equal(store.vms.get("old")?.ip, "192.168.127.7");
    } finally {
      store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("leases: numeric order and keys, one per VM, one VM per address, last_ip kept", () =>
  withStore((store) => {
    const ids = ["a", "b", "c", "d"].map((n) => store.vms.insert(newVm(n)).id);
    store.leases.add(ids[0]!, "10.0.0.100");
    store.leases.add(ids[1]!, "10.0.0.9");
    store.leases.add(ids[2]!, "10.0.0.10");
    deepEqual(store.leases.list().map((l) => l.ip), ["10.0.0.9", "10.0.0.10", "10.0.0.100"]);
    deepEqual([...store.leases.taken()].sort((x, y) => x - y), [
      0x0a000009,
      0x0a00000a,
      0x0a000064,
    ]);
    throws(
      () => store.leases.add(ids[3]!, "10.0.0.9"),
      (err: VolantError) =>
        err.code === "ip_unavailable" &&
        /10\.0\.0\.9 is already leased to VM b/.test(err.message) &&
        err.details?.field === "ip",
    );
    throws(() => store.leases.add(ids[0]!, "10.0.0.11"), code("already_exists"));
    equal(store.leases.byAddress("10.0.0.10")?.vm, "c");
    equal(store.vms.get("b")?.last_ip, "10.0.0.9");
    equal(store.leases.release(ids[1]!), "10.0.0.9");
    equal(store.leases.release(ids[1]!), null);
    const b = store.vms.get("b")!;
    equal(b.ip, null);
    equal(b.last_ip, "10.0.0.9", "the last address stays for the next start");
    equal(store.leases.add(ids[3]!, "10.0.0.9").vm, "d", "a freed address can be leased again");
  }));

Deno.test("ports: one owner per host port and protocol; errors name publish[i]", () =>
  withStore((store) => {
    const web = store.vms.insert(newVm("web")).id;
    const api = store.vms.insert(newVm("api")).id;
    store.leases.add(web, "10.0.0.2");
    store.ports.add(web, [
      { host_port: 8080, guest_port: 80, protocol: "tcp" },
      { host_port: 53, guest_port: 53, protocol: "udp" },
    ]);
    store.ports.add(api, [{ host_port: 8080, guest_port: 8080, protocol: "udp" }]);
    equal(store.ports.owner(8080, "tcp"), "web");
    equal(store.ports.owner(8080, "udp"), "api");
    equal(store.ports.owner(9999, "tcp"), undefined);
    throws(
      () =>
        store.transaction(() =>
          store.ports.add(api, [
            { host_port: 9000, guest_port: 1, protocol: "tcp" },
            { host_port: 8080, guest_port: 2, protocol: "tcp" },
          ])
        ),
      (err: VolantError) =>
        err.code === "already_exists" && err.details?.field === "publish[1].host_port" &&
        /already published by VM web/.test(err.message),
    );
    equal(store.ports.owner(9000, "tcp"), undefined, "the transaction rolled back");
    deepEqual(store.ports.list(), [
      { vm: "web", ip: "10.0.0.2", host_port: 53, guest_port: 53, protocol: "udp" },
      { vm: "web", ip: "10.0.0.2", host_port: 8080, guest_port: 80, protocol: "tcp" },
      { vm: "api", ip: null, host_port: 8080, guest_port: 8080, protocol: "udp" },
    ]);
    deepEqual(store.vms.get("web")?.ports, [
      { host_port: 53, guest_port: 53, protocol: "udp" },
      { host_port: 8080, guest_port: 80, protocol: "tcp" },
    ]);
    deepEqual(store.vms.list().map((v) => [v.name, v.ports.length]), [["api", 1], ["web", 2]]);
  }));

Deno.test("deleting a VM frees its lease and ports; a failed transaction leaves nothing", () =>
  withStore((store) => {
    const web = store.vms.insert(newVm("web")).id;
    store.leases.add(web, "10.0.0.2");
    store.ports.add(web, [{ host_port: 8080, guest_port: 80, protocol: "tcp" }]);
    store.vms.delete("web");
    deepEqual(store.leases.list(), []);
    deepEqual(store.ports.list(), []);
    throws(() =>
      store.transaction(() => {
        const id = store.vms.insert(newVm("half")).id;
        store.leases.add(id, "10.0.0.3");
        store.ports.add(id, [{ host_port: 8080, guest_port: 80, protocol: "tcp" }]);
        throw new Error("the launch failed");
      }), /launch failed/);
    equal(store.vms.get("half"), undefined);
    deepEqual(store.leases.list(), []);
    deepEqual(store.ports.list(), []);
  }));

Deno.test("releaseOrphans frees leases whose VM row is gone", () =>
  withStore((store, path) => {
    const keep = store.vms.insert(newVm("keep")).id;
    store.leases.add(keep, "10.0.0.2");
    // Only a writer without foreign keys can leave such a lease; make one that way.
    const raw = new DatabaseSync(path);
    raw.exec("PRAGMA foreign_keys = OFF");
    raw.prepare("INSERT INTO ip_leases (ip_num, ip, vm_id, leased_at) VALUES (?, ?, ?, ?)")
      .run(0x0a000005, "10.0.0.5", 999, "t");
    raw.close();
    deepEqual(store.leases.releaseOrphans().map((l) => [l.ip, l.vm_id]), [["10.0.0.5", 999]]);
    deepEqual(store.leases.list().map((l) => l.ip), ["10.0.0.2"]);
    deepEqual(store.leases.releaseOrphans(), []);
    ok(store.leases.get(keep));
  }));

Deno.test("leases.lowestFree() finds what net/ nextFree finds, for random lease sets", () =>
  withStore((store) => {
    const pool = definePool({ subnet: "10.9.0.0/26", gateway: "10.9.0.20" });
    const reserved = new Set(reservedAddresses(pool).map((a) => parseIpv4(a)));
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const ids = Array.from({ length: 64 }, (_, i) => store.vms.insert(newVm(`p${i}`)).id);
    for (let round = 0; round < 60; round++) {
      store.transaction(() => {
        for (const id of ids) store.leases.release(id);
        let i = 0;
        for (let n = pool.first; n <= pool.last; n++) {
          if (!reserved.has(n) && random() < round / 60) store.leases.add(ids[i++]!, formatIpv4(n));
        }
      });
      const taken = store.leases.taken();
      const found = store.leases.lowestFree(pool.first, pool.last, reserved);
      let expected: number | null;
      try {
        expected = parseIpv4(nextFree(pool, taken));
      } catch {
        expected = null;
      }
      equal(found, expected, `round ${round}: taken ${[...taken].map(formatIpv4).join(",")}`);
    }
  }));
