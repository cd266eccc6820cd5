import { deepEqual, equal, throws } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DEFAULT_NETWORK_POLICY, type NetworkPolicy, VolantError } from "../../schema/mod.ts";
import { newVm } from "./testing.ts";
import { migrate, MIGRATIONS, openStore, type Store } from "./mod.ts";

async function withStore(fn: (store: Store) => void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-store-policy-" });
  const store = openStore(`${dir}/volant.db`);
  try {
    fn(store);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const policy = (patch: Partial<NetworkPolicy>): NetworkPolicy => ({
  ...structuredClone(DEFAULT_NETWORK_POLICY),
  ...patch,
});

Deno.test("a VM without a stored policy has the default; set replaces it whole", async () => {
  await withStore((store) => {
    const web = store.vms.insert(newVm("web"));
    const db = store.vms.insert(newVm("db"));
    deepEqual(store.vms.get("web")!.network_policy, DEFAULT_NETWORK_POLICY);
    const wanted = policy({
      egress: "deny",
      allow_egress: [{ cidr: "198.51.100.0/24", protocol: "tcp", port: 443 }],
      allow_from: ["web"],
      allow_host_ports: [{ port: 53, protocol: "udp" }],
    });
    store.transaction(() => store.policies.set(db.id, wanted));
    deepEqual(store.vms.get("db")!.network_policy, wanted);
    deepEqual(store.policies.get(db.id), wanted);
    deepEqual(store.vms.list().map((v) => v.network_policy), [wanted, DEFAULT_NETWORK_POLICY]);
    deepEqual(store.policies.all().get(db.id), wanted);
    equal(store.policies.all().has(web.id), false, "web has none stored");

    store.policies.set(db.id, policy({}));
    deepEqual(store.vms.get("db")!.network_policy, DEFAULT_NETWORK_POLICY);
  });
});

Deno.test("peers: must exist, cannot be the VM itself, go with the peer", async () => {
  await withStore((store) => {
    const a = store.vms.insert(newVm("a"));
    const b = store.vms.insert(newVm("b"));
    store.vms.insert(newVm("c"));
    const refused = (p: NetworkPolicy, field: string | undefined, message: RegExp) =>
      throws(() => store.transaction(() => store.policies.set(b.id, p, field)), (err) => {
        equal((err as VolantError).code, "invalid_argument");
        return message.test((err as Error).message);
      });
    refused(
      policy({ allow_from: ["a", "ghost"] }),
      undefined,
      /^network_policy\.allow_from\[1\]: VM ghost does not exist/,
    );
    refused(policy({ allow_from: ["b"] }), "", /^allow_from\[0\]: b is this VM/);
    deepEqual(store.vms.get("b")!.network_policy, DEFAULT_NETWORK_POLICY, "nothing written");

    store.policies.set(b.id, policy({ allow_from: ["c", "a"] }));
    deepEqual(store.vms.get("b")!.network_policy.allow_from, ["c", "a"], "in the order given");
    store.vms.delete("a");
    deepEqual(store.vms.get("b")!.network_policy.allow_from, ["c"], "a deleted peer goes");
    store.vms.insert(newVm("a"));
    deepEqual(
      store.vms.get("b")!.network_policy.allow_from,
      ["c"],
      "a new VM with the old name is not trusted",
    );
    equal(a.id !== store.vms.get("a")!.id, true);
    store.vms.delete("b");
    equal(store.policies.all().size, 0, "its own rows went with it");
  });
});

Deno.test("migration 5 gives VMs of an older database the default policy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-store-policy-" });
  try {
    const path = `${dir}/volant.db`;
    const old = new DatabaseSync(path);
    migrate(old, MIGRATIONS.filter((m) => m.version <= 4));
    old.prepare(
      "INSERT INTO vms (name, state, cpu_cores, memory_mb, kernel, hypervisor, kvm, created_at, " +
        "updated_at) VALUES ('old', 'stopped', 1, 256, 'bzImage-volant', 'qemu', 0, 't0', 't0')",
    ).run();
    old.close();
    const store = openStore(path);
    try {
      deepEqual(store.vms.get("old")!.network_policy, DEFAULT_NETWORK_POLICY);
    } finally {
      store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("policies roll back with their transaction", async () => {
  await withStore((store) => {
    const a = store.vms.insert(newVm("a"));
    throws(() =>
      store.transaction(() => {
        store.policies.set(a.id, policy({ egress: "deny" }));
        throw new VolantError("internal", "later step failed");
      }), /later step failed/);
    deepEqual(store.vms.get("a")!.network_policy, DEFAULT_NETWORK_POLICY);
  });
});
