/**
 * The Firecracker driver: `firecracker --api-sock` driven over its REST API, as a
 * {@linkcode RestVmm} description on the shared REST driver (`../rest/`).
 *
 * - `create`: checks the spec (vmlinux and raw disks only) and its files, removes a stale API
 *   socket (Firecracker will not bind over one), spawns the VMM detached with its stdout (the
 *   guest's serial console) appended to `spec.serialLog`, waits for `GET /`, then sends the
 *   pre-boot configuration: machine, boot source, drives, network interfaces. On any failure
 *   the process is killed and reaped and its socket and pid file removed; the error carries
 *   Firecracker's `fault_message`, or the tail of its log.
 * - `boot`: `PUT /actions` `InstanceStart`; `pause`/`resume`: `PATCH /vm` `Paused`/`Resumed`;
 *   each after checking the state in `GET /`.
 * - `shutdown`: `SendCtrlAltDel` (the guest reboots, and Firecracker exits on the reset) and a
 *   wait; then SIGTERM; then SIGKILL. Firecracker has no shutdown call of its own.
 * - `adopt`: same pid and start time, and `GET /` answers.
 * - `saveState`: `PATCH /vm` `Paused` when the guest runs, then `PUT /snapshot/create` (a full
 *   snapshot: `vmstate` and `memory`) into a staging directory, moved into the target once
 *   complete.
 * - `create` with `spec.restoreFrom`: the VMM starts as for a boot (its stdout on the serial
 *   log) but gets no configuration: `PUT /snapshot/load` with the memory file as its `File`
 *   backend, the spec's taps as network overrides, not resumed. Firecracker exits when a load
 *   fails; the driver reports its `fault_message`. The restored guest's memory stays mapped from
 *   the saved `memory` file, which must not be changed while it runs.
 *
 * Firecracker exits when the guest reboots, and cannot see a guest power-off without ACPI:
 * guests should run with `reboot=k` and reboot rather than power off.
 *
 * @module
 */
import type { VmmState } from "../driver.ts";
import { type RestVmm, RestVmmDriver, type RestVmmDriverOptions } from "../rest/mod.ts";
import { FcApi, type FcInstanceState } from "./api.ts";
import {
  FC_KERNEL_FORMATS,
  FC_SNAPSHOT_FILES,
  fcArgs,
  fcConfigRequests,
  fcPaths,
  fcSerialPrefix,
  fcSnapshotCreate,
  fcSnapshotLoad,
  fcSpecRules,
} from "./config.ts";
import { probeFirecracker } from "./probe.ts";

/**
 * Options of {@linkcode FirecrackerDriver}: `binary` is the absolute path of `firecracker`,
 * `bootTimeoutMs` the limit for `InstanceStart`.
 */
export type FirecrackerDriverOptions = RestVmmDriverOptions;

/**
 * Maps Firecracker's instance state to the driver-level state.
 *
 * @example
 * ```ts
 * import { fcStateOf } from "./driver.ts";
 * console.assert(fcStateOf("Not started") === "created" && fcStateOf("Paused") === "paused");
 * ```
 */
export function fcStateOf(state: FcInstanceState): VmmState {
  switch (state) {
    case "Not started":
      return "created";
    case "Running":
      return "running";
    default:
      return "paused";
  }
}

/** Firecracker, as the shared REST driver runs it. */
const FIRECRACKER: RestVmm<FcApi, FcInstanceState> = {
  name: "firecracker",
  label: "Firecracker",
  kernelFormats: FC_KERNEL_FORMATS,
  probe: probeFirecracker,
  api: (socket, options) => new FcApi(socket, options),
  paths: fcPaths,
  specRules: fcSpecRules,
  args: fcArgs,
  // Its stdout is the guest's serial console: appended to the serial log.
  launchPrefix: (spec) => fcSerialPrefix(spec.serialLog),
  ping: (api, timeoutMs) => api.info(timeoutMs),
  configure: async (api, spec) => {
    for (const request of fcConfigRequests(spec)) await api.configure(request);
  },
  state: { name: "GET /", read: async (api) => (await api.info()).state },
  stateOf: fcStateOf,
  running: "Running",
  boot: { name: "InstanceStart", send: (api) => api.action("InstanceStart") },
  pause: { name: "pause", send: (api) => api.setVmState("Paused") },
  resume: { name: "resume", send: (api) => api.setVmState("Resumed") },
  // The guest reboots, and Firecracker exits on the reset. It has no exit call of its own.
  powerOff: { name: "SendCtrlAltDel", send: (api) => api.action("SendCtrlAltDel") },
  snapshots: {
    files: FC_SNAPSHOT_FILES,
    save: {
      name: "snapshot/create",
      send: (api, dir) => api.createSnapshot(fcSnapshotCreate(dir)),
    },
    load: {
      name: "snapshot/load",
      send: (api, dir, spec) => api.loadSnapshot(fcSnapshotLoad(dir, spec)),
    },
  },
};

/**
 * The Firecracker driver.
 *
 * @example
 * ```ts ignore
 * import { FirecrackerDriver } from "./driver.ts";
 * const driver = new FirecrackerDriver({ binary: "/usr/local/bin/firecracker" });
 * const handle = await driver.create(spec);
 * await driver.boot(handle);
 * await driver.shutdown(handle, { gracefulMs: 10_000, termMs: 5_000 });
 * await driver.cleanup(handle);
 * ```
 */
export class FirecrackerDriver extends RestVmmDriver<FcApi, FcInstanceState> {
  /** A driver for the given binary (see `openFirecrackerDriver` to find and check it). */
  constructor(options: FirecrackerDriverOptions) {
    super(FIRECRACKER, options);
  }
}
