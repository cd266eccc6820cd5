/**
 * The Cloud Hypervisor driver: an empty `cloud-hypervisor --api-socket` process driven over its
 * REST API, as a {@linkcode RestVmm} description on the shared REST driver (`../rest/`).
 *
 * - `create`: checks the spec and its files, spawns the VMM detached (it outlives the daemon),
 *   waits for `GET /vmm.ping`, then `PUT /vm.create` with the whole `VmConfig`. On any failure
 *   the process is killed and reaped and its socket, lock and pid file removed; the error
 *   carries the VMM's own message (its API error chain, or the tail of its log).
 * - `boot`/`pause`/`resume`: `vm.boot`/`vm.pause`/`vm.resume`, each after checking `vm.info`.
 * - `shutdown`: `vm.power-button` and a wait; then the terminate step: `vm.shutdown` +
 *   `vmm.shutdown` over the API, then SIGTERM; then SIGKILL. A VMM that exits on
 *   `vmm.shutdown` is reported as ended by the terminate step (`via: "sigterm"`).
 * - `adopt`: same pid and start time, and `vmm.ping` answers.
 * - `saveState`: `vm.pause` when the guest runs, then `vm.snapshot` into a staging directory
 *   (`config.json`, `state.json`, `memory-ranges`), moved into the target once complete.
 * - `create` with `spec.restoreFrom`: the saved `config.json` is checked against the spec and
 *   rewritten for it (serial log, disk paths, taps) into a staging directory in the runtime dir,
 *   beside links to the saved state and memory; the VMM starts empty and takes the VM with
 *   `vm.restore` (no `vm.create`), paused. Its `config.json` names host paths the new VM must
 *   use, which is why it is not loaded as saved: the serial log would be the old VM's, and a
 *   jailed VMM could not open it.
 *
 * Cloud Hypervisor opens disk images at `vm.boot` (`vm.create` only stores the configuration),
 * so a bad image fails `boot`, not `create`; and it truncates the serial file when the VM is
 * created (its `File` serial mode), so the serial log holds one boot.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type { VmmHandle, VmmState, VmSpec } from "../driver.ts";
import { type RestVmm, RestVmmDriver, type RestVmmDriverOptions } from "../rest/mod.ts";
import { ChApi, type ChCounters, type ChVmState } from "./api.ts";
import {
  CH_KERNEL_FORMATS,
  CH_SNAPSHOT_FILES,
  chArgs,
  chPaths,
  chRestoreConfig,
  chRestoredVmConfig,
  chSnapshotConfig,
  chSpecRules,
  chVmConfig,
} from "./config.ts";
import { probeCloudHypervisor } from "./probe.ts";

/**
 * Options of {@linkcode CloudHypervisorDriver}: `binary` is the absolute path of
 * `cloud-hypervisor`, `bootTimeoutMs` the limit for `vm.boot`.
 */
export type CloudHypervisorDriverOptions = RestVmmDriverOptions;

/**
 * Maps Cloud Hypervisor's VM state to the driver-level state (`BreakPoint`, a debugger stop,
 * counts as paused).
 *
 * @example
 * ```ts
 * import { chStateOf } from "./driver.ts";
 * console.assert(chStateOf("Created") === "created" && chStateOf("BreakPoint") === "paused");
 * ```
 */
export function chStateOf(state: ChVmState): VmmState {
  switch (state) {
    case "Created":
      return "created";
    case "Running":
      return "running";
    case "Shutdown":
      return "shutdown";
    default:
      return "paused";
  }
}

/**
 * Readies the snapshot in `dir` for a restore of `spec` in `stage`: its `config.json` rewritten
 * for the spec ({@linkcode chRestoredVmConfig}), every other saved file linked (the state and
 * memory are read where they are).
 */
async function stageRestore(dir: string, spec: VmSpec, stage: string): Promise<string> {
  const where = `${dir}/config.json`;
  let saved: unknown;
  try {
    saved = JSON.parse(await Deno.readTextFile(where));
  } catch (err) {
    throw new VolantError(
      "invalid_argument",
      `restoreFrom ${where}: not a saved state file: ${(err as Error).message}`,
      { field: "restoreFrom", path: where },
    );
  }
  const config = chRestoredVmConfig(saved, spec, where);
  await Deno.writeTextFile(`${stage}/config.json`, JSON.stringify(config), { mode: 0o600 });
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.name === "config.json" || !(await Deno.stat(path).catch(() => null))?.isFile) {
      continue;
    }
    await Deno.symlink(path, `${stage}/${entry.name}`);
  }
  return stage;
}

/** Cloud Hypervisor, as the shared REST driver runs it. */
const CLOUD_HYPERVISOR: RestVmm<ChApi, ChVmState> = {
  name: "cloud-hypervisor",
  label: "Cloud Hypervisor",
  kernelFormats: CH_KERNEL_FORMATS,
  probe: probeCloudHypervisor,
  api: (socket, options) => new ChApi(socket, options),
  paths: chPaths,
  // The lock it takes beside its socket (`ch.sock.lock`).
  socketFiles: (apiSocket) => [`${apiSocket}.lock`],
  specRules: chSpecRules,
  args: chArgs,
  ping: (api, timeoutMs) => api.ping(timeoutMs),
  configure: (api, spec) => api.create(chVmConfig(spec)),
  state: { name: "vm.info", read: async (api) => (await api.info()).state, mayLackVm: true },
  stateOf: chStateOf,
  running: "Running",
  boot: { name: "vm.boot", send: (api) => api.boot() },
  pause: { name: "vm.pause", send: (api) => api.pause() },
  resume: { name: "vm.resume", send: (api) => api.resume() },
  powerOff: { name: "vm.power-button", send: (api) => api.powerButton() },
  // The terminate step: `vm.shutdown` (ignoring a VMM without a VM), then `vmm.shutdown`.
  exit: async (api) => {
    await api.shutdownVm().catch(() => {});
    await api.shutdownVmm();
  },
  snapshots: {
    files: CH_SNAPSHOT_FILES,
    save: { name: "vm.snapshot", send: (api, dir) => api.snapshot(chSnapshotConfig(dir)) },
    stage: stageRestore,
    load: { name: "vm.restore", send: (api, dir) => api.restore(chRestoreConfig(dir)) },
  },
};

/**
 * The Cloud Hypervisor driver.
 *
 * @example
 * ```ts ignore
 * import { CloudHypervisorDriver } from "./driver.ts";
 * const driver = new CloudHypervisorDriver({ binary: "/usr/local/bin/cloud-hypervisor" });
 * const handle = await driver.create(spec);
 * await driver.boot(handle);
 * console.log(await driver.counters(handle));
 * await driver.shutdown(handle, { gracefulMs: 10_000, termMs: 5_000 });
 * await driver.cleanup(handle);
 * ```
 */
export class CloudHypervisorDriver extends RestVmmDriver<ChApi, ChVmState> {
  /** A driver for the given binary (see `openCloudHypervisorDriver` to find and check it). */
  constructor(options: CloudHypervisorDriverOptions) {
    super(CLOUD_HYPERVISOR, options);
  }

  /**
   * The guest's device counters (`GET /vm.counters`): device id (`disk-<id>`, `net-<id>`, …) →
   * counter → value. Only while the VM is booted.
   */
  counters(handle: VmmHandle): Promise<ChCounters> {
    return this.call(handle, "vm.counters", (api) => api.counters());
  }
}
