import { equal, match, notEqual, ok, rejects } from "node:assert/strict";
import { writeCpio } from "../../kernels/cpio.ts";
import { type VmRecord, VolantError } from "../../schema/mod.ts";
import type { VmService } from "./vms.ts";
import { makeTestEnv } from "../testing.ts";

const code = (c: string, m: RegExp) => (err: VolantError) => {
  equal(err.code, c);
  match(err.message, m);
  return true;
};

/** VM `web` created and running. */
async function runningWeb(service: VmService): Promise<VmRecord> {
  await service.create({ name: "web", memory_mb: 256 });
  return await service.wait("web", "running", 5_000);
}

Deno.test("clone: a snapshot resumed as a new VM takes its own address, MAC, name and secret before its NIC is connected", async () => {
  const env = await makeTestEnv();
  try {
    const daemon = env.open();
    const service = daemon.service;
    const parent = await runningWeb(service);
    await service.snapshots.create("web", { snapshot: "s1" });
    const created = await service.create({ name: "web2", from_snapshot: "s1" });
    equal(created.memory_mb, 256, "memory comes from the snapshot");
    const clone = await service.wait("web2", "running", 5_000);
    notEqual(clone.ip, parent.ip, "its own lease");
    notEqual(clone.mac, parent.mac, "its own MAC");
    const row = daemon.store.vms.get("web2")!;
    const parentRow = daemon.store.vms.get("web")!;
    notEqual(row.agent_secret?.reveal(), parentRow.agent_secret?.reveal(), "its own secret");
    const proc = env.registry.get(row.handle!.pid)!;
    equal(proc.restoredFrom, `${service.snapshots.dir}/s1/state`, "resumed, not booted");
    equal(proc.spec.nicsDisconnected, true, "its NIC came back disconnected");
    ok(proc.nicsConnected, "and was connected once the identity was applied");
    equal(proc.identity.name, "web2");
    equal(proc.identity.ip, clone.ip);
    equal(proc.identity.applied.length, 1);
    const sent = proc.identity.applied[0]!;
    equal(sent.agent.secret, row.agent_secret?.reveal(), "kestrel got the secret the row holds");
    equal(sent.network.mac, clone.mac);
    equal(atob(sent.entropy).length, 64, "64 bytes of host entropy");
    ok(Math.abs(sent.time_ms - Date.now()) < 60_000, "the host's clock");
    // The parent runs on as itself.
    const parentProc = env.registry.get(parentRow.handle!.pid)!;
    equal(parentProc.identity.name, "web");
    equal((await service.get("web")).state, "running");
    // The snapshot stays (it was named by the user) and can make another clone.
    await service.create({ name: "web3", from_snapshot: "s1" });
    const third = await service.wait("web3", "running", 5_000);
    ok(![parent.ip, clone.ip].includes(third.ip));
  } finally {
    await env.dispose();
  }
});

Deno.test("clone: vms clone makes N clones, each its own; the snapshot is deleted unless kept", async () => {
  const env = await makeTestEnv();
  try {
    const daemon = env.open();
    const service = daemon.service;
    await runningWeb(service);
    const result = await service.clone("web", { clone: "fork", count: 3 });
    equal(result.vms.map((v) => v.name).join(), "fork-1,fork-2,fork-3");
    equal(result.snapshot, "fork-base");
    equal(result.snapshot_kept, false);
    const running = await Promise.all(
      result.vms.map((v) => service.wait(v.name, "running", 5_000)),
    );
    equal(new Set([...running.map((v) => v.ip), service.get("web").ip]).size, 4, "4 addresses");
    equal((await service.snapshots.list()).length, 0, "the snapshot is gone");
    const kept = await service.clone("web", { clone: "one", keep_snapshot: true });
    equal(kept.vms.map((v) => v.name).join(), "one");
    equal((await service.snapshots.get("one-base")).vm, "web");
    await rejects(
      service.clone("web", { clone: "fork", count: 2 }),
      code("already_exists", /name: VM fork-1 already exists/),
    );
    await rejects(
      service.clone("web", { clone: "x".repeat(62), count: 10 }),
      code("invalid_argument", /count 10 .* over 63 characters/),
    );
  } finally {
    await env.dispose();
  }
});

Deno.test("clone: kestrel refusing its identity fails the clone and leaves nothing (no row, lease, VMM); other clones are undone", async () => {
  const env = await makeTestEnv();
  try {
    const daemon = env.open();
    const service = daemon.service;
    await runningWeb(service);
    await service.snapshots.create("web", { snapshot: "s1" });
    daemon.driver.setBehavior({ control: "fail" });
    await rejects(
      service.create({ name: "web2", from_snapshot: "s1" }),
      code("vmm_failed", /web2: kestrel could not take its new identity: network: injected/),
    );
    equal(daemon.store.vms.get("web2"), undefined, "no row");
    equal(env.registry.alive().length, 1, "only the parent's VMM runs");
    // The second clone fails: the first, already running, is undone too.
    daemon.driver.setBehavior((spec) => spec.id === "f-2" ? { control: "fail" } : {});
    await rejects(
      service.clone("web", { clone: "f", count: 2 }),
      code("vmm_failed", /f-2: kestrel could not take/),
    );
    equal(service.list().map((v) => v.name).join(), "web", "nothing of the clones is left");
    equal((await service.snapshots.list()).map((s) => s.name).join(), "s1", "f-base removed");
    daemon.driver.setBehavior({});
    const ok2 = await service.create({ name: "web2", from_snapshot: "s1" });
    equal(ok2.name, "web2", "the name and the snapshot are usable again");
  } finally {
    await env.dispose();
  }
});

Deno.test("clone: bad input names the field and creates nothing", async () => {
  const env = await makeTestEnv();
  try {
    const daemon = env.open();
    const service = daemon.service;
    await rejects(
      service.create({ name: "web2", from_snapshot: "s1", plugin: "app" }),
      code("invalid_argument", /plugin.*comes from the snapshot/),
    );
    await rejects(
      service.create({ name: "web2", from_snapshot: "nope" }),
      code("not_found", /from_snapshot: no snapshot named nope/),
    );
    await rejects(service.clone("ghost", { clone: "g2" }), code("not_found", /ghost/));
    await runningWeb(service);
    await service.stop("web");
    await rejects(
      service.clone("web", { clone: "g2" }),
      code("invalid_state", /web is stopped: only a running VM/),
    );
    equal(service.list().length, 1);
    equal((await service.snapshots.list()).length, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("clone: a driver without a guest control port refuses before any VMM runs", async () => {
  const env = await makeTestEnv();
  try {
    const daemon = env.open({ control: false });
    const service = daemon.service;
    await runningWeb(service);
    await service.snapshots.create("web", { snapshot: "s1" });
    await rejects(
      service.create({ name: "web2", from_snapshot: "s1" }),
      code("unsupported", /from_snapshot: the qemu driver cannot give a resumed clone its own/),
    );
    equal(env.registry.alive().length, 1, "no VMM was started for it");
    equal(daemon.store.vms.get("web2"), undefined);
  } finally {
    await env.dispose();
  }
});

Deno.test("clone: a snapshot of an init none appliance (no kestrel to take an identity) is refused", async () => {
  const env = await makeTestEnv();
  try {
    const daemon = env.open();
    const service = daemon.service;
    const archive = writeCpio([
      { type: "file", path: "hello", data: new TextEncoder().encode("hi\n"), mode: 0o644 },
    ]);
    await Deno.writeFile(`${env.root}/bare.cpio`, archive);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(archive)));
    await daemon.plugins.install({
      manifest: {
        name: "bare",
        version: "1.0.0",
        initramfs: {
          url: `${env.root}/bare.cpio`,
          checksum: `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`,
        },
        init: { mode: "none" },
        resources: { cpu_cores: 1, memory_mb: 128 },
        workload: { entrypoint: ["/bin/httpd"], base_url: "http://127.0.0.1:80" },
      },
      allow_unsigned: true,
    });
    await service.create({ name: "web", plugin: "bare" });
    await service.wait("web", "running", 5_000);
    await service.snapshots.create("web", { snapshot: "s1" });
    await rejects(
      service.create({ name: "web2", from_snapshot: "s1" }),
      code("invalid_argument", /from_snapshot: snapshot s1 is of a plugin with init.mode none/),
    );
    equal(env.registry.alive().length, 1, "nothing was started for it");
    equal(daemon.store.vms.get("web2"), undefined);
  } finally {
    await env.dispose();
  }
});
