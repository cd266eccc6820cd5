/**
 * The daemon's side of a VMM jail, per run: the VM's uid (allocated once from
 * `security.uid_range`, kept for its life), the files the VMM must open made its own (runtime
 * dir, serial log, writable disks; shared read-only files keep their owners and are bound
 * read-only), its cgroup with the limits, and the empty jail root; after `create`, the runtime
 * dir is handed back to root so the running VMM cannot plant links the daemon would follow;
 * and releasing all of it once the VMM is gone.
 *
 * @module
 */
import type { VmJailRecord } from "../../schema/mod.ts";
import type { VmSpec } from "../../hypervisor/driver.ts";
import {
  allocateUid,
  type Controller,
  CONTROLLERS,
  createVmmCgroup,
  type JailDevice,
  removeVmmCgroup,
  type VmmJail,
  vmmLimits,
} from "../../hypervisor/jail/mod.ts";
import type { JailSettings } from "../jail.ts";
import type { VmRuntime } from "./_runtime.ts";
import { vmPaths } from "./spec.ts";

/** The jail settings when VMMs are jailed (`security.jail: on` and a driver that confines). */
export function jailSettings(rt: VmRuntime): JailSettings | undefined {
  return rt.driver.confines ? rt.config.jail : undefined;
}

/**
 * VM `name`'s uid, allocated (lowest free in the range) on its first jailed start; `undefined`
 * when VMMs are not jailed. `invalid_state` when the range is exhausted.
 */
export function ensureJailUid(rt: VmRuntime, name: string): number | undefined {
  const settings = jailSettings(rt);
  if (!settings) return undefined;
  return rt.transaction(() => {
    const row = rt.store.get(name)!;
    const { start, count } = settings.uidRange;
    const uid = row.jail_uid;
    // Kept for the VM's life, unless security.uid_range moved away from it.
    if (uid !== null && uid >= start && uid < start + count) return uid;
    const taken = new Set(
      rt.store.list().map((r) => r.jail_uid).filter((u): u is number => u !== null),
    );
    const fresh = allocateUid(settings.uidRange, taken);
    rt.store.update(name, { jail_uid: fresh });
    return fresh;
  });
}

async function own(path: string, uid: number): Promise<void> {
  // The group stays (root:volant logs remain readable by the volant group).
  await Deno.chown(path, uid, null);
}

/**
 * Prepares the jail of `spec`'s VMM (see the module doc); `undefined` when VMMs are not
 * jailed. The serial log is created when missing, so it can be bound into the jail.
 */
export async function prepareJail(
  rt: VmRuntime,
  name: string,
  spec: VmSpec,
): Promise<VmmJail | undefined> {
  const settings = jailSettings(rt);
  if (!settings) return undefined;
  const uid = ensureJailUid(rt, name)!;
  const root = `${settings.jailsDir}/${name}`;
  await Deno.mkdir(root, { recursive: true, mode: 0o755 });
  await Deno.chown(spec.runtimeDir, uid, uid);
  await Deno.chmod(spec.runtimeDir, 0o700);
  const serial = await Deno.open(spec.serialLog, { append: true, create: true, mode: 0o640 });
  serial.close();
  await own(spec.serialLog, uid);
  // The per-VM initramfs (mode 0600: it carries the VM's secrets) is the VMM's to read.
  if (spec.initramfs?.startsWith(`${spec.runtimeDir}/`)) await own(spec.initramfs, uid);
  for (const disk of spec.disks) if (!disk.readOnly) await own(disk.path, uid);
  const cgroup = await createVmmCgroup(
    settings.host,
    settings.parentDirs,
    name,
    vmmLimits({
      cpus: spec.cpus,
      memoryMib: spec.memoryMib,
      accel: rt.driver.kvm ? "kvm" : "tcg",
      overheadMib: settings.overheadMib,
      pidsMax: settings.pidsMax,
    }),
  );
  const devices: JailDevice[] = [];
  if (rt.driver.kvm) devices.push("kvm");
  if (spec.nics.length > 0) devices.push("tun");
  return { uid, gid: uid, root, cgroup, devices };
}

/**
 * Once the VMM has made its sockets (and before the guest runs), its runtime dir goes back to
 * root: the VMM keeps its open sockets but can no longer add or replace entries there (nor
 * plant a link the daemon would follow). Also after a failed launch.
 */
export async function lockRuntimeDir(runtimeDir: string): Promise<void> {
  await Deno.chown(runtimeDir, 0, 0);
  await Deno.chmod(runtimeDir, 0o750);
}

/**
 * Removes a jail: its cgroup (killing whatever is left in it) and its root directory. Errors
 * are logged, not thrown (the reconciler retries what is left at the next start).
 */
export async function releaseJail(rt: VmRuntime, name: string, jail: VmmJail): Promise<void> {
  try {
    await removeVmmCgroup(jail.cgroup);
  } catch (err) {
    rt.logger.warn("vmm cgroup removal failed", { vm: name, cgroup: jail.cgroup.dirs, error: err });
  }
  await Deno.remove(jail.root).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) {
      rt.logger.warn("jail dir removal failed", { vm: name, root: jail.root, error: err });
    }
  });
}

/** A jail as the VM record shows it. */
export function jailRecord(jail: VmmJail | undefined): VmJailRecord | null {
  if (!jail) return null;
  const { limits } = jail.cgroup;
  return {
    uid: jail.uid,
    gid: jail.gid,
    root: jail.root,
    cgroup: {
      version: jail.cgroup.version,
      paths: [...new Set(CONTROLLERS.map((c) => jail.cgroup.dirs[c]))],
      memory_max_bytes: limits.memoryMaxBytes,
      cpu_max: `${limits.cpuQuotaUs} ${limits.cpuPeriodUs}`,
      pids_max: limits.pidsMax,
    },
    devices: [...jail.devices],
  };
}

/**
 * After reconciliation: removes the cgroup and jail dir of every stored VM without a watched
 * VMM (left by a daemon killed between making them and recording the VMM, or by a VMM that
 * died meanwhile), killing what runs in them, and hands its runtime dir back to root (a daemon
 * killed before `lockRuntimeDir` left it the jail uid's). Returns the VM names cleaned.
 */
export async function sweepJails(rt: VmRuntime): Promise<string[]> {
  const settings = jailSettings(rt);
  if (!settings) return [];
  const swept: string[] = [];
  for (const row of rt.store.list()) {
    if (rt.runs.has(row.name)) continue;
    await lockRuntimeDir(vmPaths(rt.config, row.name).runtimeDir).catch(() => {}); // absent: fine
    const dirs = Object.fromEntries(
      CONTROLLERS.map((c) => [c, `${settings.parentDirs[c]}/${row.name}`]),
    ) as Record<Controller, string>;
    const root = `${settings.jailsDir}/${row.name}`;
    const present = await Promise.all(
      [...Object.values(dirs), root].map((p) => Deno.stat(p).then(() => true, () => false)),
    );
    if (!present.some(Boolean)) continue;
    await releaseJail(rt, row.name, {
      uid: row.jail_uid ?? 0,
      gid: row.jail_uid ?? 0,
      root,
      cgroup: {
        version: settings.host.version,
        dirs,
        limits: { memoryMaxBytes: 0, cpuQuotaUs: 0, cpuPeriodUs: 0, pidsMax: 0 },
      },
      devices: [],
    });
    swept.push(row.name);
  }
  return swept;
}
