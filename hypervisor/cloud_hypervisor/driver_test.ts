import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import { processesMentioning, runDriverContract } from "../contract_suite.ts";
import type { VmmHandle, VmSpec } from "../driver.ts";
import { isAlive, readProcStat } from "../process/mod.ts";
import { type FakeBinary, readTrace, writeFakeCh } from "../testing/fake_ch_vmm.ts";
import { OpenApiContract, vendoredDocument } from "../testing/openapi_contract.ts";
import { chArgs, chPaths } from "./config.ts";
import { CloudHypervisorDriver } from "./driver.ts";

const DOCS = [
  "cloud_hypervisor/openapi/openapi-v53.0.yaml",
  "cloud_hypervisor/openapi/openapi.yaml",
] as const;
const v53 = vendoredDocument(DOCS[0]);

// The fake VMMs' wrapper scripts, shared by every test of this file.
const bin = await Deno.makeTempDir({ prefix: "volant-fake-ch-bin-" });
globalThis.addEventListener("unload", () => Deno.removeSync(bin, { recursive: true }));

function newDriver(fake: FakeBinary, options: { startTimeoutMs?: number } = {}) {
  return new CloudHypervisorDriver({ binary: fake.path, processExe: fake.processExe, ...options });
}

let contractFake: Promise<FakeBinary> | undefined;
runDriverContract({
  name: "cloud-hypervisor (fake VMM)",
  newDriver: async () => {
    contractFake ??= writeFakeCh(bin, { document: v53, version: "53.0.0" });
    return newDriver(await contractFake);
  },
  makeGuest: async (dir) => {
    await Deno.writeTextFile(`${dir}/vmlinux`, "not really an ELF: the fake VMM only opens it");
    await Deno.writeTextFile(`${dir}/initrd.cpio`, "fake initramfs");
    return {
      kernel: { path: `${dir}/vmlinux`, format: "vmlinux" },
      initramfs: `${dir}/initrd.cpio`,
      cmdline: "console=ttyS0",
    };
  },
  skip: [{
    reason: "Cloud Hypervisor opens disk images at vm.boot (vm.create only stores the " +
      "configuration), so a bad qcow2 fails boot, not create; 'boot reports a bad qcow2 " +
      "image with the VMM's message' checks that",
    tests: ["a VMM that exits at once fails create with its own message"],
  }],
});

interface Vm {
  dir: string;
  spec: VmSpec;
}

/** A temp dir with a guest and a spec; every process naming it is killed afterwards. */
async function withVm(fn: (vm: Vm) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-ch-" });
  try {
    await Deno.mkdir(`${dir}/run`);
    await Deno.writeTextFile(`${dir}/vmlinux`, "fake kernel");
    const spec: VmSpec = {
      id: "ch-test",
      cpus: 2,
      memoryMib: 256,
      kernel: { path: `${dir}/vmlinux`, format: "vmlinux" },
      cmdline: "console=ttyS0 volant_test_name=ch-test",
      disks: [],
      nics: [],
      serialLog: `${dir}/serial.log`,
      vmmLog: `${dir}/vmm.log`,
      runtimeDir: `${dir}/run`,
    };
    await fn({ dir, spec });
  } finally {
    for (const pid of await processesMentioning(dir)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await Deno.remove(dir, { recursive: true });
  }
}

async function assertNothingLeft(vm: Vm): Promise<void> {
  deepEqual(await processesMentioning(vm.dir), [], "no VMM process is left");
  deepEqual([...Deno.readDirSync(vm.spec.runtimeDir)].map((e) => e.name), [], "no files left");
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within 30 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const serialHas = (vm: Vm, text: string) => () =>
  Deno.readTextFile(vm.spec.serialLog).then((s) => s.includes(text), () => false);

for (const doc of DOCS) {
  Deno.test({
    name: `cloud-hypervisor: the lifecycle sends documented requests in order (${doc})`,
    fn: () =>
      withVm(async (vm) => {
        const contract = await OpenApiContract.loadVendored(doc);
        const trace = `${vm.dir}/trace.jsonl`;
        const fake = await writeFakeCh(vm.dir, {
          document: contract.path,
          version: "53.0.0",
          trace,
        });
        const driver = newDriver(fake);
        await Deno.writeFile(
          `${vm.dir}/data.qcow2`,
          new Uint8Array([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]), // "QFI\xfb", version 3
        );
        await Deno.writeTextFile(`${vm.dir}/root.img`, "root\n");
        const spec: VmSpec = {
          ...vm.spec,
          disks: [
            { id: "root", path: `${vm.dir}/root.img`, readOnly: false, format: "raw" },
            { id: "data", path: `${vm.dir}/data.qcow2`, readOnly: true, format: "qcow2" },
          ],
          nics: [{ id: "eth0", tap: "vtap0", mac: "52:54:00:12:34:56" }],
        };
        const handle = await driver.create(spec);
        await driver.boot(handle);
        await waitFor("the ready line", serialHas(vm, "KESTREL_READY"));
        await driver.pause(handle);
        await driver.resume(handle);
        deepEqual(Object.keys(await driver.counters(handle)).sort(), [
          "disk-data",
          "disk-root",
          "net-eth0",
        ]);
        deepEqual(await driver.shutdown(handle, { gracefulMs: 30_000, termMs: 5_000 }), {
          via: "graceful",
        });
        await driver.cleanup(handle);
        const entries = await readTrace(trace);
        for (const e of entries) {
          deepEqual(e.problems, [], `${e.method} ${e.path} follows ${doc}`);
          deepEqual(e.answerProblems, [], `the fake's answer to ${e.method} ${e.path}`);
          ok(e.status >= 200 && e.status < 300, `${e.method} ${e.path} → ${e.status}`);
        }
        const calls = entries.map((e) => `${e.method} ${e.path.replace("/api/v1", "")}`);
        deepEqual(calls, [
          "GET /vmm.ping", // readiness: polls before the socket exists never reach the fake
          "PUT /vm.create",
          "GET /vm.info", // boot: must be Created
          "PUT /vm.boot",
          "GET /vm.info", // pause: must be Running
          "PUT /vm.pause",
          "GET /vm.info", // resume: must be Paused
          "PUT /vm.resume",
          "GET /vm.counters",
          "GET /vm.info", // shutdown: the power button only for a running guest
          "PUT /vm.power-button",
        ]);
        const created = entries.find((e) => e.path.endsWith("/vm.create"))?.body as {
          disks: Array<{ image_type: string; readonly: boolean }>;
          net: Array<{ tap: string; mac: string }>;
        };
        deepEqual(created.disks.map((d) => [d.image_type, d.readonly]), [
          ["Raw", false],
          ["Qcow2", true],
        ]);
        deepEqual(created.net, [{ id: "net-eth0", tap: "vtap0", mac: "52:54:00:12:34:56" }]);
      }),
  });
}

Deno.test({
  name: "cloud-hypervisor: the terminate step asks the VMM over its API before any signal",
  fn: () =>
    withVm(async (vm) => {
      const trace = `${vm.dir}/trace.jsonl`;
      const fake = await writeFakeCh(vm.dir, { document: v53, version: "53.0.0", trace });
      const driver = newDriver(fake);
      const spec = { ...vm.spec, cmdline: `${vm.spec.cmdline} volant_test_power=ignore` };
      const handle = await driver.create(spec);
      await driver.boot(handle);
      await waitFor("the ready line", serialHas(vm, "KESTREL_READY"));
      deepEqual(await driver.shutdown(handle, { gracefulMs: 500, termMs: 10_000 }), {
        via: "sigterm",
      });
      await driver.cleanup(handle);
      const entries = await readTrace(trace);
      deepEqual(entries.slice(-4).map((e) => `${e.method} ${e.path} ${e.status}`), [
        "GET /api/v1/vm.info 200",
        "PUT /api/v1/vm.power-button 204", // ignored by the guest
        "PUT /api/v1/vm.shutdown 204",
        "PUT /api/v1/vmm.shutdown 204", // the VMM exits on it: no signal was needed
      ]);
      for (const e of entries) deepEqual(e.problems, [], `${e.method} ${e.path}`);
      await assertNothingLeft(vm);
    }),
});

Deno.test({
  name: "cloud-hypervisor: the recorded pid is the VMM itself, started with its API socket",
  fn: () =>
    withVm(async (vm) => {
      const fake = await writeFakeCh(vm.dir, { document: v53, version: "53.0.0" });
      const driver = newDriver(fake);
      const handle = await driver.create(vm.spec);
      try {
        equal(await Deno.readLink(`/proc/${handle.pid}/exe`), fake.processExe);
        const stat = await readProcStat(handle.pid);
        equal(stat?.session, handle.pid, "setsid made the VMM a session leader");
        const argv = (await Deno.readTextFile(`/proc/${handle.pid}/cmdline`)).split("\0");
        deepEqual(argv.slice(-3, -1), chArgs(vm.spec.runtimeDir));
        equal(handle.apiSocket, chPaths(vm.spec.runtimeDir).apiSocket);
        equal(Number(await Deno.readTextFile(chPaths(vm.spec.runtimeDir).pidFile)), handle.pid);
        await rejects(
          () => driver.create(vm.spec),
          (e: VolantError) => e.code === "invalid_state" && /still running/.test(e.message),
          "a second create on a live runtime dir is refused",
        );
        ok(await isAlive(handle.pid, handle.startTime), "the refusal did not touch the VMM");
      } finally {
        await driver.shutdown(handle, { gracefulMs: 0, termMs: 5_000 });
        await driver.cleanup(handle);
      }
      await assertNothingLeft(vm);
    }),
});

Deno.test({
  name: "cloud-hypervisor: a stale socket and lock from a crashed VMM are replaced",
  fn: () =>
    withVm(async (vm) => {
      const paths = chPaths(vm.spec.runtimeDir);
      const listener = Deno.listen({ transport: "unix", path: paths.apiSocket });
      listener.close(); // leaves the socket file, with nobody behind it
      await Deno.writeTextFile(paths.lockFile, "");
      await Deno.writeTextFile(paths.pidFile, "999999\n");
      const fake = await writeFakeCh(vm.dir, { document: v53, version: "53.0.0" });
      const driver = newDriver(fake);
      const handle = await driver.create(vm.spec);
      equal(await driver.info(handle), "created");
      equal(Number(await Deno.readTextFile(paths.pidFile)), handle.pid);
      deepEqual(await driver.shutdown(handle, { gracefulMs: 0, termMs: 5_000 }), {
        via: "sigterm",
      });
      await driver.cleanup(handle);
      await assertNothingLeft(vm);
    }),
});

Deno.test({
  name: "cloud-hypervisor: a binary that exits at once fails create with its message",
  fn: () =>
    withVm(async (vm) => {
      const fake = await writeFakeCh(vm.dir, {
        document: v53,
        version: "53.0.0",
        exitAtOnce: "Error: ApiSocketInUse: the socket is held by another instance",
      });
      await rejects(() => newDriver(fake).create(vm.spec), (e: VolantError) => {
        equal(e.code, "vmm_failed", e.message);
        match(e.message, /exited with code 1/);
        match(e.message, /ApiSocketInUse: the socket is held by another instance/);
        return true;
      });
      await assertNothingLeft(vm);
    }),
});

Deno.test({
  name: "cloud-hypervisor: a socket that never appears is a timeout naming the VMM log",
  fn: () =>
    withVm(async (vm) => {
      const fake = await writeFakeCh(vm.dir, { document: v53, version: "53.0.0", noSocket: true });
      await Deno.writeTextFile(vm.spec.vmmLog, "a line from an earlier VMM\n");
      await rejects(() => newDriver(fake, { startTimeoutMs: 2_000 }).create(vm.spec), (e) => {
        ok(e instanceof VolantError);
        equal(e.code, "timeout", e.message);
        match(e.message, /did not answer on .*ch\.sock within 2000 ms: the socket never appeared/);
        match(e.message, /its log is empty/, "only this VMM's own output counts");
        return true;
      });
      await assertNothingLeft(vm);
    }),
});

Deno.test({
  name: "cloud-hypervisor: vm.create errors carry the VMM's error chain and leave nothing",
  fn: () =>
    withVm(async (vm) => {
      for (
        const [status, code] of [[400, "invalid_argument"], [500, "vmm_failed"]] as const
      ) {
        const fake = await writeFakeCh(vm.dir, {
          document: v53,
          version: "53.0.0",
          fail: {
            "PUT /api/v1/vm.create": { status, message: "Error opening tap vtap9: No such device" },
          },
        });
        const spec = { ...vm.spec, nics: [{ id: "eth0", tap: "vtap9", mac: "52:54:00:0a:0b:0c" }] };
        await rejects(() => newDriver(fake).create(spec), (e: VolantError) => {
          equal(e.code, code, e.message);
          match(e.message, /PUT \/api\/v1\/vm\.create \(HTTP \d+\)/);
          match(e.message, /Error from API: Error opening tap vtap9: No such device/);
          return true;
        });
        await assertNothingLeft(vm);
      }
    }),
});

Deno.test({
  name: "cloud-hypervisor: boot reports a bad qcow2 image with the VMM's message",
  fn: () =>
    withVm(async (vm) => {
      await Deno.writeTextFile(`${vm.dir}/bad.qcow2`, "plain bytes, not a qcow2 header");
      const fake = await writeFakeCh(vm.dir, { document: v53, version: "53.0.0" });
      const driver = newDriver(fake);
      const handle: VmmHandle = await driver.create({
        ...vm.spec,
        disks: [{ id: "bad", path: `${vm.dir}/bad.qcow2`, readOnly: true, format: "qcow2" }],
      });
      try {
        await rejects(() => driver.boot(handle), (e: VolantError) => {
          equal(e.code, "vmm_failed", e.message);
          match(e.message, /The VM could not boot: .*QCOW2 image .*bad\.qcow2/);
          return true;
        });
        equal(await driver.info(handle), "created", "the VMM is still up, its VM not booted");
      } finally {
        await driver.shutdown(handle, { gracefulMs: 0, termMs: 5_000 });
        await driver.cleanup(handle);
      }
      await assertNothingLeft(vm);
    }),
});

Deno.test({
  name: "cloud-hypervisor: counters need a booted VM; info fails once the VMM is gone",
  fn: () =>
    withVm(async (vm) => {
      const fake = await writeFakeCh(vm.dir, { document: v53, version: "53.0.0" });
      const driver = newDriver(fake);
      const handle = await driver.create(vm.spec);
      await rejects(() => driver.counters(handle), (e: VolantError) => {
        equal(e.code, "vmm_failed");
        match(e.message, /VM is not running/);
        return true;
      });
      await rejects(() => driver.pause(handle), /is created \(Created\), not running/);
      Deno.kill(handle.pid, "SIGKILL");
      await driver.waitExit(handle);
      await rejects(() => driver.info(handle), (e: VolantError) => e.code === "vmm_failed");
      await rejects(() => driver.counters(handle), /is not running/);
      await driver.cleanup(handle);
      await assertNothingLeft(vm);
    }),
});

Deno.test("cloud-hypervisor: create refuses specs Cloud Hypervisor cannot run", async () => {
  const driver = new CloudHypervisorDriver({ binary: "/nonexistent/cloud-hypervisor" });
  const base: VmSpec = {
    id: "x",
    cpus: 1,
    memoryMib: 128,
    kernel: { path: "/k/vmlinux", format: "vmlinux" },
    cmdline: "",
    disks: [],
    nics: [],
    serialLog: "/l/serial.log",
    vmmLog: "/l/vmm.log",
    runtimeDir: "/run/x",
  };
  const cases: Array<[Partial<VmSpec>, RegExp]> = [
    [{ kernel: { path: "/k/bzImage", format: "bzImage" } }, /kernel\.format: .*vmlinux/],
    [{ runtimeDir: "/run/a,b" }, /runtimeDir: .*','/],
    [{ cpus: 0 }, /cpus/],
    [{ nics: [{ id: "e", tap: "tap-name-too-long-x", mac: "52:54:00:00:00:01" }] }, /tap/],
    [{ runtimeDir: `/run/${"x".repeat(120)}` }, /too long for a unix socket/],
  ];
  for (const [change, message] of cases) {
    await rejects(() => driver.create({ ...base, ...change }), (e: VolantError) => {
      equal(e.code, "invalid_argument");
      match(e.message, message);
      return true;
    });
  }
});
