import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import { processesMentioning, runDriverContract } from "../contract_suite.ts";
import type { VmSpec } from "../driver.ts";
import { isAlive, readProcStat } from "../process/mod.ts";
import { type FakeBinary, readTrace } from "../testing/fake_ch_vmm.ts";
import { writeFakeFc } from "../testing/fake_fc_vmm.ts";
import { OpenApiContract, vendoredDocument } from "../testing/openapi_contract.ts";
import { fcArgs, fcPaths } from "./config.ts";
import { FirecrackerDriver } from "./driver.ts";

const DOCS = [
  "firecracker/openapi/openapi-v1.16.1.yaml",
  "firecracker/openapi/openapi.yaml",
] as const;
const v116 = vendoredDocument(DOCS[0]);

// The fake VMMs' wrapper scripts, shared by every test of this file.
const bin = await Deno.makeTempDir({ prefix: "volant-fake-fc-bin-" });
globalThis.addEventListener("unload", () => Deno.removeSync(bin, { recursive: true }));

function newDriver(fake: FakeBinary, options: { startTimeoutMs?: number } = {}) {
  return new FirecrackerDriver({ binary: fake.path, processExe: fake.processExe, ...options });
}

let contractFake: Promise<FakeBinary> | undefined;
runDriverContract({
  name: "firecracker (fake VMM)",
  newDriver: async () => {
    contractFake ??= writeFakeFc(bin, { document: v116, version: "1.16.1" });
    return newDriver(await contractFake);
  },
  makeGuest: async (dir) => {
    await Deno.writeTextFile(`${dir}/vmlinux`, "not really an ELF: the fake VMM only opens it");
    await Deno.writeTextFile(`${dir}/initrd.cpio`, "fake initramfs");
    return {
      kernel: { path: `${dir}/vmlinux`, format: "vmlinux" },
      initramfs: `${dir}/initrd.cpio`,
      cmdline: "console=ttyS0 reboot=k",
    };
  },
  skip: [{
    reason: "Firecracker has no qcow2 support: the driver refuses a qcow2 disk with " +
      "invalid_argument before launching anything ('create refuses specs Firecracker cannot " +
      "run' checks that; 'a binary that exits at once…' checks the VMM's own message)",
    tests: ["a VMM that exits at once fails create with its own message"],
  }],
});

interface Vm {
  dir: string;
  spec: VmSpec;
}

/** A temp dir with a guest and a spec; every process naming it is killed afterwards. */
async function withVm(fn: (vm: Vm) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-fc-" });
  try {
    await Deno.mkdir(`${dir}/run`);
    await Deno.writeTextFile(`${dir}/vmlinux`, "fake kernel");
    const spec: VmSpec = {
      id: "fc-test",
      cpus: 2,
      memoryMib: 256,
      kernel: { path: `${dir}/vmlinux`, format: "vmlinux" },
      cmdline: "console=ttyS0 reboot=k volant_test_name=fc-test",
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

for (const doc of DOCS) {
  Deno.test({
    name: `firecracker: the lifecycle sends documented requests in order (${doc})`,
    fn: () =>
      withVm(async (vm) => {
        const contract = await OpenApiContract.loadVendored(doc);
        const trace = `${vm.dir}/trace.jsonl`;
        const fake = await writeFakeFc(vm.dir, {
          document: contract.path,
          version: "1.16.1",
          trace,
        });
        const driver = newDriver(fake);
        await Deno.writeTextFile(`${vm.dir}/root.img`, "root\n");
        await Deno.writeTextFile(`${vm.dir}/data.img`, "data\n");
        const spec: VmSpec = {
          ...vm.spec,
          disks: [
            { id: "root", path: `${vm.dir}/root.img`, readOnly: false, format: "raw" },
            { id: "data", path: `${vm.dir}/data.img`, readOnly: true, format: "raw" },
          ],
          nics: [{ id: "eth0", tap: "vtap0", mac: "52:54:00:12:34:56" }],
        };
        const handle = await driver.create(spec);
        await driver.boot(handle);
        await waitFor(
          "the ready line",
          () => Deno.readTextFile(vm.spec.serialLog).then((s) => s.includes("KESTREL_READY")),
        );
        await driver.pause(handle);
        await driver.resume(handle);
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
        const calls = entries.map((e) => {
          const b = e.body as Record<string, unknown> | undefined;
          const what = b?.action_type ?? (e.method === "PATCH" ? b?.state : undefined);
          return `${e.method} ${e.path}${what ? ` ${what}` : ""}`;
        });
        deepEqual(calls, [
          "GET /", // readiness: polls before the socket exists never reach the fake
          "PUT /machine-config",
          "PUT /boot-source",
          "PUT /drives/root",
          "PUT /drives/data",
          "PUT /network-interfaces/eth0",
          "GET /", // boot: must be Not started
          "PUT /actions InstanceStart",
          "GET /", // pause: must be Running
          "PATCH /vm Paused",
          "GET /", // resume: must be Paused
          "PATCH /vm Resumed",
          "GET /", // shutdown: Ctrl-Alt-Del only for a running guest
          "PUT /actions SendCtrlAltDel",
        ]);
        const drives = entries.filter((e) => e.path.startsWith("/drives/")).map((e) => e.body);
        deepEqual(drives, [
          {
            drive_id: "root",
            path_on_host: `${vm.dir}/root.img`,
            is_root_device: false,
            is_read_only: false,
            cache_type: "Writeback",
          },
          {
            drive_id: "data",
            path_on_host: `${vm.dir}/data.img`,
            is_root_device: false,
            is_read_only: true,
          },
        ]);
      }),
  });
}

Deno.test({
  name: "firecracker: the pid is the VMM; its stdout is the serial log, appended",
  fn: () =>
    withVm(async (vm) => {
      await Deno.writeTextFile(vm.spec.serialLog, "line from an earlier boot\n");
      const fake = await writeFakeFc(vm.dir, { document: v116, version: "1.16.1" });
      const driver = newDriver(fake);
      const handle = await driver.create(vm.spec);
      try {
        equal(await Deno.readLink(`/proc/${handle.pid}/exe`), fake.processExe);
        equal((await readProcStat(handle.pid))?.session, handle.pid, "a session leader");
        equal(await Deno.readLink(`/proc/${handle.pid}/fd/1`), vm.spec.serialLog);
        equal(await Deno.readLink(`/proc/${handle.pid}/fd/2`), vm.spec.vmmLog);
        const argv = (await Deno.readTextFile(`/proc/${handle.pid}/cmdline`)).split("\0");
        deepEqual(argv.slice(-6, -1), fcArgs(vm.spec.runtimeDir));
        equal(Number(await Deno.readTextFile(fcPaths(vm.spec.runtimeDir).pidFile)), handle.pid);
        await rejects(
          () => driver.create(vm.spec),
          (e: VolantError) => e.code === "invalid_state" && /still running/.test(e.message),
          "a second create on a live runtime dir is refused",
        );
        ok(await isAlive(handle.pid, handle.startTime), "the refusal did not touch the VMM");
        await driver.boot(handle);
        await waitFor(
          "the ready line",
          () => Deno.readTextFile(vm.spec.serialLog).then((s) => s.includes("KESTREL_READY")),
        );
        const serial = await Deno.readTextFile(vm.spec.serialLog);
        ok(serial.startsWith("line from an earlier boot\n"), "the serial log was not truncated");
        match(serial, /^KESTREL_READY \{"name":"fc-test"/m);
        ok(
          !(await Deno.readTextFile(vm.spec.vmmLog).catch(() => "")).includes("KESTREL_READY"),
          "guest output stays out of the VMM log",
        );
      } finally {
        await driver.shutdown(handle, { gracefulMs: 0, termMs: 5_000 });
        await driver.cleanup(handle);
      }
      await assertNothingLeft(vm);
    }),
});

Deno.test({
  name: "firecracker: a stale API socket is removed before launch",
  fn: () =>
    withVm(async (vm) => {
      const paths = fcPaths(vm.spec.runtimeDir);
      Deno.listen({ transport: "unix", path: paths.apiSocket }).close(); // the file stays
      const fake = await writeFakeFc(vm.dir, { document: v116, version: "1.16.1" });
      const driver = newDriver(fake);
      const handle = await driver.create(vm.spec);
      equal(await driver.info(handle), "created");
      deepEqual(await driver.shutdown(handle, { gracefulMs: 10_000, termMs: 5_000 }), {
        via: "sigterm",
      }, "a guest that never ran cannot take Ctrl-Alt-Del: straight to SIGTERM");
      await driver.cleanup(handle);
      await assertNothingLeft(vm);
    }),
});

Deno.test({
  name: "firecracker: a binary that exits at once fails create with its message",
  fn: () =>
    withVm(async (vm) => {
      const fake = await writeFakeFc(vm.dir, {
        document: v116,
        version: "1.16.1",
        exitAtOnce: "Error: RunWithApi(FailedToBindSocket): Permission denied (os error 13)",
      });
      await rejects(() => newDriver(fake).create(vm.spec), (e: VolantError) => {
        equal(e.code, "vmm_failed", e.message);
        match(e.message, /Firecracker exited with code 1/);
        match(e.message, /FailedToBindSocket\): Permission denied/);
        return true;
      });
      await assertNothingLeft(vm);
    }),
});

Deno.test({
  name: "firecracker: a socket that never appears is a timeout naming the VMM log",
  fn: () =>
    withVm(async (vm) => {
      const fake = await writeFakeFc(vm.dir, { document: v116, version: "1.16.1", noSocket: true });
      await rejects(() => newDriver(fake, { startTimeoutMs: 2_000 }).create(vm.spec), (e) => {
        ok(e instanceof VolantError);
        equal(e.code, "timeout", e.message);
        match(e.message, /did not answer on .*fc\.sock within 2000 ms: the socket never appeared/);
        return true;
      });
      await assertNothingLeft(vm);
    }),
});

Deno.test({
  name: "firecracker: configuration errors carry the fault message and leave nothing",
  fn: () =>
    withVm(async (vm) => {
      const fake = await writeFakeFc(vm.dir, { document: v116, version: "1.16.1" });
      // Two interfaces on one tap: Firecracker refuses the second.
      const spec = {
        ...vm.spec,
        nics: [
          { id: "eth0", tap: "vtap0", mac: "52:54:00:00:00:01" },
          { id: "eth1", tap: "vtap0", mac: "52:54:00:00:00:02" },
        ],
      };
      await rejects(() => newDriver(fake).create(spec), (e: VolantError) => {
        equal(e.code, "invalid_argument", e.message);
        match(e.message, /PUT \/network-interfaces\/eth1 \(HTTP 400\)/);
        match(e.message, /host device name vtap0 is already in use/);
        return true;
      });
      await assertNothingLeft(vm);
      const failing = await writeFakeFc(vm.dir, {
        document: v116,
        version: "1.16.1",
        fail: { "PUT /boot-source": { status: 500, message: "Internal error loading kernel" } },
      });
      await rejects(() => newDriver(failing).create(vm.spec), (e: VolantError) => {
        equal(e.code, "vmm_failed", e.message);
        match(e.message, /Internal error loading kernel/);
        return true;
      });
      await assertNothingLeft(vm);
    }),
});

Deno.test({
  name: "firecracker: state checks refuse out-of-order calls; a gone VMM is vmm_failed",
  fn: () =>
    withVm(async (vm) => {
      const fake = await writeFakeFc(vm.dir, { document: v116, version: "1.16.1" });
      const driver = newDriver(fake);
      const handle = await driver.create(vm.spec);
      await rejects(() => driver.pause(handle), /is created \(Not started\), not running/);
      await rejects(() => driver.resume(handle), /not paused/);
      await driver.boot(handle);
      await rejects(() => driver.boot(handle), /is running \(Running\), not created/);
      Deno.kill(handle.pid, "SIGKILL");
      await driver.waitExit(handle);
      await rejects(() => driver.info(handle), (e: VolantError) => e.code === "vmm_failed");
      equal(await driver.adopt(handle), false);
      await driver.cleanup(handle);
      await assertNothingLeft(vm);
    }),
});

Deno.test("firecracker: create refuses specs Firecracker cannot run", async () => {
  const driver = new FirecrackerDriver({ binary: "/nonexistent/firecracker" });
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
    [
      { kernel: { path: "/k/bzImage", format: "bzImage" } },
      /kernel\.format: Firecracker boots vmlinux/,
    ],
    [
      { disks: [{ id: "d", path: "/d.qcow2", readOnly: true, format: "qcow2" }] },
      /disks\[0\]\.format: Firecracker takes raw images, not qcow2/,
    ],
    [{ cpus: 33 }, /cpus: Firecracker takes an integer from 1 to 32/],
    [
      { disks: [{ id: "x".repeat(65), path: "/d.img", readOnly: true, format: "raw" }] },
      /disks\[0\]\.id/,
    ],
    [{ nics: [{ id: "e", tap: "t", mac: "52:54:00:00:00" }] }, /nics\[0\]\.mac/],
  ];
  for (const [change, message] of cases) {
    await rejects(() => driver.create({ ...base, ...change }), (e: VolantError) => {
      equal(e.code, "invalid_argument");
      match(e.message, message);
      return true;
    });
  }
});
