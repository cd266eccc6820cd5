import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { VolantError } from "../../schema/mod.ts";
import { AgentSecret } from "../kestrel/secret.ts";
import { newVm } from "./testing.ts";
import { migrate, MIGRATIONS, openStore } from "./mod.ts";

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-store-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a fresh database gets every migration; re-opening applies none", () =>
  withDir((dir) => {
    const path = `${dir}/volant.db`;
    const store = openStore(path);
    equal(store.schemaVersion(), MIGRATIONS.at(-1)!.version);
    equal(store.pragma("journal_mode"), "wal");
    equal(store.pragma("foreign_keys"), 1);
    ok(Number(store.pragma("busy_timeout")) >= 1000);
    store.vms.insert(newVm("web"));
    store.close();

    const db = new DatabaseSync(path);
    const versions = db.prepare("SELECT version FROM schema_version ORDER BY version").all()
      .map((r) => Number(r.version));
    deepEqual(versions, MIGRATIONS.map((m) => m.version));
    deepEqual(migrate(db, MIGRATIONS), [], "re-running migrations is a no-op");
    db.close();

    const again = openStore(path);
    equal(again.vms.get("web")?.name, "web", "data survives a re-open");
    again.close();
  }));

Deno.test("migrations apply in order, each in a transaction; a failing one rolls back", () =>
  withDir((dir) => {
    const db = new DatabaseSync(`${dir}/m.db`);
    const steps = [
      { version: 1, name: "a", up: "CREATE TABLE a (x INTEGER)" },
      { version: 2, name: "b", up: "CREATE TABLE b (x INTEGER); CREATE TABLE broken (" },
    ];
    throws(() => migrate(db, steps), /Migration 2 \(b\) failed/);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all().map((r) => String(r.name));
    ok(tables.includes("a"));
    ok(!tables.includes("b"), "migration 2 left a table behind");
    deepEqual(migrate(db, steps.slice(0, 1)), []);
    throws(() => migrate(db, []), /newer than this volantd knows/);
    db.close();
  }));

Deno.test("VmStore: insert, get, list, update, delete, handle round-trip", () =>
  withDir((dir) => {
    let clock = Date.parse("2025-01-01T00:00:00Z");
    const store = openStore(`${dir}/volant.db`, { now: () => new Date(clock) });
    const vms = store.vms;
    const web = vms.insert(newVm("web"));
    equal(web.created_at, "2025-01-01T00:00:00.000Z");
    equal(web.handle, null);
    throws(() => vms.insert(newVm("web")), (err: VolantError) => err.code === "already_exists");
    vms.insert(newVm("api"));
    deepEqual(vms.list().map((v) => v.name), ["api", "web"]);
    equal(vms.count(), 2);

    clock += 1500;
    const handle = {
      driver: "qemu",
      pid: 4242,
      startTime: 123456,
      apiSocket: "/run/volant/vms/web/qmp.sock",
      runtimeDir: "/run/volant/vms/web",
      vmmLog: "/var/log/volant/vms/web/vmm.log",
    };
    const updated = vms.update("web", { state: "starting", handle, boot_ms: 12, kvm: true });
    deepEqual(updated.handle, handle);
    equal(updated.state, "starting");
    equal(updated.kvm, true);
    equal(updated.updated_at, "2025-01-01T00:00:01.500Z");
    equal(updated.created_at, web.created_at);
    equal(vms.update("web", { handle: null }).handle, null);
    throws(() => vms.update("nope", { state: "running" }), (e: VolantError) =>
      e.code === "not_found");

    equal(vms.delete("web"), true);
    equal(vms.delete("web"), false);
    equal(vms.get("web"), undefined);
    store.close();
  }));

Deno.test("transactions roll back on error and nest with savepoints", () =>
  withDir((dir) => {
    const store = openStore(`${dir}/volant.db`);
    throws(() =>
      store.transaction(() => {
        store.vms.insert(newVm("a"));
        throw new Error("boom");
      }), /boom/);
    equal(store.vms.get("a"), undefined);
    store.vms.transaction(() => {
      store.vms.insert(newVm("b"));
      throws(() =>
        store.transaction(() => {
          store.vms.insert(newVm("c"));
          throw new Error("inner");
        })
      );
    });
    deepEqual(store.vms.list().map((v) => v.name), ["b"]);
    store.close();
  }));

Deno.test("the database and its WAL files are the owner's only; a VM's kestrel secret round-trips", () =>
  withDir((dir) => {
    const path = `${dir}/volant.db`;
    Deno.writeFileSync(path, new Uint8Array(), { mode: 0o644 });
    Deno.chmodSync(path, 0o644);
    const store = openStore(path);
    const secret = AgentSecret.generate();
    store.vms.insert(newVm("web"));
    equal(store.vms.get("web")?.agent_secret, null);
    equal(store.vms.get("web")?.agent_port, null);
    store.vms.update("web", { agent_port: 12751, agent_secret: secret });
    equal(store.vms.get("web")?.agent_secret?.reveal(), secret.reveal());
    equal(store.vms.get("web")?.agent_port, 12751);
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      equal(Deno.statSync(file).mode! & 0o777, 0o600, file);
    }
    store.vms.update("web", { agent_secret: null });
    equal(store.vms.get("web")?.agent_secret, null);
    store.close();
  }));
