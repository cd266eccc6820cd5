import { newVm } from "../store/testing.ts";
import { deepEqual, equal, match, notEqual } from "node:assert/strict";
import { decodeBootConfig } from "../../schema/mod.ts";
import { definePool } from "../../net/mod.ts";
import { makeTestEnv } from "../testing.ts";
import { reconcile } from "./reconcile.ts";

Deno.test("crash reconciliation frees the lease; the next start gets the address back when free", async () => {
  const env = await makeTestEnv();
  try {
    const first = env.open();
    const a = await first.service.create({
      name: "a",
      publish: [{ host_port: 8080, guest_port: 80 }],
    });
    const b = await first.service.create({ name: "b" });
    await first.service.wait("a", "running", 5_000);
    await first.service.wait("b", "running", 5_000);
    await first.close();
    env.registry.kill(a.pid!);
    env.registry.kill(b.pid!);

    const second = env.open();
    const report = await reconcile(second.service);
    deepEqual(report.crashed.sort(), ["a", "b"]);
    deepEqual(report.freed_leases.sort(), [a.ip, b.ip].sort());
    deepEqual(report.orphan_taps, []);
    for (const name of ["a", "b"]) {
      const vm = second.service.get(name);
      equal(vm.state, "crashed");
      equal(vm.ip, null, `${name}'s lease is freed`);
      equal(vm.tap, null);
    }
    equal(env.network.taps.size, 0, "the dead VMMs' taps are deleted");
    equal(env.network.forwards.length, 0, "no forward to an address nobody holds");
    equal(second.store.leases.list().length, 0);

    // b's old address goes to a new VM; a gets its own back, b the next free one.
    equal((await second.service.create({ name: "c" })).ip, a.ip, "the lowest free address");
    const c = second.service.get("c");
    await second.service.delete("c");
    equal(c.ip, a.ip);
    const d = await second.service.create({ name: "d", ip: b.ip! });
    const aAgain = await second.service.start("a");
    equal(aAgain.ip, a.ip, "a gets its previous address back");
    deepEqual(env.network.forwards.map((f) => [f.owner, f.guestIp]), [["a", a.ip]]);
    const bAgain = await second.service.start("b");
    notEqual(bAgain.ip, b.ip, "b's previous address is d's now");
    equal(d.ip, b.ip);
    equal(bAgain.ip, "192.168.127.4");
  } finally {
    await env.dispose();
  }
});

Deno.test("daemon killed between tap creation and VMM launch: the restart removes the orphan tap and lease", async () => {
  const env = await makeTestEnv();
  try {
    const first = env.open();
    // The state such a daemon leaves: a pending row holding its lease, the tap on the host,
    // no VMM. Built with the same store calls create() uses.
    first.store.transaction(() => {
      const row = first.store.vms.insert(newVm("half", { mac: "02:00:00:00:00:01" }));
      first.store.leases.add(row.id, "192.168.127.2");
      first.store.ports.add(row.id, [{ host_port: 8080, guest_port: 80, protocol: "tcp" }]);
    });
    await env.network.createTap("vt-half");
    await env.network.createTap("vt-gone"); // a tap whose row is gone too
    await first.close();

    const second = env.open();
    const report = await reconcile(second.service);
    deepEqual(report.crashed, ["half"]);
    deepEqual(report.orphan_taps, ["vt-gone", "vt-half"]);
    deepEqual(report.freed_leases, ["192.168.127.2"]);
    equal(env.network.taps.size, 0);
    equal(second.store.leases.list().length, 0);
    const vm = second.service.get("half");
    equal(vm.state, "crashed");
    match(vm.last_error ?? "", /being created/);
    deepEqual(env.network.forwards, []);
    // It can be started again and gets its address back.
    equal((await second.service.start("half")).ip, "192.168.127.2");
    equal((await second.service.wait("half", "running", 5_000)).tap, "vt-half");
  } finally {
    await env.dispose();
  }
});

Deno.test("a lease left outside the pool by a config change is replaced at the next start", async () => {
  const env = await makeTestEnv();
  try {
    const first = env.open();
    const old = await first.service.create({
      name: "web",
      publish: [{ host_port: 8080, guest_port: 80 }],
    });
    await first.service.wait("web", "running", 5_000);
    await first.service.stop("web");
    await first.close();
    env.pool = definePool({ subnet: "10.44.0.0/24", gateway: "10.44.0.1" });
    const second = env.open();
    await reconcile(second.service);
    equal(env.network.forwards.length, 0, "no forward to an address outside the subnet");
    equal(second.service.get("web").ip, old.ip, "the lease is kept until the VM starts");
    const started = await second.service.start("web");
    equal(started.ip, "10.44.0.2");
    const vm = await second.service.wait("web", "running", 5_000);
    equal(decodeBootConfig(env.registry.get(vm.pid!)!.spec.cmdline)?.network?.gateway, "10.44.0.1");
    deepEqual(env.network.forwards.map((f) => f.guestIp), ["10.44.0.2"]);
  } finally {
    await env.dispose();
  }
});
