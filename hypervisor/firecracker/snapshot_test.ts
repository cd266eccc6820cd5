// Saving and restoring guests with the Firecracker driver, against the snapshot-capable fake
// VMM (hypervisor/fake/snapshot_vmm.ts), which checks every request against the vendored API
// documents.
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { READY_MARKER, VolantError } from "../../schema/mod.ts";
import { processesMentioning } from "../contract_suite.ts";
import type { VmmHandle, VmSpec } from "../driver.ts";
import { TICK_MARKER, writeSnapshotFake } from "../fake/snapshot_vmm.ts";
import { type FakeTraceEntry, readTrace } from "../testing/fake_ch_vmm.ts";
import { vendoredDocument } from "../testing/openapi_contract.ts";
import { FirecrackerDriver } from "./driver.ts";

const DOCS = [
  "firecracker/openapi/openapi-v1.16.1.yaml",
  "firecracker/openapi/openapi.yaml",
] as const;

interface Vm {
  dir: string;
  spec: VmSpec;
  trace: string;
  driver: FirecrackerDriver;
}

/** A temp dir with a guest, a spec and a fake; every process naming it is killed afterwards. */
async function withVm(
  fn: (vm: Vm) => Promise<void>,
  options: { doc?: string; fail?: Record<string, { status: number; message: string }> } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-fc-snap-" });
  try {
    await Deno.mkdir(`${dir}/run`);
    await Deno.writeTextFile(`${dir}/vmlinux`, "fake kernel");
    await Deno.writeTextFile(`${dir}/root.img`, "root disk\n");
    const trace = `${dir}/trace.jsonl`;
    const fake = await writeSnapshotFake(dir, "firecracker", {
      document: vendoredDocument(options.doc ?? DOCS[0]),
      version: "1.16.1",
      trace,
      ...(options.fail ? { fail: options.fail } : {}),
    });
    const spec: VmSpec = {
      id: "fc-snap",
      cpus: 2,
      memoryMib: 256,
      kernel: { path: `${dir}/vmlinux`, format: "vmlinux" },
      cmdline: "console=ttyS0 reboot=k volant_test_name=fc-snap volant_test_ticks=1",
      disks: [{ id: "root", path: `${dir}/root.img`, readOnly: false, format: "raw" }],
      nics: [{ id: "eth0", tap: "vtap0", mac: "52:54:00:12:34:56" }],
      serialLog: `${dir}/serial.log`,
      vmmLog: `${dir}/vmm.log`,
      runtimeDir: `${dir}/run`,
    };
    const driver = new FirecrackerDriver({ binary: fake.path, processExe: fake.processExe });
    await fn({ dir, spec, trace, driver });
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
    name: `firecracker: a saved guest restores into a new VMM, paused, and carries on (${doc})`,
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
          deepEqual(saved.files, ["memory", "vmstate"]);
          deepEqual(names(state), saved.files, "only the VMM's files, complete");
          let total = 0;
          for (const file of saved.files) {
            const info = await Deno.stat(`${state}/${file}`);
            total += info.size;
            equal((info.mode ?? 0) & 0o777, 0o600, `${file} is private`);
          }
          equal(saved.bytes, total);
          equal((await Deno.stat(`${state}/memory`)).size, 256 * 2 ** 20);
          deepEqual(names(vm.spec.runtimeDir), ["fc.pid", "fc.sock"]);
          const last = ticks(await Deno.readTextFile(vm.spec.serialLog)).at(-1)!;
          await vm.driver.resume(source);
          await untilTick(vm.spec.serialLog, last.n + 2);
          await stop(vm, source);

          await Deno.mkdir(`${vm.dir}/run2`);
          const again: VmSpec = {
            ...vm.spec,
            runtimeDir: `${vm.dir}/run2`,
            serialLog: `${vm.dir}/serial2.log`,
            nics: [{ ...vm.spec.nics[0]!, tap: "vtap1" }],
            restoreFrom: state,
          };
          restored = await vm.driver.create(again);
          equal(await vm.driver.info(restored), "paused", "a restored guest waits for resume");
          deepEqual(names(again.runtimeDir), ["fc.pid", "fc.sock"]);
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
          const calls = entries.map((e) => `${e.method} ${e.path}`);
          const save = calls.indexOf("PUT /snapshot/create");
          deepEqual(calls.slice(save - 2, save + 1), [
            "GET /",
            "PATCH /vm",
            "PUT /snapshot/create",
          ]);
          deepEqual(entries[save - 1]!.body, { state: "Paused" });
          deepEqual(entries[save]!.body, {
            snapshot_type: "Full",
            snapshot_path: `${state}/.state.partial/vmstate`,
            mem_file_path: `${state}/.state.partial/memory`,
          });
          const load = calls.indexOf("PUT /snapshot/load");
          deepEqual(
            calls.slice(load - 1, load + 1),
            ["GET /", "PUT /snapshot/load"],
            "nothing configured before the load",
          );
          deepEqual(entries[load]!.body, {
            snapshot_path: `${state}/vmstate`,
            mem_backend: { backend_type: "File", backend_path: `${state}/memory` },
            resume_vm: false,
            network_overrides: [{ iface_id: "eth0", host_dev_name: "vtap1" }],
          });
          ok(entries[save]!.status === 204 && entries[load]!.status === 204);
          equal(calls.filter((c) => c === "PUT /boot-source").length, 1, "one boot only");
        } finally {
          if (restored) await stop(vm, restored).catch(() => {});
          await stop(vm, source).catch(() => {});
        }
        deepEqual(await processesMentioning(vm.dir), []);
      }, { doc }),
  });
}

Deno.test("firecracker: a restore from a missing state is refused before any VMM starts", () =>
  withVm(async (vm) => {
    const refused = (path: RegExp) => (err: VolantError) => {
      equal(err.code, "invalid_argument", err.message);
      match(err.message, path);
      equal(err.details?.field, "restoreFrom");
      return true;
    };
    await rejects(
      vm.driver.create({ ...vm.spec, restoreFrom: `${vm.dir}/none` }),
      refused(/^restoreFrom .*\/none\/vmstate: no such file$/),
    );
    await Deno.mkdir(`${vm.dir}/partial`);
    await Deno.writeTextFile(`${vm.dir}/partial/vmstate`, "{}");
    await rejects(
      vm.driver.create({ ...vm.spec, restoreFrom: `${vm.dir}/partial` }),
      refused(/^restoreFrom .*\/partial\/memory: no such file$/),
    );
    await rejects(
      vm.driver.create({ ...vm.spec, restoreFrom: "partial" }),
      refused(/^restoreFrom partial: not an absolute path$/),
    );
    deepEqual(await readTrace(vm.trace), [], "no VMM was started");
    deepEqual(await processesMentioning(vm.dir), []);
    deepEqual(names(vm.spec.runtimeDir), []);
  }));

Deno.test("firecracker: a failed snapshot load (the VMM exits) leaves nothing behind", () =>
  withVm(async (vm) => {
    const { handle, state } = await bootAndSave(vm);
    await stop(vm, handle);
    // A state whose memory file is another size.
    await Deno.truncate(`${state}/memory`, 4096);
    await rejects(vm.driver.create({ ...vm.spec, restoreFrom: state }), (err: VolantError) => {
      equal(err.code, "invalid_argument", err.message);
      match(err.message, /PUT \/snapshot\/load \(HTTP 400\): Load snapshot error: the memory file/);
      return true;
    });
    deepEqual(await processesMentioning(vm.dir), [], "no VMM left");
    deepEqual(names(vm.spec.runtimeDir), [], "no socket or pid file left");
    deepEqual(names(state), ["memory", "vmstate"], "the saved state is left as it was");
  }));

Deno.test("firecracker: a network override for an unknown interface is refused by the VMM", () =>
  withVm(async (vm) => {
    const { handle, state } = await bootAndSave(vm);
    await stop(vm, handle);
    await rejects(
      vm.driver.create({
        ...vm.spec,
        nics: [{ id: "eth9", tap: "vtap9", mac: "52:54:00:00:00:09" }],
        restoreFrom: state,
      }),
      /no network interface eth9 to override/,
    );
    deepEqual(await processesMentioning(vm.dir), []);
    deepEqual(names(vm.spec.runtimeDir), []);
  }));

Deno.test("firecracker: a failed snapshot/create leaves nothing in the directory", () =>
  withVm(async (vm) => {
    const handle = await vm.driver.create(vm.spec);
    try {
      await vm.driver.boot(handle);
      await untilTick(vm.spec.serialLog, 1);
      const state = `${vm.dir}/state`;
      await Deno.mkdir(state);
      await rejects(vm.driver.saveState(handle, state), (err: VolantError) => {
        match(err.message, /snapshot\/create \(HTTP 400\): Cannot write the memory file/);
        return true;
      });
      deepEqual(names(state), [], "no partial state");
      equal(await vm.driver.info(handle), "paused", "the guest stays paused");
    } finally {
      await stop(vm, handle);
    }
  }, {
    fail: { "PUT /snapshot/create": { status: 400, message: "Cannot write the memory file" } },
  }));

Deno.test("firecracker: saveState refuses a guest never booted, asking the VMM nothing", () =>
  withVm(async (vm) => {
    const handle = await vm.driver.create(vm.spec);
    try {
      await Deno.mkdir(`${vm.dir}/state`);
      await rejects(
        vm.driver.saveState(handle, `${vm.dir}/state`),
        /is created \(Not started\), not running or paused: cannot save its state/,
      );
      ok(!(await readTrace(vm.trace)).some((e) => e.path.startsWith("/snapshot")));
    } finally {
      await stop(vm, handle);
    }
  }));
