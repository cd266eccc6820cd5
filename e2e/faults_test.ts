/**
 * The fault suite (`deno task test:faults`; `./volant test` runs it with the rest): volantd is
 * SIGKILLed at every step of `FAULT_STEPS` (`daemon/fault.ts`) — VM create, start, stop and
 * delete, image pull, plugin install — then restarted; after each restart nothing is left that
 * no row owns (no process, tap, lease, nft rule, socket, jail, cgroup, mount, file or row; see
 * `e2e/invariants.ts`), every VM the store says runs does run, and the user sees a sensible
 * result: the VM is crashed, stopped, running or gone, and the operation can be retried; a
 * half-pulled image or half-installed plugin is absent and installs again.
 *
 * Few boots: one daemon for all VM steps, whose VMs are reused from step to step (a VM a fault
 * left crashed is started again — the retry — and is then the subject of a stop or delete
 * step); image and plugin steps boot nothing.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { FAULT_STEPS, type FaultOperation, type FaultStep } from "../daemon/fault.ts";
import { writeCpio } from "../kernels/cpio.ts";
import { ImageList } from "../schema/mod.ts";
import { type E2eDaemon, startDaemon } from "./harness.ts";
import { assertClean, call, expect, killAt, vm, waitVm } from "./faults.ts";
import { type E2eRegistry, pushTestImage, startRegistryInNetns } from "./registry.ts";

/** One step's scenario: arm the fault, drive the operation, check the outcome and the retry. */
type Scenario = (daemon: E2eDaemon, step: FaultStep) => Promise<void>;

/** The steps of `operation`, as a type. */
type StepOf<O extends FaultOperation> = Extract<(typeof FAULT_STEPS)[number], { operation: O }>[
  "step"
];

const VM_OPERATIONS = ["vm_create", "vm_stop", "vm_delete"] as const;

function stepsOf(operations: readonly FaultOperation[]): FaultStep[] {
  return FAULT_STEPS.filter((s) => operations.includes(s.operation)).map((s) => s.step);
}

/** Runs every step of `operations`, in table order, each as a test step. */
async function runSteps(
  t: Deno.TestContext,
  daemon: E2eDaemon,
  operations: readonly FaultOperation[],
  scenarios: Partial<Record<FaultStep, Scenario>>,
): Promise<void> {
  for (const step of stepsOf(operations)) {
    const scenario = scenarios[step];
    ok(scenario, `a scenario for ${step}`);
    const passed = await t.step(step, () => scenario(daemon, step));
    if (!passed) throw new Error(`step ${step} failed; the later ones depend on it`);
  }
}

// --- VMs ------------------------------------------------------------------------------------

/** VM `c<i>` publishes host port 808<i> (forwards must follow its lease). */
function createBody(i: number, extra: Record<string, unknown> = {}) {
  return { name: `c${i}`, publish: [{ host_port: 8080 + i, guest_port: 80 }], ...extra };
}

/** Kills the daemon while it creates VM `c<i>`; the VM is then `crashed`, its lease freed. */
async function createCrashes(
  daemon: E2eDaemon,
  step: FaultStep,
  i: number,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await killAt(daemon, step, () => call(daemon, "POST", "/api/v1/vms", createBody(i, extra)));
  const found = await vm(daemon, `c${i}`);
  equal(found.state, "crashed", `a VM whose creation was cut short at ${step} is crashed`);
  match(found.last_error ?? "", /being created/);
  equal(found.pid, null);
  equal(found.ip, null, "its lease is freed (it gets an address again when it starts)");
}

/** The retry of a crashed create: `start` boots it (without waiting). */
async function startAgain(daemon: E2eDaemon, ...names: string[]): Promise<void> {
  for (const name of names) await expect(daemon, 200, "POST", `/api/v1/vms/${name}/start`);
  for (const name of names) {
    const running = await waitVm(daemon, name, "running");
    ok(running.ip !== null && running.pid !== null, `${name} runs again with an address`);
  }
}

/** Stops `name` with the daemon killed at `step`; the restart finishes the stop. */
async function stopCutShort(daemon: E2eDaemon, step: FaultStep, name: string): Promise<void> {
  await killAt(daemon, step, () => call(daemon, "POST", `/api/v1/vms/${name}/stop`));
  const found = await vm(daemon, name);
  equal(found.state, "stopped", `a stop cut short at ${step} is finished by the restart`);
  equal(found.pid, null);
}

/** Deletes `name` with the daemon killed at `step`; a second delete (the retry) removes it. */
async function deleteCutShort(
  daemon: E2eDaemon,
  step: FaultStep,
  name: string,
  rowGone: boolean,
): Promise<void> {
  await killAt(daemon, step, () => call(daemon, "DELETE", `/api/v1/vms/${name}`));
  if (!rowGone) {
    equal((await vm(daemon, name)).state, "stopped", `a delete cut short at ${step}: stopped`);
    await expect(daemon, 200, "DELETE", `/api/v1/vms/${name}`);
  }
  equal((await call(daemon, "GET", `/api/v1/vms/${name}`)).status, 404, `${name} is gone`);
  await assertClean(daemon, `after ${name} was deleted`);
}

/**
 * In table order, on one daemon: c1…c5 crash while they are created; c6 and c7 run after the
 * restart; c6, c7 and c1 (started again: the retry) are the stops cut short, c2, c3 and c4
 * (started again) the deletes; c5 starts again last.
 */
const VM_SCENARIOS: Record<StepOf<(typeof VM_OPERATIONS)[number]>, Scenario> = {
  create_committed: (d, step) => createCrashes(d, step, 1),
  launch_tap: (d, step) => createCrashes(d, step, 2),
  launch_media: (d, step) => createCrashes(d, step, 3),
  launch_jailed: (d, step) => createCrashes(d, step, 4),
  // c5 trusts c4: when c4's delete is cut short (delete_row), c5's rules must forget it.
  vmm_spawned: (d, step) => createCrashes(d, step, 5, { network_policy: { allow_from: ["c4"] } }),
  launch_booted: async (d, step) => {
    await killAt(d, step, () => call(d, "POST", "/api/v1/vms", createBody(6)));
    // The guest was booting: the restart adopts it and it becomes ready.
    equal((await waitVm(d, "c6", "running")).name, "c6");
    await assertClean(d, "once c6 is running");
  },
  vm_ready: async (d, step) => {
    const created = await killAt(d, step, () => call(d, "POST", "/api/v1/vms", createBody(7)));
    equal(created.status, 201, JSON.stringify(created.body));
    equal((await vm(d, "c7")).state, "running", "a VM recorded running is adopted running");
  },
  stop_stopping: (d, step) => stopCutShort(d, step, "c6"),
  stop_vmm_ended: (d, step) => stopCutShort(d, step, "c7"),
  stop_released: async (d, step) => {
    // The retry of the first two crashed creates: both start (two VMs boot at once).
    await startAgain(d, "c1", "c2");
    await stopCutShort(d, step, "c1");
  },
  // c2 runs: its delete stops it first.
  delete_stopped: (d, step) => deleteCutShort(d, step, "c2", false),
  delete_files: async (d, step) => {
    await startAgain(d, "c3", "c4");
    await deleteCutShort(d, step, "c3", false);
  },
  delete_row: async (d, step) => {
    // The last crashed create starts again meanwhile.
    await expect(d, 200, "POST", "/api/v1/vms/c5/start");
    await deleteCutShort(d, step, "c4", true);
    await waitVm(d, "c5", "running");
    await assertClean(d, "with c5 running");
  },
};

Deno.test("faults: volantd killed at each step of VM create, start, stop and delete", async (t) => {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon();
    await runSteps(t, daemon, VM_OPERATIONS, VM_SCENARIOS);
    for (const name of ["c1", "c5", "c6", "c7"]) {
      await expect(daemon, 200, "DELETE", `/api/v1/vms/${name}`);
    }
    await assertClean(daemon, "after every VM was deleted");
  } finally {
    await daemon?.dispose();
  }
});

// --- images ---------------------------------------------------------------------------------

/** Every image step: the pull cut short leaves no image, and pulls again. */
function imageScenarios(ref: string): Record<StepOf<"image_pull">, Scenario> {
  const list = async (d: E2eDaemon) =>
    ImageList.parse(await expect(d, 200, "GET", "/api/v1/images")).images;
  const pullCutShort: Scenario = async (d, step) => {
    await killAt(d, step, () => call(d, "POST", "/api/v1/images", { ref, insecure: true }));
    deepEqual(await list(d), [], `an image pull cut short at ${step} leaves no image`);
    await expect(d, 201, "POST", "/api/v1/images", { ref, insecure: true });
    equal((await list(d)).length, 1, "the pull, retried, succeeds");
    await assertClean(d, `after the pull cut short at ${step} was retried`);
    // The next step pulls everything again.
    await expect(d, 200, "DELETE", `/api/v1/images/${encodeURIComponent(ref)}`);
    await assertClean(d, "after the image was removed");
  };
  return {
    image_blob_chunk: pullCutShort,
    image_blob_committed: pullCutShort,
    image_layer_unpacked: pullCutShort,
    image_rootfs_built: pullCutShort,
    image_rootfs_placed: pullCutShort,
  };
}

Deno.test("faults: volantd killed at each step of an image pull", async (t) => {
  let daemon: E2eDaemon | undefined;
  let registry: E2eRegistry | undefined;
  try {
    daemon = await startDaemon();
    const work = `${daemon.dir}/image`;
    const port = 5000 + Math.floor(Math.random() * 1000);
    registry = await startRegistryInNetns(daemon.ns, `${work}/registry`, port);
    const ref = await pushTestImage(daemon.ns, work, port);
    await runSteps(t, daemon, ["image_pull"], imageScenarios(ref));
  } finally {
    await registry?.stop();
    await daemon?.dispose();
  }
});

// --- plugins --------------------------------------------------------------------------------

async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** A plugin of two artifacts (an initramfs and a read-only disk of 3 MiB each), unsigned. */
async function pluginManifest(dir: string): Promise<Record<string, unknown>> {
  const noise = (n: number) => {
    const bytes = new Uint8Array(n);
    for (let at = 0; at < n; at += 65_536) crypto.getRandomValues(bytes.subarray(at, at + 65_536));
    return bytes;
  };
  const archive = writeCpio([{ type: "file", path: "noise", data: noise(3 << 20), mode: 0o644 }]);
  const disk = noise(3 << 20);
  await Deno.writeFile(`${dir}/fault.cpio`, archive);
  await Deno.writeFile(`${dir}/fault.img`, disk);
  return {
    name: "fault",
    version: "1.0.0",
    initramfs: { url: `${dir}/fault.cpio`, checksum: await sha256(archive) },
    disks: [{ name: "data", source: `${dir}/fault.img`, checksum: await sha256(disk) }],
    resources: { cpu_cores: 1, memory_mb: 128 },
    workload: { entrypoint: ["/bin/true"], base_url: "http://127.0.0.1:80" },
  };
}

/** Every plugin step: the install cut short is absent and installs again, or is installed. */
function pluginScenarios(manifest: Record<string, unknown>): Record<
  StepOf<"plugin_install">,
  Scenario
> {
  const install = (d: E2eDaemon) =>
    call(d, "POST", "/api/v1/plugins", { manifest, allow_unsigned: true });
  const installCutShort = (installed: boolean): Scenario => async (d, step) => {
    await killAt(d, step, () => install(d));
    const found = await call(d, "GET", "/api/v1/plugins/fault");
    equal(found.status, installed ? 200 : 404, `plugin after an install cut short at ${step}`);
    // The retry: installs, or says it is already installed.
    equal((await install(d)).status, installed ? 409 : 201);
    await expect(d, 200, "GET", "/api/v1/plugins/fault");
    await assertClean(d, `after the install cut short at ${step} was retried`);
    await expect(d, 200, "DELETE", "/api/v1/plugins/fault");
    await assertClean(d, "after the plugin was removed");
  };
  return {
    plugin_artifact_chunk: installCutShort(false),
    plugin_artifact_committed: installCutShort(false),
    plugin_installed: installCutShort(true),
  };
}

Deno.test("faults: volantd killed at each step of a plugin install", async (t) => {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon();
    const work = `${daemon.dir}/plugin`;
    await Deno.mkdir(work);
    await runSteps(t, daemon, ["plugin_install"], pluginScenarios(await pluginManifest(work)));
  } finally {
    await daemon?.dispose();
  }
});

Deno.test("faults: every step of FAULT_STEPS has its scenario in this suite", () => {
  const covered = new Set<string>([
    ...Object.keys(VM_SCENARIOS),
    ...Object.keys(imageScenarios("")),
    ...Object.keys(pluginScenarios({})),
  ]);
  deepEqual(FAULT_STEPS.map((s) => s.step).filter((s) => !covered.has(s)), []);
});
