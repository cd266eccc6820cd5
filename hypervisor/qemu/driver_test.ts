import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { READY_MARKER, VolantError } from "../../schema/mod.ts";
import { processesMentioning, runDriverContract } from "../contract_suite.ts";
import type { VmmHandle, VmSpec } from "../driver.ts";
import { detectKvm } from "../kvm.ts";
import { isAlive, readProcStat } from "../process/mod.ts";
import { buildBusyboxGuest, findTestKernel, testKernelDir } from "../testing/busybox_guest.ts";
import { createNetns, createTap, deleteNetns, netnsUnavailable } from "../testing/netns.ts";
import { QEMU_SANDBOX, qemuArgs, qemuPaths } from "./cmdline.ts";
import { qmpExecute } from "./qmp.ts";
import {
  cgroupParentDirs,
  createVmmCgroup,
  detectCgroupHost,
  prepareCgroupParent,
  removeVmmCgroup,
  type VmmJail,
  vmmLimits,
} from "../jail/mod.ts";
import { openQemuDriver } from "./open.ts";
import { probeQemu } from "./probe.ts";
import { testAccel } from "../../daemon/boot_probe/testing.ts";

const probe = await probeQemu("qemu-system-x86_64");
const kernel = await findTestKernel();
const ignore = !probe.available
  ? `QEMU is unavailable here: ${probe.reason}`
  : "reason" in kernel
  ? kernel.reason
  : (await netnsUnavailable()) ?? undefined;
if (ignore) console.log(`skipping the QEMU driver tests: ${ignore}`);
const jailHost = ignore ? null : await detectCgroupHost("auto").catch((e: Error) => e);
const jailIgnore = ignore ??
  (jailHost instanceof Error ? `no cgroup controllers for a jail: ${jailHost.message}` : undefined);
// KVM only when a probe boot proved it here (an open /dev/kvm may still hang the guest).
const accel = ignore ? "tcg" : await testAccel();

// One namespace per test (created on first use, deleted after the test), shared by the driver
// instances a test makes so a "restarted daemon" sees the same VMMs.
let currentNs: string | undefined;
async function netns(): Promise<string> {
  currentNs ??= await createNetns();
  return currentNs;
}
async function dropNetns(): Promise<void> {
  if (currentNs) await deleteNetns(currentNs);
  currentNs = undefined;
}

async function newDriver() {
  return await openQemuDriver({
    accel,
    launchPrefix: ["ip", "netns", "exec", await netns()],
  });
}

runDriverContract({
  name: "qemu",
  newDriver,
  makeGuest: (dir) => buildBusyboxGuest(dir, { kvm: accel === "kvm" }),
  ignore,
  badDiskMessage: /not in qcow2 format/,
  afterEach: dropNetns,
});

interface Vm {
  dir: string;
  spec: VmSpec;
  driver: Awaited<ReturnType<typeof newDriver>>;
  ns: string;
}

/** A temp dir, a namespace, a driver and a spec for the busybox guest; all removed after. */
async function withVm(fn: (vm: Vm) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-qemu-" });
  try {
    await Deno.mkdir(`${dir}/run`);
    const guest = await buildBusyboxGuest(dir, { kvm: accel === "kvm" });
    const spec: VmSpec = {
      id: "qemu-test",
      cpus: 1,
      memoryMib: 256,
      kernel: guest.kernel,
      initramfs: guest.initramfs,
      cmdline: guest.cmdline,
      disks: [],
      nics: [],
      serialLog: `${dir}/serial.log`,
      vmmLog: `${dir}/vmm.log`,
      runtimeDir: `${dir}/run`,
    };
    await fn({ dir, spec, driver: await newDriver(), ns: await netns() });
  } finally {
    for (const pid of await processesMentioning(dir)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await dropNetns();
    await Deno.remove(dir, { recursive: true });
  }
}

async function serialLine(vm: Vm, handle: VmmHandle, prefix: string): Promise<string> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(vm.spec.serialLog).catch(() => "");
    const line = text.split("\n").find((l) => l.startsWith(prefix));
    if (line) return line;
    if (!(await isAlive(handle.pid, handle.startTime))) {
      throw new Error(`QEMU exited before ${prefix}:\n${text.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${prefix} line within 90 s`);
}

async function stopVm(vm: Vm, handle: VmmHandle): Promise<void> {
  await vm.driver.shutdown(handle, { gracefulMs: 0, termMs: 10_000 });
  await vm.driver.cleanup(handle);
}

Deno.test({
  name: "qemu: the recorded pid is QEMU itself, in its own session, in the test's namespace" +
    (ignore === undefined ? "" : ` (skipped: ${ignore})`),
  ignore: ignore !== undefined,
  fn: () =>
    withVm(async (vm) => {
      const handle = await vm.driver.create(vm.spec);
      try {
        equal(await Deno.readLink(`/proc/${handle.pid}/exe`), await Deno.realPath(probe.binary!));
        const stat = await readProcStat(handle.pid);
        equal(stat?.session, handle.pid, "setsid made QEMU a session leader");
        equal(stat?.startTime, handle.startTime);
        const netnsOf = (path: string) => Deno.statSync(path).ino;
        equal(netnsOf(`/proc/${handle.pid}/ns/net`), netnsOf(`/run/netns/${vm.ns}`));
        ok(netnsOf(`/proc/${handle.pid}/ns/net`) !== netnsOf("/proc/self/ns/net"));
        const argv = (await Deno.readTextFile(`/proc/${handle.pid}/cmdline`)).split("\0");
        argv.pop(); // trailing NUL
        deepEqual(argv, [
          probe.binary,
          ...qemuArgs(vm.spec, { accel: vm.driver.kvm ? "kvm" : "tcg" }),
        ]);
        const pidFile = await Deno.readTextFile(qemuPaths(vm.spec.runtimeDir).pidFile);
        equal(Number(pidFile.trim()), handle.pid);
        equal(handle.apiSocket, qemuPaths(vm.spec.runtimeDir).qmpSocket);
        ok((await Deno.lstat(handle.apiSocket)).isSocket);
        await rejects(
          () => vm.driver.create(vm.spec),
          (e: VolantError) => e.code === "invalid_state" && /still running/.test(e.message),
          "a second create on a live runtime dir is refused",
        );
        ok(await isAlive(handle.pid, handle.startTime), "the refusal did not touch the first VMM");
      } finally {
        await stopVm(vm, handle);
      }
      deepEqual([...Deno.readDirSync(vm.spec.runtimeDir)], []);
    }),
});

Deno.test({
  name: "qemu: a NIC on a tap reaches the guest with its MAC; the serial log is appended" +
    (ignore === undefined ? "" : ` (skipped: ${ignore})`),
  ignore: ignore !== undefined,
  fn: () =>
    withVm(async (vm) => {
      await createTap(vm.ns, "vtap0");
      await Deno.writeTextFile(vm.spec.serialLog, "line from an earlier boot\n");
      const mac = "52:54:00:12:34:56";
      const spec = { ...vm.spec, nics: [{ id: "eth", tap: "vtap0", mac }] };
      const handle = await vm.driver.create(spec);
      try {
        await vm.driver.boot(handle);
        await serialLine(vm, handle, READY_MARKER);
        const serial = await Deno.readTextFile(vm.spec.serialLog);
        ok(serial.startsWith("line from an earlier boot\n"), "the serial log was not truncated");
        match(serial, new RegExp(`^VOLANT_TEST_NIC eth0 ${mac}$`, "m"));
      } finally {
        await stopVm(vm, handle);
      }
    }),
});

Deno.test({
  name: "qemu: a jailed QEMU runs as its uid in its cgroup, sees only its VM's files, and is " +
    "adopted; its pid is handed over before QMP answers" +
    (jailIgnore === undefined ? "" : ` (skipped: ${jailIgnore})`),
  ignore: jailIgnore !== undefined,
  fn: () =>
    withVm(async (vm) => {
      const host = await detectCgroupHost("auto");
      const parent = cgroupParentDirs(host, `volant-qemu-test-${crypto.randomUUID().slice(0, 8)}`);
      const uid = 990_000 + (crypto.getRandomValues(new Uint16Array(1))[0]! % 9000);
      let jail: VmmJail | undefined;
      try {
        await prepareCgroupParent(host, parent);
        const cgroup = await createVmmCgroup(
          host,
          parent,
          "qemu-test",
          vmmLimits({ cpus: 1, memoryMib: 256, accel }),
        );
        jail = { uid, gid: uid, root: `${vm.dir}/jail`, cgroup, devices: ["tun"] };
        await Deno.mkdir(jail.root);
        await Deno.chown(vm.spec.runtimeDir, uid, uid);
        await Deno.writeTextFile(vm.spec.serialLog, "");
        await Deno.chown(vm.spec.serialLog, uid, null);
        await createTap(vm.ns, "vtap0", uid);
        const mac = "52:54:00:12:34:57";
        // A read-only disk and a writable qcow2 overlay whose base stays root's, read-only.
        await Deno.writeTextFile(`${vm.dir}/ro.img`, "volant-disk:ro\n");
        await Deno.truncate(`${vm.dir}/ro.img`, 1024 * 1024);
        await Deno.writeTextFile(`${vm.dir}/base.img`, "volant-disk:base\n");
        await Deno.truncate(`${vm.dir}/base.img`, 1024 * 1024);
        const img = await new Deno.Command("qemu-img", {
          args: [
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "raw",
            "-b",
            `${vm.dir}/base.img`,
            `${vm.dir}/rw.qcow2`,
          ],
        }).output();
        ok(img.success, new TextDecoder().decode(img.stderr));
        await Deno.chown(`${vm.dir}/rw.qcow2`, uid, uid);
        const spec: VmSpec = {
          ...vm.spec,
          nics: [{ id: "eth", tap: "vtap0", mac }],
          disks: [
            { id: "ro", path: `${vm.dir}/ro.img`, readOnly: true, format: "raw" },
            { id: "rw", path: `${vm.dir}/rw.qcow2`, readOnly: false, format: "qcow2" },
          ],
          jail,
        };
        const spawned: Array<{ pid: number; qmp: boolean }> = [];
        const handle = await vm.driver.create(spec, {
          onSpawn: async (h) => {
            const qmp = await qmpExecute(h.apiSocket, "query-status", undefined, {
              timeoutMs: 100,
            }).then(() => true, () => false);
            spawned.push({ pid: h.pid, qmp });
          },
        });
        try {
          deepEqual(spawned, [{ pid: handle.pid, qmp: false }], "recorded before QMP answered");
          deepEqual(handle.jail, jail);
          const status = await Deno.readTextFile(`/proc/${handle.pid}/status`);
          match(status, new RegExp(`^Uid:\t${uid}\t${uid}\t${uid}\t${uid}$`, "m"));
          match(status, /^NoNewPrivs:\t1$/m);
          match(status, /^Seccomp:\t2$/m);
          const argv = (await Deno.readTextFile(`/proc/${handle.pid}/cmdline`)).split("\0");
          equal(argv[argv.indexOf("-sandbox") + 1], QEMU_SANDBOX);
          for (const dir of new Set(Object.values(cgroup.dirs))) {
            const procs = await Deno.readTextFile(`${dir}/cgroup.procs`);
            ok(procs.split("\n").includes(String(handle.pid)), `in ${dir}`);
          }
          const root = `/proc/${handle.pid}/root`;
          const top = (await Array.fromAsync(Deno.readDir(root))).map((e) => e.name);
          for (const absent of ["etc", "root", "home", "proc", "sys", "var"]) {
            ok(!top.includes(absent), `no /${absent} in the jail: ${top.join(" ")}`);
          }
          ok((await Deno.lstat(`${root}${handle.apiSocket}`)).isSocket, "its QMP socket");
          equal((await Deno.stat(`${root}/dev/net/tun`)).uid, uid);
          await vm.driver.boot(handle);
          await serialLine(vm, handle, READY_MARKER);
          const serial = await Deno.readTextFile(vm.spec.serialLog);
          match(serial, /^VOLANT_TEST_NIC eth0 /m);
          match(serial, /^VOLANT_TEST_DISK vda volant-disk:ro$/m);
          match(serial, /^VOLANT_TEST_DISK vdb volant-disk:base$/m, "the overlay reads its base");
          equal(await Deno.stat(`${root}${vm.dir}/base.img`).then((s) => s.isFile), true);
          // Its own log is written outside (by the launch wrapper): not in the jail.
          equal(await Deno.stat(`${root}${vm.spec.vmmLog}`).then(() => true, () => false), false);
          ok(await (await newDriver()).adopt(handle), "another driver instance adopts it");
        } finally {
          await stopVm(vm, handle);
        }
        await removeVmmCgroup(cgroup);
        for (const dir of new Set(Object.values(cgroup.dirs))) {
          equal(await Deno.stat(dir).then(() => true, () => false), false);
        }
      } finally {
        if (jail) await removeVmmCgroup(jail.cgroup).catch(() => {});
        for (const d of new Set(Object.values(parent))) await Deno.remove(d).catch(() => {});
      }
    }),
});

Deno.test({
  name: "qemu: a launch prefix that forks instead of exec'ing is detected" +
    (ignore === undefined ? "" : ` (skipped: ${ignore})`),
  ignore: ignore !== undefined,
  fn: () =>
    withVm(async (vm) => {
      const forking = await openQemuDriver({
        accel,
        launchPrefix: ["ip", "netns", "exec", vm.ns, "sh", "-c", '"$@" & wait', "fork"],
      });
      // The forked QEMU itself is a stray the driver cannot know about; withVm kills it.
      await rejects(
        () => forking.create(vm.spec),
        (e: VolantError) => e.code === "vmm_failed" && /forked/.test(e.message),
      );
    }),
});

Deno.test({
  name: "qemu: a VMM outlives the process that created it and another process adopts it" +
    (ignore === undefined ? "" : ` (skipped: ${ignore})`),
  ignore: ignore !== undefined,
  fn: () =>
    withVm(async (vm) => {
      const helper = new URL("../testing/create_and_exit.ts", import.meta.url).pathname;
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--no-check=remote",
          helper,
          accel,
          JSON.stringify(vm.spec),
          "ip",
          "netns",
          "exec",
          vm.ns,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const handle = JSON.parse(new TextDecoder().decode(out.stdout)) as VmmHandle;
      try {
        ok(await isAlive(handle.pid, handle.startTime), "QEMU survived its parent's exit");
        const stat = await readProcStat(handle.pid);
        ok(stat?.ppid !== Deno.pid, "not our child: waiting must poll /proc");
        const driver = await openQemuDriver({
          accel,
          launchPrefix: ["ip", "netns", "exec", vm.ns],
        });
        equal(await driver.adopt(handle), true);
        equal(await driver.info(handle), "running");
        await serialLine(vm, handle, READY_MARKER);
        let exited = false;
        const waiting = driver.waitExit(handle).then(() => exited = true);
        deepEqual(await driver.shutdown(handle, { gracefulMs: 60_000, termMs: 10_000 }), {
          via: "graceful",
        });
        await waiting;
        equal(exited, true);
        equal(await driver.adopt(handle), false);
        await driver.cleanup(handle);
        deepEqual([...Deno.readDirSync(vm.spec.runtimeDir)], []);
      } finally {
        if (await isAlive(handle.pid, handle.startTime)) Deno.kill(handle.pid, "SIGKILL");
      }
    }),
});

const vmlinuxReason = ignore ?? await (async () => {
  try {
    await Deno.stat(`${testKernelDir()}/vmlinux-generic`);
    return undefined;
  } catch {
    const lz4 = await new Deno.Command("lz4", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output().then((o) => o.success, () => false);
    return lz4 ? undefined : `no ${testKernelDir()}/vmlinux-generic and no lz4 to extract one`;
  }
})();
if (vmlinuxReason) console.log(`skipping the vmlinux boot test: ${vmlinuxReason}`);

/** The ELF vmlinux inside a bzImage whose payload is LZ4 (Debian's cloud kernel). */
async function extractVmlinux(bzImage: string, out: string): Promise<void> {
  const bytes = await Deno.readFile(bzImage);
  const magic = [0x02, 0x21, 0x4c, 0x18];
  const at = bytes.findIndex((_, i) => magic.every((m, j) => bytes[i + j] === m));
  if (at < 0) throw new Error(`${bzImage} has no LZ4 payload`);
  const lz4 = new Deno.Command("lz4", {
    args: ["-dc"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  })
    .spawn();
  const writer = lz4.stdin.getWriter();
  const writing = writer.write(bytes.subarray(at)).then(() => writer.close()).catch(() => {});
  const { stdout } = await lz4.output();
  await writing;
  // lz4 stops with an error at the bzImage's trailing bytes; the ELF is complete by then.
  if (stdout[0] !== 0x7f || stdout[1] !== 0x45) throw new Error("lz4 did not produce an ELF");
  await Deno.writeFile(out, stdout);
}

Deno.test({
  name: "qemu: an ELF vmlinux boots through PVH" +
    (vmlinuxReason === undefined ? "" : ` (skipped: ${vmlinuxReason})`),
  ignore: vmlinuxReason !== undefined,
  fn: () =>
    withVm(async (vm) => {
      let path = `${testKernelDir()}/vmlinux-generic`;
      if (!(await Deno.stat(path).then(() => true, () => false))) {
        path = `${vm.dir}/vmlinux`;
        await extractVmlinux((kernel as { bzImage: string }).bzImage, path);
      }
      const handle = await vm.driver.create({ ...vm.spec, kernel: { path, format: "vmlinux" } });
      try {
        await vm.driver.boot(handle);
        match(await serialLine(vm, handle, READY_MARKER), /"kestrel_version":"busybox-test"/);
      } finally {
        await stopVm(vm, handle);
      }
    }),
});

Deno.test({
  name: "qemu: probe reports the binary, its version and the accelerator" +
    (probe.available ? "" : ` (skipped: QEMU is unavailable here: ${probe.reason})`),
  ignore: !probe.available,
  fn: async () => {
    // accel auto takes /dev/kvm at its word (proving it is chooseDriver's job).
    const driver = await openQemuDriver({ accel: "auto" });
    const found = await driver.probe();
    equal(found.available, true);
    equal(found.name, "qemu");
    equal(found.binary, probe.binary);
    match(found.version ?? "", /^\d+\.\d+\.\d+$/);
    equal(found.kvm, (await detectKvm()).available);
    equal(driver.kvm, found.kvm);
    equal((await openQemuDriver({ accel: "tcg" })).kvm, false);
  },
});

/** The tick numbers in a serial log (`VOLANT_TEST_TICK <n> <random>`). */
function ticks(text: string): number[] {
  return [...text.matchAll(/^VOLANT_TEST_TICK (\d+) /gm)].map((m) => Number(m[1]));
}

async function untilTick(log: string, handle: VmmHandle, atLeast: number): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(log).catch(() => "");
    if (ticks(text).some((n) => n >= atLeast)) return;
    if (!(await isAlive(handle.pid, handle.startTime))) {
      throw new Error(`QEMU exited before tick ${atLeast}:\n${text.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no tick ${atLeast} within 90 s`);
}

Deno.test({
  name: "qemu: a guest's saved state restores into a new QEMU, which carries on from there" +
    (ignore === undefined ? "" : ` (skipped: ${ignore})`),
  ignore: ignore !== undefined,
  fn: () =>
    withVm(async (vm) => {
      const spec = { ...vm.spec, cmdline: `${vm.spec.cmdline} volant_test_ticks=1` };
      const source = await vm.driver.create(spec);
      let restored: VmmHandle | undefined;
      try {
        await vm.driver.boot(source);
        await untilTick(spec.serialLog, source, 5);
        const state = `${vm.dir}/state`;
        await Deno.mkdir(state);
        const saved = await vm.driver.saveState!(source, state);
        equal(await vm.driver.info(source), "paused", "saving leaves the guest paused");
        deepEqual(saved.files, ["qemu-state.bin"]);
        equal((await Deno.stat(`${state}/qemu-state.bin`)).size, saved.bytes);
        ok(saved.bytes > 1_000_000 && saved.bytes < 256 * 2 ** 20, `state is ${saved.bytes} bytes`);
        const atSave = Math.max(...ticks(await Deno.readTextFile(spec.serialLog)));
        deepEqual(
          [...Deno.readDirSync(spec.runtimeDir)].map((e) => e.name).filter((n) =>
            n.includes("migrate") || n.includes("partial")
          ),
          [],
          "no socket or partial file left",
        );
        // The source carries on too.
        await vm.driver.resume(source);
        await untilTick(spec.serialLog, source, atSave + 3);
        await stopVm(vm, source);

        await Deno.mkdir(`${vm.dir}/run2`);
        const again = {
          ...spec,
          runtimeDir: `${vm.dir}/run2`,
          serialLog: `${vm.dir}/serial2.log`,
          restoreFrom: state,
        };
        restored = await vm.driver.create(again);
        equal(await vm.driver.info(restored), "paused", "a restored guest waits for resume");
        await vm.driver.resume(restored);
        await untilTick(again.serialLog, restored, atSave + 2);
        const after = await Deno.readTextFile(again.serialLog);
        ok(!after.includes(READY_MARKER), `the restored guest did not boot again:\n${after}`);
        const first = ticks(after)[0]!;
        ok(
          first >= atSave && first <= atSave + 2,
          `it carries on from tick ${atSave}, not from 0: first tick ${first}`,
        );
      } finally {
        if (restored) await stopVm(vm, restored).catch(() => {});
        await stopVm(vm, source).catch(() => {});
      }
    }),
});

Deno.test({
  name: "qemu: a restore from a missing or corrupt state file fails and leaves nothing running" +
    (ignore === undefined ? "" : ` (skipped: ${ignore})`),
  ignore: ignore !== undefined,
  fn: () =>
    withVm(async (vm) => {
      const missing = await rejects(
        vm.driver.create({ ...vm.spec, restoreFrom: `${vm.dir}/none` }),
        (err: VolantError) => {
          equal(err.code, "invalid_argument");
          match(err.message, /restoreFrom .*none\/qemu-state\.bin: no such file/);
          return true;
        },
      );
      equal(missing, undefined);
      await Deno.mkdir(`${vm.dir}/junk`);
      await Deno.writeFile(
        `${vm.dir}/junk/qemu-state.bin`,
        crypto.getRandomValues(new Uint8Array(65536)),
      );
      await rejects(vm.driver.create({ ...vm.spec, restoreFrom: `${vm.dir}/junk` }));
      deepEqual(await processesMentioning(vm.dir), [], "no QEMU left");
      deepEqual(
        [...Deno.readDirSync(vm.spec.runtimeDir)].map((e) => e.name),
        [],
        "no socket or pid file left",
      );
    }),
});
