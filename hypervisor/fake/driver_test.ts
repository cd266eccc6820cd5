import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { decodeBootConfig, READY_MARKER, ReadyReport, VolantError } from "../../schema/mod.ts";
import { runDriverContract, TEST_IGNORE_POWER } from "../contract_suite.ts";
import type { VmSpec } from "../driver.ts";
import { FAKE_MEMORY_FILE, FAKE_STATE_FILE, FakeDriver, FakeRegistry } from "./mod.ts";

// The shared driver contract, on simulated processes. One registry stands for the host's
// process table, so every new driver instance (a "restarted daemon") sees the same VMMs.
const contractRegistry = new FakeRegistry();
runDriverContract({
  name: "fake",
  newDriver: () =>
    new FakeDriver({
      registry: contractRegistry,
      behavior: (spec) => ({
        readyDelayMs: 5,
        ignorePowerButton: spec.cmdline.split(" ").includes(TEST_IGNORE_POWER),
      }),
    }),
  makeGuest: async (dir) => {
    await Deno.writeTextFile(`${dir}/kernel`, "fake kernel");
    await Deno.writeTextFile(`${dir}/initrd`, "fake initramfs");
    return {
      kernel: { path: `${dir}/kernel`, format: "bzImage" },
      initramfs: `${dir}/initrd`,
      cmdline: "console=ttyS0",
    };
  },
  skip: [{
    reason: "the fake has no guest block layer: disk order is a property of a real VMM's devices",
    tests: ["disks appear in spec order"],
  }],
  badDiskMessage: /Image is not in qcow2 format/,
  killExternally: (handle) => contractRegistry.kill(handle.pid),
  isRunning: (handle) => Promise.resolve(contractRegistry.find(handle) !== undefined),
  processesUsing: (dir) =>
    Promise.resolve(
      contractRegistry.alive().filter((p) => p.spec.runtimeDir.startsWith(dir)).map((p) => p.pid),
    ),
  afterEach: () => contractRegistry.dispose(),
});

async function fixture(): Promise<{ dir: string; spec: VmSpec }> {
  const dir = await Deno.makeTempDir({ prefix: "fake-driver-" });
  for (const f of ["kernel", "initrd", "disk"]) await Deno.writeTextFile(`${dir}/${f}`, "x");
  await Deno.mkdir(`${dir}/run`);
  const spec: VmSpec = {
    id: "web",
    cpus: 1,
    memoryMib: 256,
    kernel: { path: `${dir}/kernel`, format: "bzImage" },
    initramfs: `${dir}/initrd`,
    cmdline: "console=ttyS0 volant.boot=eyJ2IjoxLCJuYW1lIjoid2ViIiwiaG9zdG5hbWUiOiJ3ZWIifQ",
    disks: [{ id: "runtime", path: `${dir}/disk`, readOnly: true, format: "raw" }],
    nics: [],
    serialLog: `${dir}/serial.log`,
    vmmLog: `${dir}/vmm.log`,
    runtimeDir: `${dir}/run`,
  };
  return { dir, spec };
}

async function readyLine(path: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const text = await Deno.readTextFile(path).catch(() => "");
    const line = text.split("\n").find((l) => l.startsWith(READY_MARKER));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("no ready line");
}

Deno.test("fake guest boots and reports ready on the serial log", async () => {
  const { dir, spec } = await fixture();
  const registry = new FakeRegistry();
  try {
    const driver = new FakeDriver({ registry, behavior: { readyDelayMs: 5 } });
    equal(decodeBootConfig(spec.cmdline)?.name, "web");
    const handle = await driver.create(spec);
    ok(handle.pid >= 10_000_000, "fake pids never collide with real ones");
    equal(await driver.info(handle), "created");
    await driver.boot(handle);
    equal(await driver.info(handle), "running");
    const report = ReadyReport.parse(
      JSON.parse((await readyLine(spec.serialLog)).slice(READY_MARKER.length)),
    );
    equal(report.name, "web");
    equal(report.mem_total_kb, 256 * 1024);
    await driver.pause(handle);
    equal(await driver.info(handle), "paused");
    await driver.resume(handle);
    const exited = driver.waitExit(handle);
    deepEqual(await driver.shutdown(handle, { gracefulMs: 100, termMs: 100 }), { via: "graceful" });
    await exited;
    await rejects(() => driver.info(handle), (e: VolantError) => e.code === "vmm_failed");
    deepEqual(await driver.shutdown(handle, { gracefulMs: 1, termMs: 1 }), {
      via: "already-exited",
    });
    ok((await Deno.lstat(handle.apiSocket)).isFile);
    await driver.cleanup(handle);
    deepEqual([...Deno.readDirSync(spec.runtimeDir)], [], "cleanup removes socket and pid file");
  } finally {
    registry.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fake create failures leave nothing behind", async () => {
  const { dir, spec } = await fixture();
  const registry = new FakeRegistry();
  try {
    const failing = new FakeDriver({
      registry,
      behavior: { createError: new VolantError("vmm_failed", "injected") },
    });
    await rejects(() => failing.create(spec), /injected/);
    const driver = new FakeDriver({ registry, kernelFormats: ["vmlinux"] });
    await rejects(() => driver.create(spec), /cannot boot bzImage/);
    const plain = new FakeDriver({ registry });
    await rejects(
      () => plain.create({ ...spec, initramfs: `${dir}/missing` }),
      (e: VolantError) => e.code === "kernel_not_found" && /missing/.test(e.message),
    );
    equal(registry.alive().length, 0);
    deepEqual([...Deno.readDirSync(spec.runtimeDir)], []);
  } finally {
    registry.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fake stop ladder, crashes and adoption across driver instances", async () => {
  const { dir, spec } = await fixture();
  const registry = new FakeRegistry();
  try {
    const deaf = new FakeDriver({ registry, behavior: { ignorePowerButton: true } });
    const h1 = await deaf.create(spec);
    await deaf.boot(h1);
    deepEqual(await deaf.shutdown(h1, { gracefulMs: 10, termMs: 10 }), { via: "sigterm" });
    const stubborn = new FakeDriver({
      registry,
      behavior: { ignorePowerButton: true, ignoreSigterm: true },
    });
    const h2 = await stubborn.create(spec);
    await stubborn.boot(h2);
    deepEqual(await stubborn.shutdown(h2, { gracefulMs: 10, termMs: 10 }), { via: "sigkill" });

    const crashy = new FakeDriver({ registry, behavior: { crashAfterMs: 10, neverReady: true } });
    const h3 = await crashy.create(spec);
    await crashy.boot(h3);
    await crashy.waitExit(h3);
    match(await Deno.readTextFile(spec.serialLog), /Kernel panic/);
    equal(registry.get(h3.pid)?.exitReason, "killed");

    const a = new FakeDriver({ registry });
    const h4 = await a.create(spec);
    const b = new FakeDriver({ registry });
    equal(await b.adopt(h4), true, "another instance over the same registry adopts");
    equal(await b.adopt({ ...h4, startTime: h4.startTime + 1 }), false, "pid reuse is detected");
    equal(await new FakeDriver().adopt(h4), false, "a different registry knows nothing");
    equal(await new FakeDriver({ registry, name: "firecracker" }).adopt(h4), false);
    registry.kill(h4.pid);
    equal(await b.adopt(h4), false);
    await b.waitExit(h4);
    const probe = await new FakeDriver({ unavailable: true }).probe();
    equal(probe.available, false);
  } finally {
    registry.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fake save and restore: the restored guest is held paused and does not boot again", async () => {
  const { dir, spec } = await fixture();
  const registry = new FakeRegistry();
  try {
    const driver = new FakeDriver({ registry, behavior: { readyDelayMs: 5 } });
    const source = await driver.create(spec);
    await driver.boot(source);
    await readyLine(spec.serialLog);
    const state = `${dir}/state`;
    await Deno.mkdir(state);
    const saved = await driver.saveState!(source, state);
    equal(await driver.info(source), "paused", "saving pauses the guest");
    deepEqual(saved.files, [FAKE_MEMORY_FILE, FAKE_STATE_FILE]);
    deepEqual([...Deno.readDirSync(state)].map((e) => e.name).sort(), saved.files);
    let bytes = 0;
    for (const f of saved.files) bytes += (await Deno.stat(`${state}/${f}`)).size;
    equal(saved.bytes, bytes);
    await driver.shutdown(source, { gracefulMs: 0, termMs: 10 });
    await driver.cleanup(source);

    await Deno.writeTextFile(spec.serialLog, "");
    const restored = await driver.create({ ...spec, restoreFrom: state });
    equal(await driver.info(restored), "paused");
    const p = registry.find(restored)!;
    equal(p.restoredFrom, state);
    equal(p.ready, true, "the guest was ready when saved");
    await rejects(driver.boot(restored), /already paused/);
    await driver.resume(restored);
    equal(await driver.info(restored), "running");
    await new Promise((r) => setTimeout(r, 20));
    ok(!(await Deno.readTextFile(spec.serialLog)).includes(READY_MARKER), "no second boot");
    await driver.shutdown(restored, { gracefulMs: 100, termMs: 10 });
  } finally {
    registry.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fake restore checks the saved state before any process exists", async () => {
  const { dir, spec } = await fixture();
  const registry = new FakeRegistry();
  try {
    const driver = new FakeDriver({ registry });
    const refused = (path: RegExp) => (e: VolantError) => {
      equal(e.code, "invalid_argument", e.message);
      match(e.message, path);
      equal(e.details?.field, "restoreFrom");
      return true;
    };
    await rejects(
      driver.create({ ...spec, restoreFrom: `${dir}/none` }),
      refused(/^restoreFrom .*\/none\/fake-vmm-state\.json: no such file$/),
    );
    const h = await driver.create(spec);
    await driver.boot(h);
    await Deno.mkdir(`${dir}/state`);
    await driver.saveState!(h, `${dir}/state`);
    await driver.shutdown(h, { gracefulMs: 0, termMs: 10 });
    await driver.cleanup(h);
    await rejects(
      driver.create({ ...spec, memoryMib: 512, restoreFrom: `${dir}/state` }),
      refused(/saved with 1 vCPUs and 256 MiB, the spec has 1 and 512/),
    );
    await rejects(
      new FakeDriver({ registry, name: "firecracker" }).create({
        ...spec,
        restoreFrom: `${dir}/state`,
      }),
      refused(/fake-vmm-state\.json: not a saved state file/),
      "another driver's state",
    );
    await Deno.writeTextFile(`${dir}/state/${FAKE_MEMORY_FILE}`, "short");
    await rejects(
      driver.create({ ...spec, restoreFrom: `${dir}/state` }),
      refused(/fake-vmm-memory: not a saved state file/),
    );
    const failing = new FakeDriver({
      registry,
      behavior: { restoreError: new VolantError("vmm_failed", "injected restore failure") },
    });
    await Deno.remove(`${dir}/state`, { recursive: true });
    await Deno.mkdir(`${dir}/state`);
    const h2 = await driver.create(spec);
    await driver.boot(h2);
    await driver.saveState!(h2, `${dir}/state`);
    await driver.shutdown(h2, { gracefulMs: 0, termMs: 10 });
    await driver.cleanup(h2);
    await rejects(failing.create({ ...spec, restoreFrom: `${dir}/state` }), /injected restore/);
    equal(registry.alive().length, 0, "no process for a refused or failed restore");
    deepEqual([...Deno.readDirSync(spec.runtimeDir)], []);
  } finally {
    registry.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fake saveState refusals; a driver without snapshots has none", async () => {
  const { dir, spec } = await fixture();
  const registry = new FakeRegistry();
  try {
    const driver = new FakeDriver({
      registry,
      behavior: { saveError: new VolantError("vmm_failed", "injected save failure") },
    });
    const h = await driver.create(spec);
    await Deno.mkdir(`${dir}/state`);
    await rejects(driver.saveState!(h, `${dir}/state`), /is created, not running or paused/);
    await driver.boot(h);
    await rejects(driver.saveState!(h, `${dir}/none`), /does not exist/);
    await rejects(driver.saveState!(h, `${dir}/state`), /injected save failure/);
    equal(await driver.info(h), "paused", "a failed save leaves the guest paused");
    deepEqual([...Deno.readDirSync(`${dir}/state`)], []);
    await Deno.writeTextFile(`${dir}/state/x`, "");
    await rejects(driver.saveState!(h, `${dir}/state`), /is not empty/);
    const plain = new FakeDriver({ registry, snapshots: false });
    equal(plain.saveState, undefined);
    await rejects(plain.create({ ...spec, restoreFrom: `${dir}/state` }), (e: VolantError) => {
      equal(e.code, "unsupported");
      return true;
    });
  } finally {
    registry.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
