/**
 * The behavioural contract every {@linkcode Driver} must meet, as one shared test suite. Each
 * driver's test file calls {@linkcode runDriverContract} with a factory and a guest; known gaps
 * go in `skip` with a written reason.
 *
 * The guest speaks a small protocol on its serial console (the fake simulates it, the real
 * test guest is `testing/busybox_guest.ts`):
 *
 * - it prints a line starting with `KESTREL_READY` once up;
 * - it prints `VOLANT_TEST_DISK <dev> <first line of the disk>` for each block device;
 * - it powers off on the ACPI power button, unless the kernel command line carries
 *   {@linkcode TEST_IGNORE_POWER} (then only SIGTERM ends it).
 *
 * @module
 */
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { READY_MARKER, VolantError } from "../schema/mod.ts";
import type { Driver, KernelFormat, VmmHandle, VmSpec } from "./driver.ts";
import { isAlive } from "./process/mod.ts";
import { processesMentioning, TEST_DISK_MARKER, TEST_IGNORE_POWER } from "./testing/protocol.ts";

export { processesMentioning, TEST_DISK_MARKER, TEST_IGNORE_POWER } from "./testing/protocol.ts";

/** Boot files and base command line of a guest for the contract suite. */
export interface ContractGuest {
  kernel: { path: string; format: KernelFormat };
  initramfs?: string;
  cmdline: string;
}

/** Tests a driver skips, and why. */
export interface ContractSkip {
  reason: string;
  /** Names from {@linkcode CONTRACT_TESTS}. */
  tests: readonly ContractTestName[];
}

/** The names of the suite's tests (what `skip` refers to). */
export const CONTRACT_TESTS = [
  "create leaves the VMM up and the guest not started",
  "boot runs the guest to its ready line",
  "pause and resume",
  "shutdown presses the power button",
  "shutdown falls back to SIGTERM when the guest ignores the power button",
  "create with a missing kernel fails and leaves nothing behind",
  "a VMM that exits at once fails create with its own message",
  "a new driver instance adopts a running VMM but not an exited one",
  "waitExit resolves when the VMM is killed outside the driver",
  "cleanup removes the API socket and pid file",
  "disks appear in spec order",
] as const;
/** One of {@linkcode CONTRACT_TESTS}. */
export type ContractTestName = typeof CONTRACT_TESTS[number];

/** How a driver runs the suite. */
export interface DriverContractOptions {
  /** Prefix of every test name. */
  name: string;
  /** A fresh driver instance; several instances stand for daemon restarts. */
  newDriver: () => Driver | Promise<Driver>;
  /** Writes (or finds) the guest's boot files; `dir` is the test's temp dir. */
  makeGuest: (dir: string) => Promise<ContractGuest>;
  /** Tests this driver skips, with the reason. */
  skip?: readonly ContractSkip[];
  /** Skip the whole suite with this reason (e.g. the VMM binary is missing). */
  ignore?: string;
  /** What the VMM prints when it cannot open a disk declared qcow2 that is not; default /qcow2/i. */
  badDiskMessage?: RegExp;
  /** Kills the VMM with SIGKILL behind the driver's back; default `Deno.kill(pid, "SIGKILL")`. */
  killExternally?: (handle: VmmHandle) => void | Promise<void>;
  /** Whether a VMM process still runs; default checks /proc (pid + start time). */
  isRunning?: (handle: VmmHandle) => Promise<boolean>;
  /** Pids of VMM processes whose command line mentions `dir`; default scans /proc. */
  processesUsing?: (dir: string) => Promise<number[]>;
  /** Runs after each test, pass or fail. */
  afterEach?: () => void | Promise<void>;
  /** Limit for a guest to print its lines; default 90 000 ms. */
  bootTimeoutMs?: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function readText(path: string): Promise<string> {
  return await Deno.readTextFile(path).catch(() => "");
}

interface Fixture {
  dir: string;
  spec: VmSpec;
  handles: VmmHandle[];
}

async function writeDisk(path: string, label: string, mib: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    await file.write(new TextEncoder().encode(`${label}\n`));
    await file.truncate(mib * 1024 * 1024);
  } finally {
    file.close();
  }
}

/**
 * Registers the contract tests for one driver with `Deno.test`.
 *
 * @example
 * ```ts ignore
 * import { runDriverContract } from "./contract_suite.ts";
 * runDriverContract({
 *   name: "qemu",
 *   newDriver: () => openQemuDriver({ launchPrefix: ["ip", "netns", "exec", ns] }),
 *   makeGuest: (dir) => buildBusyboxGuest(dir),
 * });
 * ```
 */
export function runDriverContract(options: DriverContractOptions): void {
  const bootTimeoutMs = options.bootTimeoutMs ?? 90_000;
  const skipped = new Map<string, string>();
  for (const s of options.skip ?? []) for (const t of s.tests) skipped.set(t, s.reason);
  const isRunning = options.isRunning ??
    ((h: VmmHandle) => isAlive(h.pid, h.startTime));
  const processesUsing = options.processesUsing ?? processesMentioning;
  const killExternally = options.killExternally ??
    ((h: VmmHandle) => Deno.kill(h.pid, "SIGKILL"));

  async function fixture(extraCmdline = ""): Promise<Fixture> {
    const dir = await Deno.makeTempDir({ prefix: `volant-contract-${options.name}-` });
    await Deno.mkdir(`${dir}/run`);
    await Deno.mkdir(`${dir}/log`);
    const guest = await options.makeGuest(dir);
    const spec: VmSpec = {
      id: "contract",
      cpus: 1,
      memoryMib: 256,
      kernel: guest.kernel,
      ...(guest.initramfs ? { initramfs: guest.initramfs } : {}),
      cmdline: [guest.cmdline, "volant_test_name=contract", extraCmdline].filter((w) => w)
        .join(" "),
      disks: [],
      nics: [],
      serialLog: `${dir}/log/serial.log`,
      vmmLog: `${dir}/log/vmm.log`,
      runtimeDir: `${dir}/run`,
    };
    return { dir, spec, handles: [] };
  }

  async function teardown(driver: Driver | undefined, fx: Fixture | undefined): Promise<void> {
    if (fx) {
      for (const handle of fx.handles) {
        if (await isRunning(handle)) {
          await (driver?.shutdown(handle, { gracefulMs: 0, termMs: 5_000 }) ??
            Promise.resolve()).catch(() => killExternally(handle));
        }
        await driver?.cleanup(handle).catch(() => {});
      }
      // Real VMMs a failed test left behind: ours, since they name our temp dir.
      const strays = options.processesUsing ? [] : await processesMentioning(fx.dir);
      for (const pid of strays) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      await Deno.remove(fx.dir, { recursive: true }).catch(() => {});
    }
    await options.afterEach?.();
  }

  /** Waits for a serial line starting with `prefix`, failing early when the VMM dies. */
  async function serialLine(fx: Fixture, handle: VmmHandle, prefix: string): Promise<string> {
    const deadline = Date.now() + bootTimeoutMs;
    while (Date.now() < deadline) {
      const text = await readText(fx.spec.serialLog);
      const line = text.split("\n").find((l) => l.startsWith(prefix));
      if (line) return line;
      if (!(await isRunning(handle))) {
        throw new Error(
          `The VMM exited before printing ${prefix}; serial:\n${text.slice(-2000)}\n` +
            `VMM log:\n${(await readText(fx.spec.vmmLog)).slice(-2000)}`,
        );
      }
      await sleep(50);
    }
    throw new Error(
      `No ${prefix} line within ${bootTimeoutMs} ms; serial:\n` +
        (await readText(fx.spec.serialLog)).slice(-2000),
    );
  }

  async function assertNothingLeft(fx: Fixture): Promise<void> {
    deepEqual(await processesUsing(fx.dir), [], "no VMM process is left");
    deepEqual(
      [...Deno.readDirSync(fx.spec.runtimeDir)].map((e) => e.name),
      [],
      "no socket or pid file is left",
    );
  }

  function contract(
    name: ContractTestName,
    body: (driver: Driver, fx: Fixture) => Promise<void>,
    extraCmdline = "",
  ): void {
    const reason = options.ignore ?? skipped.get(name);
    if (reason) console.log(`skipping ${options.name}: ${name} (${reason})`);
    Deno.test({
      name: `${options.name}: ${name}` + (reason === undefined ? "" : ` (skipped: ${reason})`),
      ignore: reason !== undefined,
      fn: async () => {
        let driver: Driver | undefined;
        let fx: Fixture | undefined;
        try {
          driver = await options.newDriver();
          fx = await fixture(extraCmdline);
          await body(driver, fx);
        } finally {
          await teardown(driver, fx);
        }
      },
    });
  }

  async function created(driver: Driver, fx: Fixture): Promise<VmmHandle> {
    const handle = await driver.create(fx.spec);
    fx.handles.push(handle);
    return handle;
  }

  async function booted(driver: Driver, fx: Fixture): Promise<VmmHandle> {
    const handle = await created(driver, fx);
    await driver.boot(handle);
    await serialLine(fx, handle, READY_MARKER);
    return handle;
  }

  contract("create leaves the VMM up and the guest not started", async (driver, fx) => {
    const handle = await created(driver, fx);
    equal(handle.driver, driver.name);
    equal(handle.runtimeDir, fx.spec.runtimeDir);
    equal(handle.vmmLog, fx.spec.vmmLog);
    ok(await isRunning(handle), "the VMM process runs after create");
    equal(await driver.info(handle), "created");
    equal(await driver.adopt(handle), true, "its API answers");
    await sleep(300);
    ok(!(await readText(fx.spec.serialLog)).includes(READY_MARKER), "the guest has not run");
  });

  contract("boot runs the guest to its ready line", async (driver, fx) => {
    const handle = await created(driver, fx);
    await driver.boot(handle);
    equal(await driver.info(handle), "running");
    const line = await serialLine(fx, handle, READY_MARKER);
    const report = JSON.parse(line.slice(READY_MARKER.length));
    equal(report.name, "contract");
    await rejects(() => driver.boot(handle), VolantError, "a second boot is refused");
  });

  contract("pause and resume", async (driver, fx) => {
    const handle = await booted(driver, fx);
    await driver.pause(handle);
    equal(await driver.info(handle), "paused");
    await rejects(() => driver.pause(handle), VolantError, "pausing twice is refused");
    await driver.resume(handle);
    equal(await driver.info(handle), "running");
    await rejects(() => driver.resume(handle), VolantError, "resuming a running VM is refused");
  });

  contract("shutdown presses the power button", async (driver, fx) => {
    const handle = await booted(driver, fx);
    const exited = driver.waitExit(handle);
    const result = await driver.shutdown(handle, { gracefulMs: 60_000, termMs: 5_000 });
    deepEqual(result, { via: "graceful" });
    await exited;
    equal(await isRunning(handle), false);
    await rejects(() => driver.info(handle), (e: VolantError) => e.code === "vmm_failed");
    deepEqual(await driver.shutdown(handle, { gracefulMs: 10, termMs: 10 }), {
      via: "already-exited",
    });
  });

  contract(
    "shutdown falls back to SIGTERM when the guest ignores the power button",
    async (driver, fx) => {
      const handle = await booted(driver, fx);
      const result = await driver.shutdown(handle, { gracefulMs: 1_500, termMs: 30_000 });
      deepEqual(result, { via: "sigterm" });
      equal(await isRunning(handle), false);
    },
    TEST_IGNORE_POWER,
  );

  contract("create with a missing kernel fails and leaves nothing behind", async (driver, fx) => {
    const missing = `${fx.dir}/no-such-kernel`;
    await rejects(
      () => driver.create({ ...fx.spec, kernel: { ...fx.spec.kernel, path: missing } }),
      (e: VolantError) => {
        equal(e.code, "kernel_not_found");
        match(e.message, /no-such-kernel/);
        return true;
      },
    );
    await assertNothingLeft(fx);
  });

  contract("a VMM that exits at once fails create with its own message", async (driver, fx) => {
    const bad = `${fx.dir}/not-qcow2.img`;
    await writeDisk(bad, "plain bytes, not a qcow2 header", 1);
    await rejects(
      () =>
        driver.create({
          ...fx.spec,
          disks: [{ id: "bad", path: bad, readOnly: true, format: "qcow2" }],
        }),
      (e: VolantError) => {
        equal(e.code, "vmm_failed", e.message);
        match(e.message, options.badDiskMessage ?? /qcow2/i);
        return true;
      },
    );
    await assertNothingLeft(fx);
  });

  contract("a new driver instance adopts a running VMM but not an exited one", async (d, fx) => {
    const handle = await created(d, fx);
    await d.boot(handle);
    const restarted = await options.newDriver();
    equal(await restarted.adopt(structuredClone(handle)), true);
    equal(await restarted.info(handle), "running");
    equal(
      await restarted.adopt({ ...handle, startTime: handle.startTime + 1 }),
      false,
      "a reused pid (other start time) is not adopted",
    );
    equal(await restarted.adopt({ ...handle, driver: "not-" + handle.driver }), false);
    const result = await restarted.shutdown(handle, { gracefulMs: 0, termMs: 30_000 });
    deepEqual(result, { via: "sigterm" });
    equal(await restarted.adopt(handle), false);
    equal(await (await options.newDriver()).adopt(handle), false);
  });

  contract("waitExit resolves when the VMM is killed outside the driver", async (driver, fx) => {
    const handle = await created(driver, fx);
    let done = false;
    const exited = driver.waitExit(handle).then(() => done = true);
    await sleep(200);
    equal(done, false, "waitExit waits while the VMM runs");
    await killExternally(handle);
    await exited;
    equal(await isRunning(handle), false);
    await rejects(() => driver.info(handle), (e: VolantError) => e.code === "vmm_failed");
    deepEqual(await driver.shutdown(handle, { gracefulMs: 10, termMs: 10 }), {
      via: "already-exited",
    });
  });

  contract("cleanup removes the API socket and pid file", async (driver, fx) => {
    const handle = await created(driver, fx);
    await Deno.lstat(handle.apiSocket); // exists, or this throws
    await killExternally(handle);
    await driver.waitExit(handle);
    ok(
      [...Deno.readDirSync(fx.spec.runtimeDir)].length > 0,
      "a killed VMM leaves its files behind",
    );
    await driver.cleanup(handle);
    deepEqual([...Deno.readDirSync(fx.spec.runtimeDir)].map((e) => e.name), []);
    await driver.cleanup(handle);
    ok((await Deno.stat(fx.spec.vmmLog)).isFile, "logs are kept");
  });

  contract("disks appear in spec order", async (driver, fx) => {
    const labels = ["first", "second", "third"];
    const disks = labels.map((label, i) => ({
      id: label,
      path: `${fx.dir}/${label}.img`,
      readOnly: i !== 1,
      format: "raw" as const,
    }));
    for (const [i, disk] of disks.entries()) {
      await writeDisk(disk.path, `volant-disk:${disk.id}`, i + 1);
    }
    const handle = await created(driver, { ...fx, spec: { ...fx.spec, disks } });
    await driver.boot(handle);
    await serialLine(fx, handle, READY_MARKER);
    const seen = (await readText(fx.spec.serialLog)).split("\n")
      .filter((l) => l.startsWith(TEST_DISK_MARKER))
      .map((l) => l.slice(TEST_DISK_MARKER.length).trim());
    deepEqual(seen, ["vda volant-disk:first", "vdb volant-disk:second", "vdc volant-disk:third"]);
  });
}
