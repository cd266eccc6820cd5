import { readCpio } from "../../kernels/cpio.ts";
import { deepEqual, equal, match, notEqual, ok, rejects } from "node:assert/strict";
import { VmRecord, VolantError } from "../../schema/mod.ts";
import { caught, exists, makeTestEnv, type TestEnv } from "../testing.ts";
import { vmPaths } from "./spec.ts";

async function assertNothingLeft(env: TestEnv, name: string, rows: number): Promise<void> {
  const d = env.open();
  try {
    equal(d.store.vms.get(name), undefined, "row left behind");
    equal(d.store.vms.count(), rows);
    equal(d.store.leases.list().length, rows, "a lease left behind");
    ok(d.store.ports.list().every((p) => p.vm !== name), "a published port left behind");
  } finally {
    await d.close();
  }
  const paths = vmPaths(env.config, name);
  equal(await exists(paths.runtimeDir), false, "runtime dir left behind");
  equal(await exists(paths.logDir), false, "log dir left behind");
  deepEqual(env.registry.alive().filter((p) => p.spec.id === name).map((p) => p.pid), []);
  ok(!env.network.taps.has(`vt-${name}`), "tap left behind");
  ok(env.network.forwards.every((f) => f.owner !== name), "forward left behind");
}

Deno.test("VM lifecycle: create → running → stop → start → delete", async () => {
  const env = await makeTestEnv();
  const { service, store } = env.open();
  try {
    const states: string[] = [];
    service.events.subscribe((e) => states.push(e.type === "vm.state" ? e.to : "deleted"));

    const created = await service.create({ name: "web", memory_mb: 256 });
    VmRecord.parse(created);
    equal(created.state, "starting");
    ok(created.pid !== null && created.started_at !== null);
    const paths = vmPaths(env.config, "web");
    ok(await exists(paths.runtimeDir));
    ok(await exists(`${paths.runtimeDir}/fake-vmm.sock`));
    const proc = env.registry.get(created.pid!)!;
    ok(proc.alive);
    equal(proc.spec.disks[0]?.path, `${env.guestDir}/runtime.erofs`);
    equal(proc.spec.disks[0]?.readOnly, true);
    equal(proc.spec.initramfs, paths.initramfs);
    const initramfs = await Deno.readFile(paths.initramfs);
    const shared = await Deno.readFile(`${env.guestDir}/initramfs.cpio`);
    deepEqual(initramfs.subarray(0, shared.length), shared, "the shared stage 0 comes first");
    const boot = readCpio(initramfs.subarray(shared.length + ((4 - shared.length % 4) % 4)));
    const config = JSON.parse(
      new TextDecoder().decode(boot.find((m) => m.path === "volant/boot.json")?.data),
    );
    deepEqual([config.name, config.network.ip], ["web", created.ip]);
    match(proc.spec.cmdline, /^console=ttyS0 quiet reboot=t panic=-1 tsc=reliable volant\.boot=/);
    equal(proc.spec.serialLog, `${env.logDir}/vms/web/serial.log`);

    const running = await service.wait("web", "running", 5_000);
    equal(running.state, "running");
    ok(typeof running.boot_ms === "number" && running.boot_ms >= 0);
    ok(running.ready_at !== null);

    const stopped = await service.stop("web");
    equal(stopped.state, "stopped");
    equal(stopped.pid, null);
    equal(proc.alive, false);
    equal(await exists(`${paths.runtimeDir}/fake-vmm.sock`), false, "socket not cleaned up");
    equal(store.vms.get("web")?.handle, null);

    const started = await service.start("web");
    equal(started.state, "starting");
    notEqual(started.pid, created.pid);
    const again = await service.wait("web", "running", 5_000);
    ok(again.boot_ms !== null);

    const deleted = await service.delete("web");
    equal(deleted.name, "web");
    equal(deleted.state, "stopped");
    equal(store.vms.get("web"), undefined);
    equal(await exists(paths.runtimeDir), false);
    equal(await exists(paths.logDir), false);
    equal(env.registry.alive().length, 0);
    deepEqual(states, [
      "pending",
      "starting",
      "running",
      "stopping",
      "stopped",
      "starting",
      "running",
      "stopping",
      "stopped",
      "deleted",
    ]);
  } finally {
    await env.dispose();
  }
});

Deno.test("a VMM that dies on its own leaves the VM crashed with its log tail", async () => {
  const env = await makeTestEnv();
  const { service, store } = env.open();
  try {
    const vm = await service.create({ name: "crashy" });
    await service.wait("crashy", "running", 5_000);
    env.registry.kill(vm.pid!, "qemu: terminating on signal 9 from pid 1");
    const crashed = await service.wait("crashy", "crashed", 5_000);
    equal(crashed.pid, null);
    match(crashed.last_error ?? "", /exited unexpectedly while the VM was running/);
    match(crashed.last_error ?? "", /terminating on signal 9/);
    equal(store.vms.get("crashy")?.handle, null);
    equal(await exists(`${vmPaths(env.config, "crashy").runtimeDir}/fake-vmm.sock`), false);
    // A crashed VM can be started again.
    await service.start("crashy");
    const back = await service.wait("crashy", "running", 5_000);
    equal(back.last_error, null);
  } finally {
    await env.dispose();
  }
});

Deno.test("a guest that panics during boot is crashed; waiting for running says so", async () => {
  const env = await makeTestEnv();
  const { service, driver } = env.open();
  try {
    driver.setBehavior({ neverReady: true, crashAfterMs: 30 });
    await service.create({ name: "panic" });
    const err = await caught(() => service.wait("panic", "running", 5_000));
    equal(err.code, "invalid_state");
    match(err.message, /crashed; it cannot become running/);
    match(service.get("panic").last_error ?? "", /Kernel panic/);
    equal(env.registry.alive().length, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("a guest that never becomes ready is stopped and crashed after ready_ms", async () => {
  const env = await makeTestEnv({ readyMs: 150 });
  const { service, driver } = env.open();
  try {
    driver.setBehavior({ neverReady: true });
    await service.create({ name: "mute" });
    const err = await caught(() => service.wait("mute", "running", 5_000));
    equal(err.code, "invalid_state");
    const vm = service.get("mute");
    equal(vm.state, "crashed");
    equal(vm.pid, null);
    match(
      vm.last_error ?? "",
      /never became ready: kestrel did not answer http:\/\/192\.168\.127\.2:12751\/healthz within 150 ms/,
    );
    match(vm.last_error ?? "", /printed no KESTREL_READY line/);
    match(vm.last_error ?? "", /Linux version/);
    equal(vm.tap, null, "the tap went with the VMM");
    equal(vm.ip, "192.168.127.2", "the lease stays with the VM");
    deepEqual([...env.network.taps], []);
    equal(env.registry.alive().length, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("bad create requests fail with the right code and leave nothing behind", async (t) => {
  const env = await makeTestEnv();
  const { service, driver } = env.open();
  try {
    await service.create({ name: "taken" });
    const takenPid = service.get("taken").pid;
    const cases: Array<[string, unknown, string, RegExp, string]> = [
      ["bad name", { name: "Web_1" }, "invalid_argument", /name/, "Web_1"],
      [
        "memory out of range",
        { name: "big", memory_mb: 1 },
        "invalid_argument",
        /memory_mb/,
        "big",
      ],
      ["unknown field", { name: "odd", color: "red" }, "invalid_argument", /color/, "odd"],
      [
        "unknown kernel",
        { name: "vml", kernel: "vmlinux-generic" },
        "kernel_not_found",
        /volant up/,
        "vml",
      ],
      ["not an object", "web", "invalid_argument", /body/, "web"],
    ];
    for (const [label, body, code, message, name] of cases) {
      await t.step(label, async () => {
        const err = await caught(() => service.create(body));
        equal(err.code, code, err.message);
        match(err.message, message);
        await assertNothingLeft(env, name, 1);
      });
    }
    await t.step("duplicate name", async () => {
      const err = await caught(() => service.create({ name: "taken" }));
      equal(err.code, "already_exists");
      equal(service.get("taken").pid, takenPid);
      equal(env.registry.alive().length, 1);
    });
    await t.step("driver create failure", async () => {
      driver.setBehavior({ createError: new VolantError("vmm_failed", "qemu: boom") });
      const err = await caught(() => service.create({ name: "nocreate" }));
      equal(err.code, "vmm_failed");
      match(err.message, /boom/);
      await assertNothingLeft(env, "nocreate", 1);
    });
    await t.step("driver boot failure kills the process", async () => {
      driver.setBehavior({ bootError: new VolantError("vmm_failed", "cont failed") });
      const err = await caught(() => service.create({ name: "noboot" }));
      equal(err.code, "vmm_failed");
      await assertNothingLeft(env, "noboot", 1);
      equal(env.registry.alive().length, 1);
    });
    await t.step("guest files vanish between check and launch", async () => {
      driver.setBehavior({});
      await Deno.remove(`${env.guestDir}/initramfs.cpio`);
      const err = await caught(() => service.create({ name: "nofiles" }));
      equal(err.code, "kernel_not_found");
      match(err.message, /initramfs/);
      await assertNothingLeft(env, "nofiles", 1);
    });
  } finally {
    await env.dispose();
  }
});

Deno.test("actions are refused in states that do not allow them", async () => {
  const env = await makeTestEnv();
  const { service } = env.open();
  try {
    await service.create({ name: "web" });
    await service.wait("web", "running", 5_000);
    const start = await caught(() => service.start("web"));
    equal(start.code, "invalid_state");
    match(start.message, /^VM web is running; cannot start it/);
    await service.stop("web");
    const stop = await caught(() => service.stop("web"));
    equal(stop.code, "invalid_state");
    match(stop.message, /^VM web is stopped; cannot stop it/);
    equal((await caught(() => service.start("nope"))).code, "not_found");
    equal((await caught(() => service.delete("nope"))).code, "not_found");
  } finally {
    await env.dispose();
  }
});

Deno.test("the stop ladder falls through to SIGTERM and SIGKILL", async () => {
  const env = await makeTestEnv({ stopGracefulMs: 50, stopTermMs: 50 });
  const { service, driver } = env.open();
  try {
    driver.setBehavior({ ignorePowerButton: true });
    await service.create({ name: "deaf" });
    await service.wait("deaf", "running", 5_000);
    equal((await service.stop("deaf")).state, "stopped");
    driver.setBehavior({ ignorePowerButton: true, ignoreSigterm: true });
    await service.start("deaf");
    await service.wait("deaf", "running", 5_000);
    equal((await service.stop("deaf")).state, "stopped");
    const vias = env.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "vmm stopped")
      .map((l) => l.via);
    deepEqual(vias, ["sigterm", "sigkill"]);
    equal(env.registry.alive().length, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("restart replaces the VMM; concurrent requests on one VM are ordered", async () => {
  const env = await makeTestEnv();
  const { service } = env.open();
  try {
    const first = await service.create({ name: "web" });
    const [dup, restarted] = await Promise.allSettled([
      service.create({ name: "web" }),
      service.restart("web"),
    ]);
    equal(dup.status, "rejected");
    equal(((dup as PromiseRejectedResult).reason as VolantError).code, "already_exists");
    equal(restarted.status, "fulfilled");
    const now = await service.wait("web", "running", 5_000);
    notEqual(now.pid, first.pid);
    equal(env.registry.get(first.pid!)?.alive, false);
    const [stop, del] = await Promise.allSettled([service.stop("web"), service.delete("web")]);
    equal(stop.status, "fulfilled");
    equal(del.status, "fulfilled");
    equal(service.count(), 0);
    equal(env.registry.alive().length, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("wait: timeout, not_found, and immediate answers", async () => {
  const env = await makeTestEnv();
  const { service, driver } = env.open();
  try {
    driver.setBehavior({ readyDelayMs: 2_000 });
    await service.create({ name: "slow" });
    const err = await caught(() => service.wait("slow", "running", 50));
    equal(err.code, "timeout");
    match(err.message, /did not become running within 50 ms \(it is starting\)/);
    equal((await caught(() => service.wait("ghost", "running", 50))).code, "not_found");
    equal((await service.wait("slow", "starting", 0)).state, "starting");
    const waiting = caught(() => service.wait("slow", "running", 5_000));
    await service.delete("slow");
    const stopped = await waiting;
    equal(stopped.code, "invalid_state");
    match(stopped.message, /is stopping; it cannot become running/);
  } finally {
    await env.dispose();
  }
});

Deno.test("a failed start keeps the VM's state and records the error", async () => {
  const env = await makeTestEnv();
  const { service, driver } = env.open();
  try {
    await service.create({ name: "web" });
    await service.stop("web");
    await Deno.rename(`${env.guestDir}/bzImage-volant`, `${env.guestDir}/moved`);
    const missing = await caught(() => service.start("web"));
    equal(missing.code, "kernel_not_found");
    const vm = service.get("web");
    equal(vm.state, "stopped");
    match(vm.last_error ?? "", /bzImage-volant is missing/);
    await Deno.rename(`${env.guestDir}/moved`, `${env.guestDir}/bzImage-volant`);
    driver.setBehavior({ bootError: new VolantError("vmm_failed", "cont refused") });
    equal((await caught(() => service.start("web"))).code, "vmm_failed");
    const crashed = service.get("web");
    equal(crashed.state, "crashed");
    equal(crashed.pid, null);
    match(crashed.last_error ?? "", /cont refused/);
    equal(env.registry.alive().length, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("closing the service fails pending waits and leaves VMs running", async () => {
  const env = await makeTestEnv();
  const daemon = env.open();
  try {
    daemon.driver.setBehavior({ readyDelayMs: 10_000 });
    const vm = await daemon.service.create({ name: "web" });
    const waiting = caught(() => daemon.service.wait("web", "running", 10_000));
    await daemon.close();
    equal((await waiting).code, "daemon_unreachable");
    equal(env.registry.get(vm.pid!)?.alive, true);
    equal((await caught(() => daemon.service.create({ name: "late" }))).code, "daemon_unreachable");
  } finally {
    await env.dispose();
  }
});

Deno.test("a VM shows what it runs with now: created under KVM, started again under TCG", async () => {
  const env = await makeTestEnv();
  try {
    const kvmDaemon = env.open({ kvm: true });
    await kvmDaemon.service.create({ name: "web" });
    const onKvm = await kvmDaemon.service.wait("web", "running", 5_000);
    equal(onKvm.kvm, true);
    await kvmDaemon.service.stop("web");
    await kvmDaemon.close();
    // The next daemon's driver runs guests under TCG (e.g. its KVM probe failed).
    const tcgDaemon = env.open({ kvm: false });
    const started = await tcgDaemon.service.start("web");
    equal(started.kvm, false, "the record follows the run, not the create");
    equal((await tcgDaemon.service.wait("web", "running", 5_000)).kvm, false);
  } finally {
    await env.dispose();
  }
});

Deno.test("a kernel the hypervisor cannot boot is refused before anything is created", async () => {
  const env = await makeTestEnv({ defaultKernel: "auto" });
  try {
    await Deno.writeTextFile(`${env.guestDir}/vmlinux-generic`, "dummy\n");
    const { service, store } = env.open({ name: "cloud-hypervisor", kernelFormats: ["vmlinux"] });
    await rejects(
      () => service.create({ name: "web", kernel: "bzImage-volant" }),
      (e: VolantError) => {
        equal(e.code, "invalid_argument");
        match(
          e.message,
          /^kernel: bzImage-volant is a bzImage image, which cloud-hypervisor cannot/,
        );
        match(e.message, /leave kernel unset to get vmlinux-generic$/);
        return true;
      },
    );
    equal(store.vms.get("web"), undefined, "nothing half-created");
    equal(env.registry.alive().length, 0);
    // Unset, `auto` gives this hypervisor its own kernel.
    const created = await service.create({ name: "web" });
    equal(created.kernel, "vmlinux-generic");
    equal(env.registry.get(created.pid!)?.spec.kernel.path, `${env.guestDir}/vmlinux-generic`);
  } finally {
    await env.dispose();
  }
});

Deno.test("VmService: the boot timeline from kestrel's ready line lands on the VM, reset at each start", async () => {
  const env = await makeTestEnv();
  try {
    const timeline = { kernel_ms: 700, stage0_ms: 1200, kestrel_ms: 2100, ready_ms: 2400 };
    const daemon = env.open({ behavior: { readyReport: { timeline } } });
    await daemon.service.create({ name: "web" });
    const vm = await daemon.service.wait("web", "running", 5_000);
    const deadline = Date.now() + 5_000;
    while (daemon.service.get("web").timeline === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    deepEqual(daemon.service.get("web").timeline, timeline);
    ok(vm.boot_ms !== null);
    daemon.driver.setBehavior({});
    await daemon.service.restart("web");
    equal(daemon.service.get("web").timeline, null, "a new run starts without one");
  } finally {
    await env.dispose();
  }
});
