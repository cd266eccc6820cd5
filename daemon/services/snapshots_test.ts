import { equal, match, notEqual, ok, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import { makeTestEnv } from "../testing.ts";

const code = (c: string, m: RegExp) => (err: VolantError) => {
  equal(err.code, c);
  match(err.message, m);
  return true;
};

/** A snapshot directory as a save would leave it (files + snapshot.json with checksums). */
async function plant(dir: string, name: string, vm: string, memory = 256): Promise<void> {
  const data = new TextEncoder().encode("saved guest state");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  const sha = `sha256:${[...digest].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  await Deno.mkdir(`${dir}/${name}/state`, { recursive: true });
  await Deno.writeFile(`${dir}/${name}/state/qemu-state.bin`, data);
  const record = {
    name,
    vm,
    created_at: new Date(0).toISOString(),
    hypervisor: "qemu",
    kvm: false,
    cpu_cores: 1,
    memory_mb: memory,
    plugin: null,
    image: null,
    bytes: data.length,
    save_ms: 5,
    files: [{ path: "state/qemu-state.bin", bytes: data.length, sha256: sha }],
  };
  await Deno.writeTextFile(
    `${dir}/${name}/snapshot.json`,
    JSON.stringify({ record, agent: { port: 12751, secret: "x".repeat(43) } }),
  );
}

Deno.test("snapshots: listed, shown and deleted; what a killed save left is swept; the secret stays in", async () => {
  const env = await makeTestEnv();
  try {
    const daemon = env.open();
    const snaps = daemon.service.snapshots;
    equal((await snaps.list()).length, 0, "no directory yet: none");
    await plant(snaps.dir, "s1", "web");
    await Deno.mkdir(`${snaps.dir}/.partial-s2-1234abcd/state`, { recursive: true });
    await snaps.gc();
    ok(!(await Deno.stat(`${snaps.dir}/.partial-s2-1234abcd`).then(() => true, () => false)));
    const list = await snaps.list();
    equal(list.map((s) => s.name).join(), "s1");
    ok(!JSON.stringify(list).includes("secret"));
    equal((await snaps.get("s1")).vm, "web");
    await rejects(snaps.get("nope"), code("not_found", /No snapshot named nope/));
    equal((await snaps.remove("s1")).name, "s1");
    equal((await snaps.list()).length, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("snapshots: refusals name the reason and change nothing", async () => {
  const env = await makeTestEnv();
  try {
    const daemon = env.open();
    const snaps = daemon.service.snapshots;
    await daemon.service.create({ name: "web", memory_mb: 256 });
    await daemon.service.wait("web", "running", 5_000);
    await rejects(snaps.create("ghost", {}), code("not_found", /ghost/));
    await rejects(
      snaps.create("web", { snapshot: "Bad Name" }),
      code("invalid_argument", /snapshot/),
    );
    await plant(snaps.dir, "other", "db");
    await rejects(
      snaps.restore("web", { from: "other", force: true }),
      code("invalid_argument", /from: snapshot other is of VM db, not web/),
    );
    await plant(snaps.dir, "big", "web", 1024);
    await rejects(
      snaps.restore("web", { from: "big", force: true }),
      code("invalid_argument", /has 1 CPUs and 1024 MiB; VM web now has 1 and 256/),
    );
    await plant(snaps.dir, "mine", "web");
    await rejects(
      snaps.restore("web", { from: "mine" }),
      code("invalid_state", /web is running: restoring replaces its state; pass force/),
    );
    await Deno.writeTextFile(`${snaps.dir}/mine/state/qemu-state.bin`, "tampered guest state");
    await rejects(
      snaps.restore("web", { from: "mine", force: true }),
      code("invalid_state", /snapshot mine: state\/qemu-state\.bin does not match its checksum/),
    );
    await rejects(snaps.restore("web", { from: "ghost" }), code("not_found", /ghost/));
    await rejects(snaps.restore("web", {}), code("invalid_argument", /from/));
    equal((await daemon.service.get("web")).state, "running", "the VM was left as it was");
  } finally {
    await env.dispose();
  }
});

Deno.test("snapshots: a running VM is saved and restored in place (fake driver): same address, fresh entropy, clock and secret, no second boot", async () => {
  const env = await makeTestEnv();
  try {
    const daemon = env.open();
    const snaps = daemon.service.snapshots;
    const vm = await daemon.service.create({ name: "web" });
    await daemon.service.wait("web", "running", 5_000);
    const before = daemon.store.vms.get("web")!;
    const record = await snaps.create("web", { snapshot: "s1" });
    equal(record.vm, "web");
    equal(record.hypervisor, "qemu");
    ok(record.files.length > 0 && record.files.every((f) => f.path.startsWith("state/")));
    equal((await daemon.service.get("web")).state, "running", "it runs on after the save");
    await rejects(snaps.create("web", { snapshot: "s1" }), code("already_exists", /s1/));
    ok(!(await Array.fromAsync(Deno.readDir(snaps.dir))).some((e) => e.name.startsWith(".")));
    equal((await Deno.stat(`${snaps.dir}/s1/snapshot.json`)).mode! & 0o777, 0o600);

    await daemon.service.stop("web");
    await rejects(
      snaps.create("web", {}),
      code("invalid_state", /web is stopped: only a running VM/),
    );
    const restored = await snaps.restore("web", { from: "s1" });
    equal(restored.state, "starting");
    const running = await daemon.service.wait("web", "running", 5_000);
    equal(running.ip, vm.ip, "same address");
    const after = daemon.store.vms.get("web")!;
    const proc = env.registry.get(after.handle!.pid)!;
    equal(proc.restoredFrom, `${snaps.dir}/s1/state`, "the VMM started from the saved state");
    // Back in time, it is told the present: new entropy, the clock, a secret not on disk.
    equal(proc.identity.applied.length, 1);
    const sent = proc.identity.applied[0]!;
    equal(sent.name, "web");
    equal(sent.network.ip, vm.ip, "its own address, unchanged");
    equal(atob(sent.entropy).length, 64);
    notEqual(after.agent_secret?.reveal(), before.agent_secret?.reveal(), "a new secret");
    equal(sent.agent.secret, after.agent_secret?.reveal());
    ok(proc.nicsConnected);
    // Taking and deleting snapshots are events (a refused one is none).
    await snaps.remove("s1");
    const events = daemon.store.events.after(0, 100)
      .filter((e) => e.type.startsWith("snapshot."))
      .map((
        e,
      ) => [e.type, e.name, e.type.startsWith("snapshot.") && "snapshot" in e && e.snapshot.vm]);
    equal(
      JSON.stringify(events),
      JSON.stringify([
        ["snapshot.created", "s1", "web"],
        ["snapshot.deleted", "s1", "web"],
      ]),
    );
  } finally {
    await env.dispose();
  }
});

Deno.test("snapshots: without a guest control port a restore keeps the saved secret (nothing to tell the guest)", async () => {
  const env = await makeTestEnv();
  try {
    const daemon = env.open({ control: false });
    const snaps = daemon.service.snapshots;
    await daemon.service.create({ name: "web" });
    await daemon.service.wait("web", "running", 5_000);
    const before = daemon.store.vms.get("web")!;
    await snaps.create("web", { snapshot: "s1" });
    await snaps.restore("web", { from: "s1", force: true });
    await daemon.service.wait("web", "running", 5_000);
    const after = daemon.store.vms.get("web")!;
    equal(after.agent_secret?.reveal(), before.agent_secret?.reveal(), "kestrel's saved secret");
    equal(env.registry.get(after.handle!.pid)!.identity.applied.length, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test({
  name: "snapshots: a full disk mid-snapshot is a clear error; the VM runs on, nothing is kept" +
    (Deno.uid() === 0 ? "" : " (skipped: mounting a small tmpfs needs root)"),
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const env = await makeTestEnv();
    const daemon = env.open();
    const snaps = daemon.service.snapshots;
    await Deno.mkdir(snaps.dir, { recursive: true });
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=256k", "tmpfs", snaps.dir],
    }).output();
    ok(mount.success, "mount a 256 KiB tmpfs on the snapshots dir");
    try {
      await daemon.service.create({ name: "web" });
      await daemon.service.wait("web", "running", 5_000);
      // A writable disk larger than the space left: its copy cannot fit.
      const disks = `${env.stateDir}/vms/web`;
      await Deno.mkdir(disks, { recursive: true });
      await Deno.writeFile(`${disks}/writable.ext4`, crypto.getRandomValues(new Uint8Array(65536)));
      for (let i = 0; i < 8; i++) {
        await Deno.writeFile(
          `${disks}/writable.ext4`,
          crypto.getRandomValues(new Uint8Array(65536)),
          {
            append: true,
          },
        );
      }
      await rejects(
        snaps.create("web", { snapshot: "s1" }),
        code("invalid_state", /snapshot s1 of web: no space left on the filesystem holding/),
      );
      equal((await daemon.service.get("web")).state, "running");
      equal(
        env.registry.get(daemon.store.vms.get("web")!.handle!.pid)?.state,
        "running",
        "resumed",
      );
      equal((await Array.fromAsync(Deno.readDir(snaps.dir))).length, 0, "nothing kept");
    } finally {
      await new Deno.Command("umount", { args: ["-l", snaps.dir] }).output();
      await env.dispose();
    }
  },
});
