// Saving and restoring guests with the Cloud Hypervisor driver, against the snapshot-capable
// fake VMM (hypervisor/fake/snapshot_vmm.ts), which checks every request against the vendored
// API documents.
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { READY_MARKER, VolantError } from "../../schema/mod.ts";
import { processesMentioning } from "../contract_suite.ts";
import type { VmmHandle, VmSpec } from "../driver.ts";
import { TICK_MARKER, writeSnapshotFake } from "../fake/snapshot_vmm.ts";
import { type FakeBinary, type FakeTraceEntry, readTrace } from "../testing/fake_ch_vmm.ts";
import { vendoredDocument } from "../testing/openapi_contract.ts";
import { CloudHypervisorDriver } from "./driver.ts";

const DOCS = [
  "cloud_hypervisor/openapi/openapi-v53.0.yaml",
  "cloud_hypervisor/openapi/openapi.yaml",
] as const;

interface Vm {
  dir: string;
  spec: VmSpec;
  trace: string;
  fake: FakeBinary;
  driver: CloudHypervisorDriver;
}

/** A temp dir with a guest, a spec and a fake; every process naming it is killed afterwards. */
async function withVm(
  fn: (vm: Vm) => Promise<void>,
  options: { doc?: string; fail?: Record<string, { status: number; message: string }> } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-ch-snap-" });
  try {
    await Deno.mkdir(`${dir}/run`);
    await Deno.writeTextFile(`${dir}/vmlinux`, "fake kernel");
    await Deno.writeTextFile(`${dir}/root.img`, "root disk\n");
    const trace = `${dir}/trace.jsonl`;
    const fake = await writeSnapshotFake(dir, "cloud-hypervisor", {
      document: vendoredDocument(options.doc ?? DOCS[0]),
      version: "53.0.0",
      trace,
      ...(options.fail ? { fail: options.fail } : {}),
    });
    const spec: VmSpec = {
      id: "ch-snap",
      cpus: 2,
      memoryMib: 256,
      kernel: { path: `${dir}/vmlinux`, format: "vmlinux" },
      cmdline: "console=ttyS0 volant_test_name=ch-snap volant_test_ticks=1",
      disks: [{ id: "root", path: `${dir}/root.img`, readOnly: false, format: "raw" }],
      nics: [{ id: "eth0", tap: "vtap0", mac: "52:54:00:12:34:56" }],
      serialLog: `${dir}/serial.log`,
      vmmLog: `${dir}/vmm.log`,
      runtimeDir: `${dir}/run`,
    };
    const driver = new CloudHypervisorDriver({ binary: fake.path, processExe: fake.processExe });
    await fn({ dir, spec, trace, fake, driver });
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

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

/** The tick numbers and memory ids in a serial log. */
function ticks(text: string): Array<{ n: number; id: string }> {
  return [...text.matchAll(new RegExp(`^${TICK_MARKER} (\\d+) (\\w+)$`, "gm"))]
    .map((m) => ({ n: Number(m[1]), id: m[2]! }));
}

async function untilTick(log: string, atLeast: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!ticks(await Deno.readTextFile(log).catch(() => "")).some((t) => t.n >= atLeast)) {
    if (Date.now() > deadline) throw new Error(`no tick ${atLeast} in ${log} within 30 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stop(vm: Vm, handle: VmmHandle): Promise<void> {
  await vm.driver.shutdown(handle, { gracefulMs: 0, termMs: 5_000 });
  await vm.driver.cleanup(handle);
}

function assertDocumented(entries: FakeTraceEntry[]): void {
  for (const e of entries) {
    deepEqual(e.problems, [], `${e.method} ${e.path} follows the API document`);
    deepEqual(e.answerProblems, [], `the fake's answer to ${e.method} ${e.path}`);
  }
}

/** Boots the spec's guest until it has counted to 3, and saves it into `<dir>/state`. */
async function bootAndSave(vm: Vm): Promise<{ handle: VmmHandle; state: string }> {
  const handle = await vm.driver.create(vm.spec);
  await vm.driver.boot(handle);
  await untilTick(vm.spec.serialLog, 3);
  const state = `${vm.dir}/state`;
  await Deno.mkdir(state);
  await vm.driver.saveState(handle, state);
  return { handle, state };
}

for (const doc of DOCS) {
  Deno.test({
    name:
      `cloud-hypervisor: a saved guest restores into a new VMM, paused, and carries on (${doc})`,
    fn: () =>
      withVm(async (vm) => {
        const source = await vm.driver.create(vm.spec);
        let restored: VmmHandle | undefined;
        try {
          await vm.driver.boot(source);
          await untilTick(vm.spec.serialLog, 3);
          const state = `${vm.dir}/state`;
          await Deno.mkdir(state);
          const saved = await vm.driver.saveState(source, state);
          equal(await vm.driver.info(source), "paused", "saving leaves the guest paused");
          deepEqual(saved.files, ["config.json", "memory-ranges", "state.json"]);
          deepEqual(names(state), saved.files, "only the VMM's files, complete");
          let total = 0;
          for (const file of saved.files) {
            const info = await Deno.stat(`${state}/${file}`);
            total += info.size;
            equal((info.mode ?? 0) & 0o777, 0o600, `${file} is private`);
          }
          equal(saved.bytes, total);
          equal((await Deno.stat(`${state}/memory-ranges`)).size, 256 * 2 ** 20);
          ok(saved.ms >= 0);
          deepEqual(names(vm.spec.runtimeDir), ["ch.pid", "ch.sock", "ch.sock.lock"]);
          const atSave = ticks(await Deno.readTextFile(vm.spec.serialLog));
          const last = atSave.at(-1)!;
          // The source carries on too.
          await vm.driver.resume(source);
          await untilTick(vm.spec.serialLog, last.n + 2);
          await stop(vm, source);

          await Deno.mkdir(`${vm.dir}/run2`);
          const again: VmSpec = {
            ...vm.spec,
            runtimeDir: `${vm.dir}/run2`,
            serialLog: `${vm.dir}/serial2.log`,
            restoreFrom: state,
          };
          restored = await vm.driver.create(again);
          equal(await vm.driver.info(restored), "paused", "a restored guest waits for resume");
          deepEqual(names(again.runtimeDir), ["ch.pid", "ch.sock", "ch.sock.lock"], "staging gone");
          deepEqual(names(state), saved.files, "the saved state is left as it was");
          await vm.driver.resume(restored);
          equal(await vm.driver.info(restored), "running");
          await untilTick(again.serialLog, last.n + 2);
          const after = await Deno.readTextFile(again.serialLog);
          ok(!after.includes(READY_MARKER), `the restored guest did not boot again:\n${after}`);
          const first = ticks(after)[0]!;
          equal(first.id, last.id, "the restored guest has the saved guest's memory");
          ok(
            first.n > last.n && first.n <= last.n + 2,
            `it carries on from tick ${last.n}: first tick ${first.n}`,
          );
          await stop(vm, restored);
          restored = undefined;

          const entries = await readTrace(vm.trace);
          assertDocumented(entries);
          const calls = entries.map((e) => `${e.method} ${e.path.replace("/api/v1", "")}`);
          const restore = calls.lastIndexOf("PUT /vm.restore");
          deepEqual(calls.slice(restore - 1, restore + 1), ["GET /vmm.ping", "PUT /vm.restore"]);
          equal(calls.filter((c) => c === "PUT /vm.create").length, 1, "no vm.create to restore");
          const save = calls.indexOf("PUT /vm.snapshot");
          deepEqual(calls.slice(save - 2, save + 1), [
            "GET /vm.info",
            "PUT /vm.pause",
            "PUT /vm.snapshot",
          ]);
          deepEqual(entries[save]!.body, { destination_url: `file://${state}/.state.partial` });
          deepEqual(entries[restore]!.body, {
            source_url: `file://${again.runtimeDir}/state.restore`,
            resume: false,
          });
          ok(entries[save]!.status === 204 && entries[restore]!.status === 204);
        } finally {
          if (restored) await stop(vm, restored).catch(() => {});
          await stop(vm, source).catch(() => {});
        }
        deepEqual(await processesMentioning(vm.dir), []);
      }, { doc }),
  });
}

Deno.test("cloud-hypervisor: saving a paused guest pauses nothing; the state is the same", () =>
  withVm(async (vm) => {
    const handle = await vm.driver.create(vm.spec);
    try {
      await vm.driver.boot(handle);
      await untilTick(vm.spec.serialLog, 2);
      await vm.driver.pause(handle);
      const before = (await readTrace(vm.trace)).length;
      await Deno.mkdir(`${vm.dir}/state`);
      await vm.driver.saveState(handle, `${vm.dir}/state`);
      const calls = (await readTrace(vm.trace)).slice(before).map((e) => `${e.method} ${e.path}`);
      deepEqual(calls, ["GET /api/v1/vm.info", "PUT /api/v1/vm.snapshot"]);
      equal(await vm.driver.info(handle), "paused");
    } finally {
      await stop(vm, handle);
    }
  }));

Deno.test("cloud-hypervisor: a restore from a missing state is refused before any VMM starts", () =>
  withVm(async (vm) => {
    const refused = (path: RegExp) => (err: VolantError) => {
      equal(err.code, "invalid_argument", err.message);
      match(err.message, path);
      deepEqual(err.details, { field: "restoreFrom", path: err.details?.path });
      return true;
    };
    await rejects(
      vm.driver.create({ ...vm.spec, restoreFrom: `${vm.dir}/none` }),
      refused(/^restoreFrom .*\/none\/config\.json: no such file$/),
    );
    const { handle, state } = await bootAndSave(vm);
    await stop(vm, handle);
    const spawned = (await readTrace(vm.trace)).filter((e) => e.path.endsWith("vmm.ping")).length;
    // Without its memory.
    await Deno.mkdir(`${vm.dir}/partial`);
    for (const f of ["config.json", "state.json"]) {
      await Deno.copyFile(`${state}/${f}`, `${vm.dir}/partial/${f}`);
    }
    await rejects(
      vm.driver.create({ ...vm.spec, restoreFrom: `${vm.dir}/partial` }),
      refused(/^restoreFrom .*\/partial\/memory-ranges: no such file$/),
    );
    // An empty file is no state.
    await Deno.writeTextFile(`${vm.dir}/partial/memory-ranges`, "");
    await rejects(
      vm.driver.create({ ...vm.spec, restoreFrom: `${vm.dir}/partial` }),
      refused(/memory-ranges: not a saved state file$/),
    );
    // Saved from another VM: its memory, its disks.
    await rejects(
      vm.driver.create({ ...vm.spec, memoryMib: 512, restoreFrom: state }),
      refused(/config\.json: saved with 2 vCPUs and 268435456 bytes of memory, the spec has 2 and/),
    );
    await rejects(
      vm.driver.create({ ...vm.spec, disks: [], restoreFrom: state }),
      refused(/config\.json: saved with disks \[disk-root\], the spec has \[\]/),
    );
    await Deno.writeTextFile(`${vm.dir}/partial/memory-ranges`, "x");
    await Deno.writeTextFile(`${vm.dir}/partial/config.json`, "{not json");
    await rejects(
      vm.driver.create({ ...vm.spec, restoreFrom: `${vm.dir}/partial` }),
      refused(/partial\/config\.json: not a saved state file: /),
    );
    equal(
      (await readTrace(vm.trace)).filter((e) => e.path.endsWith("vmm.ping")).length,
      spawned,
      "no VMM was started for the refused restores",
    );
    deepEqual(await processesMentioning(vm.dir), []);
    deepEqual(names(vm.spec.runtimeDir), [], "no socket, pid file or staging left");
  }));

Deno.test("cloud-hypervisor: a failed vm.restore kills the VMM and leaves nothing behind", () =>
  withVm(async (vm) => {
    const { handle, state } = await bootAndSave(vm);
    await stop(vm, handle);
    // Memory that is not the saved guest's: the VMM refuses it.
    const memory = await Deno.open(`${state}/memory-ranges`, { write: true });
    await memory.write(new TextEncoder().encode("garbage"));
    memory.close();
    await rejects(vm.driver.create({ ...vm.spec, restoreFrom: state }), (err: VolantError) => {
      equal(err.code, "vmm_failed", err.message);
      match(err.message, /PUT \/api\/v1\/vm\.restore \(HTTP 500\)/);
      match(err.message, /The VM could not be restored: .*not the saved guest's memory/);
      return true;
    });
    deepEqual(await processesMentioning(vm.dir), [], "no VMM left");
    deepEqual(names(vm.spec.runtimeDir), [], "no socket, lock, pid file or staging left");
    deepEqual(names(state), ["config.json", "memory-ranges", "state.json"], "state untouched");
  }));

Deno.test("cloud-hypervisor: a restore refused by the VMM carries its message", () =>
  withVm(async (vm) => {
    const { handle, state } = await bootAndSave(vm);
    await stop(vm, handle);
    await rejects(vm.driver.create({ ...vm.spec, restoreFrom: state }), (err: VolantError) => {
      equal(err.code, "invalid_argument", err.message);
      match(err.message, /vm\.restore \(HTTP 400\): Error from API: Cannot open tap vtap0/);
      return true;
    });
    deepEqual(await processesMentioning(vm.dir), []);
    deepEqual(names(vm.spec.runtimeDir), []);
  }, { fail: { "PUT /api/v1/vm.restore": { status: 400, message: "Cannot open tap vtap0" } } }));

Deno.test("cloud-hypervisor: a failed vm.snapshot leaves nothing in the directory", () =>
  withVm(async (vm) => {
    const handle = await vm.driver.create(vm.spec);
    try {
      await vm.driver.boot(handle);
      await untilTick(vm.spec.serialLog, 1);
      const state = `${vm.dir}/state`;
      await Deno.mkdir(state);
      await rejects(vm.driver.saveState(handle, state), (err: VolantError) => {
        equal(err.code, "vmm_failed", err.message);
        match(err.message, /vm\.snapshot \(HTTP 500\): Error from API: No space left on device/);
        return true;
      });
      deepEqual(names(state), [], "no partial state");
      equal(await vm.driver.info(handle), "paused", "the guest stays paused");
      await vm.driver.resume(handle);
      equal(await vm.driver.info(handle), "running");
    } finally {
      await stop(vm, handle);
    }
  }, {
    fail: { "PUT /api/v1/vm.snapshot": { status: 500, message: "No space left on device" } },
  }));

Deno.test("cloud-hypervisor: saveState refuses a used directory and a guest never booted", () =>
  withVm(async (vm) => {
    const handle = await vm.driver.create(vm.spec);
    try {
      const state = `${vm.dir}/state`;
      await rejects(vm.driver.saveState(handle, state), /state does not exist/);
      await Deno.mkdir(state);
      await rejects(vm.driver.saveState(handle, state), (err: VolantError) => {
        equal(err.code, "vmm_failed");
        match(err.message, /is created \(Created\), not running or paused: cannot save its state/);
        return true;
      });
      await Deno.writeTextFile(`${state}/old`, "");
      await rejects(vm.driver.saveState(handle, state), (err: VolantError) => {
        equal(err.code, "invalid_argument");
        match(err.message, /is not empty \(it holds old\)/);
        return true;
      });
      equal(await vm.driver.info(handle), "created");
      deepEqual(names(state), ["old"]);
      ok(
        !(await readTrace(vm.trace)).some((e) => e.path.endsWith("vm.snapshot")),
        "nothing was asked of the VMM",
      );
    } finally {
      await stop(vm, handle);
    }
  }));
