/**
 * The VM lifecycle steps the service and the reconciler share: launch (lease, tap, create +
 * boot, with undo), the stop ladder, and the watchers (VMM exit here, readiness in
 * _readiness.ts). Callers hold the VM's mutex; watchers take it themselves.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type { VmmHandle } from "../../hypervisor/driver.ts";
import type { VmmJail } from "../../hypervisor/jail/mod.ts";
import { faultPoint } from "../fault.ts";
import { ensureJailUid, lockRuntimeDir, prepareJail } from "./_jail.ts";
import { tapNameFor } from "../../net/mod.ts";
import type { GuestImage } from "../guest.ts";
import type { VmRow } from "../store/mod.ts";
import { canTransition } from "../vm_state.ts";
import { buildSpec, vmPaths } from "./spec.ts";
import { type ImageBootFiles, pluginFiles, prepareBootMedia } from "./_boot_media.ts";
import { imageManifest } from "../../schema/image_manifest.ts";
import { capLog, tailLines } from "./_serial.ts";
import { fileSize } from "../../hypervisor/process/mod.ts";
import { ensureLease, guestNic, syncForwards } from "./_network.ts";
import { watchReady } from "./_readiness.ts";
import { syncPolicies } from "./_policy.ts";
import { agentPort, issueAgentAccess, keepAgentAccess, refuseAgentPort } from "./_agent.ts";
import { giveIdentity, identityMessage } from "./_identity.ts";
import type { IdentityMessage } from "../../schema/guest_control.ts";
import type { AgentAccess } from "../../schema/mod.ts";
import {
  killHandle,
  killLadder,
  messageOf,
  releaseResources,
  type Run,
  setState,
  stopLadder,
  type VmRuntime,
} from "./_runtime.ts";

export { killHandle, killLadder, stopLadder } from "./_runtime.ts";

/** The boot files of an image VM; `unsupported` when this daemon has no image store. */
async function imageFiles(rt: VmRuntime, row: VmRow): Promise<ImageBootFiles> {
  if (!rt.images) throw new VolantError("unsupported", "this volantd has no image store");
  const image = await rt.images.bootImage(row.image!, row.image_digest!);
  const manifest = imageManifest(
    image,
    row.image_overrides ?? { env: {}, entrypoint: null, cmd: null },
    { cpu_cores: row.cpu_cores, memory_mb: Math.max(128, row.memory_mb) },
  );
  return { manifest, rootfs: image.rootfs.path };
}

/**
 * Creates the VM's tap on the bridge (deleting a stale one first) and records it on the row; a
 * jailed VMM's uid may open it.
 */
async function createTap(rt: VmRuntime, row: VmRow, uid?: number): Promise<string> {
  const tap = tapNameFor(row.name);
  if (row.tap !== null) {
    await rt.network.deleteTap(row.tap);
    rt.store.update(row.name, { tap: null });
  }
  await rt.network.createTap(tap, uid === undefined ? undefined : { uid, gid: uid });
  rt.store.update(row.name, { tap });
  rt.logger.debug("tap created", { vm: row.name, tap });
  return tap;
}

/**
 * A launch that resumes a saved guest instead of booting one (`snapshots.ts`): the same VM
 * (`agent`: kestrel's access as the saved guest knows it), or a clone (`identity`: a new secret
 * is issued and handed to the guest with its own address and name, `_identity.ts`).
 */
export type LaunchRestore =
  & {
    /** The directory the driver saved the guest's state into. */
    stateDir: string;
  }
  & (
    /** kestrel's port and secret as the saved guest knows them (its memory holds them). */
    | { agent: AgentAccess; identity?: undefined }
    /** A clone: its own identity, given before its NICs are connected. */
    | { identity: true; agent?: undefined }
  );

/**
 * Launches the VMM for `row` (pending, stopped or crashed) and boots it (or, with `restore`,
 * resumes the saved guest: same secret, the state loaded before it runs): lease (kept when it
 * holds one), tap on the bridge, jail (uid, cgroup, root; see `_jail.ts`), VMM with the NIC —
 * its handle recorded as soon as it is spawned — and boot config with the address. The VM is
 * left `starting` with its watchers attached. On failure the process is ended and the tap and
 * jail removed before the error is thrown (the lease stays with the VM); the row's state is the
 * caller's to settle.
 */
export async function launch(
  rt: VmRuntime,
  row: VmRow,
  image?: GuestImage,
  restore?: LaunchRestore,
): Promise<VmRow> {
  const name = row.name;
  const resolved = image ?? await rt.guest.resolve(row.kernel);
  if (!rt.driver.kernelFormats.includes(resolved.kernel.format)) {
    throw new VolantError(
      "invalid_argument",
      `kernel: ${row.kernel} is a ${resolved.kernel.format} image, which the ${rt.driver.name} ` +
        `driver cannot boot (it boots ${rt.driver.kernelFormats.join(", ")})`,
      { kernel: row.kernel },
    );
  }
  // The config's agent port may have moved onto a port this VM publishes.
  refuseAgentPort(row.ports, agentPort(rt));
  const paths = vmPaths(rt.config, name);
  // Checked before every boot: the plugin exists, is enabled, its signature still verifies,
  // and its cached artifacts were not modified on disk.
  const plugin = row.plugin === null ? undefined : await pluginFiles(rt, row.plugin);
  // An image VM: the image must still be cached; its manifest is made from the image's config.
  const fromImage = row.image === null ? undefined : await imageFiles(rt, row);
  await Deno.mkdir(paths.runtimeDir, { recursive: true });
  await Deno.mkdir(paths.logDir, { recursive: true });
  const offset = await fileSize(paths.serialLog);
  const leased = ensureLease(rt, name);
  if (leased.leased && leased.row.ports.length > 0) await syncForwards(rt);
  let handle: VmmHandle;
  let startedAt: Date;
  let jail: VmmJail | undefined;
  let identity: IdentityMessage | undefined;
  try {
    const tap = await createTap(rt, leased.row, ensureJailUid(rt, name));
    faultPoint("launch_tap");
    const current = rt.store.get(name)!;
    const nic = guestNic(rt, current, tap);
    const agent = restore?.agent
      ? keepAgentAccess(rt, name, restore.agent)
      : issueAgentAccess(rt, name);
    // The tap's rules before the guest can send anything (kestrel's port as issued now).
    await syncPolicies(rt);
    const media = await prepareBootMedia(
      paths,
      resolved,
      name,
      nic,
      plugin,
      fromImage,
      agent,
      rt.driver.guestControlDevice,
    );
    faultPoint("launch_media");
    const built = buildSpec(current, resolved, paths, rt.config.hostCmdline, nic, media);
    const spec = restore
      ? { ...built, restoreFrom: restore.stateDir, nicsDisconnected: restore.identity === true }
      : built;
    if (restore?.identity) {
      // The generation grows with the wall clock: a clone of a clone is newer than its parent.
      const now = rt.now().getTime();
      identity = identityMessage(current, nic, agent, now, now);
    }
    // Its own uid, cgroup and root (security.jail); the files it opens made its own.
    jail = await prepareJail(rt, name, spec);
    faultPoint("launch_jailed");
    startedAt = rt.now();
    handle = await rt.driver.create(jail ? { ...spec, jail } : spec, {
      // Recorded before the VMM's API is waited for: a daemon killed meanwhile still knows it.
      onSpawn: (spawned) => {
        rt.store.update(name, { handle: spawned });
        faultPoint("vmm_spawned");
      },
    });
  } catch (err) {
    if (jail) await lockRuntimeDir(paths.runtimeDir).catch(() => {});
    await releaseResources(rt, name, null, jail);
    throw err;
  }
  const run: Run = {
    name,
    handle,
    startedAtMs: startedAt.getTime(),
    expectExit: false,
    abort: new AbortController(),
  };
  try {
    if (jail) await lockRuntimeDir(paths.runtimeDir);
    const starting = setState(rt, name, "starting", {
      handle,
      // What this run uses, which may differ from the last (e.g. KVM then, TCG now).
      hypervisor: rt.driver.name as VmRow["hypervisor"],
      kvm: rt.driver.kvm,
      started_at: startedAt.toISOString(),
      ready_at: null,
      boot_ms: null,
      timeline: null,
      last_error: null,
      serial_offset: offset,
    });
    rt.runs.set(name, run);
    watchExit(rt, run);
    await (restore ? rt.driver.resume(handle) : rt.driver.boot(handle));
    if (identity) await giveIdentity(rt, handle, identity);
    faultPoint("launch_booted");
    watchReady(rt, run, paths.serialLog, offset);
    capSerialLog(rt, run, paths.serialLog);
    return rt.store.get(name) ?? starting;
  } catch (err) {
    rt.runs.set(name, run);
    await killHandle(rt, name, handle, killLadder(rt));
    throw err;
  }
}

/**
 * Re-attaches watchers to a VMM adopted after a daemon restart (VM `starting` or `running`).
 */
export function attachRun(rt: VmRuntime, row: VmRow & { handle: VmmHandle }): void {
  const started = row.started_at ? Date.parse(row.started_at) : rt.now().getTime();
  const run: Run = {
    name: row.name,
    handle: row.handle,
    startedAtMs: started,
    expectExit: false,
    abort: new AbortController(),
  };
  rt.runs.set(row.name, run);
  watchExit(rt, run);
  const serialLog = vmPaths(rt.config, row.name).serialLog;
  if (row.state === "starting") watchReady(rt, run, serialLog, row.serial_offset);
  capSerialLog(rt, run, serialLog);
}

/**
 * The stop ladder for a VM that is `starting` or `running`: `stopping`, then the VMM ends,
 * resources are released, `stopped`. When the driver cannot stop it, the VM is `crashed`
 * (handle kept so the exit watcher or the reconciler releases it later) and the error thrown.
 */
export async function stopVm(rt: VmRuntime, row: VmRow): Promise<VmRow> {
  const name = row.name;
  setState(rt, name, "stopping");
  const run = rt.runs.get(name);
  if (run) {
    run.expectExit = true;
    run.abort.abort();
  }
  faultPoint("stop_stopping");
  if (row.handle) {
    try {
      const result = await rt.driver.shutdown(row.handle, stopLadder(rt));
      rt.logger.info("vmm stopped", { vm: name, pid: row.handle.pid, via: result.via });
      faultPoint("stop_vmm_ended");
    } catch (err) {
      if (run) run.expectExit = false;
      setState(rt, name, "crashed", { last_error: `Stopping the VMM failed: ${messageOf(err)}` });
      throw err;
    }
  }
  if (run && rt.runs.get(name) === run) rt.runs.delete(name);
  await releaseResources(rt, name, row.handle);
  faultPoint("stop_released");
  return setState(rt, name, "stopped");
}

async function exitDetail(handle: VmmHandle, serialLog: string): Promise<string> {
  const vmm = await tailLines(handle.vmmLog, 5);
  const serial = await tailLines(serialLog, 5);
  const parts: string[] = [];
  if (vmm) parts.push(`VMM log (${handle.vmmLog}):\n${vmm}`);
  if (serial) parts.push(`serial console (${serialLog}):\n${serial}`);
  return parts.length > 0 ? `\n${parts.join("\n")}` : "";
}

/** Keeps the run's serial log within `limits.serial_log_bytes` while the VMM runs. */
function capSerialLog(rt: VmRuntime, run: Run, serialLog: string): void {
  capLog(serialLog, {
    maxBytes: rt.config.serialLogBytes ?? 8 * 1024 * 1024,
    files: rt.config.serialLogFiles ?? 2,
    everyMs: rt.config.serialCheckMs ?? 1_000,
    signal: run.abort.signal,
  });
}

/** When the VMM exits without the daemon asking: `crashed`, resources released. */
function watchExit(rt: VmRuntime, run: Run): void {
  rt.driver.waitExit(run.handle)
    .catch((err) => rt.logger.warn("waitExit failed", { vm: run.name, error: err }))
    .then(() => {
      if (rt.closing.signal.aborted || run.expectExit) return;
      return rt.mutex.run(run.name, async () => {
        if (rt.closing.signal.aborted || run.expectExit || rt.runs.get(run.name) !== run) return;
        rt.runs.delete(run.name);
        run.abort.abort();
        const row = rt.store.get(run.name);
        if (!row) return;
        const serialLog = vmPaths(rt.config, run.name).serialLog;
        const detail = await exitDetail(run.handle, serialLog);
        await releaseResources(rt, run.name, run.handle);
        const message = `The VMM (pid ${run.handle.pid}) exited unexpectedly while the VM was ` +
          `${row.state}${detail}`;
        rt.logger.warn("vmm exited unexpectedly", { vm: run.name, pid: run.handle.pid });
        if (canTransition(row.state, "crashed")) {
          setState(rt, run.name, "crashed", { last_error: message });
        }
      });
    })
    .catch((err) => rt.logger.error("exit watcher failed", { vm: run.name, error: err }));
}
