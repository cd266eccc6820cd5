/**
 * Snapshots of running VMs, restoring a VM to one, and what a clone resumes from (issue 18).
 *
 * A snapshot is a directory `<state_dir>/snapshots/<name>/` (0700, root): `state/` holds what
 * the driver saved (`Driver.saveState`: memory, vCPUs, devices), `disks/` copies of the VM's
 * writable disks (reflinked where the filesystem can, sparse otherwise), and `snapshot.json`
 * (0600) its record with the sha256 of every file and kestrel's port and secret as the saved
 * guest knows them (its memory holds them anyway). It is built under `.partial-<name>-…` and
 * renamed when complete: a snapshot either exists whole or not at all; a kill -9 mid-way
 * leaves a partial directory that the next start removes ({@linkcode SnapshotService.gc}).
 * The guest is paused from the save's first byte to the last disk copy, then resumed — also
 * when the save fails.
 *
 * Restore (the VM's own snapshot, same hypervisor, same CPUs and memory): every file's checksum
 * is checked before any VMM starts; a running VM is stopped only with `force`; the disks are
 * copied back, then the VM is launched with the saved state instead of a boot (same address,
 * MAC and tap: it is the same VM). When its kestrel has a control port, it is handed fresh host
 * entropy, the host's clock and a new secret before its NIC is connected (as a clone is, with
 * its own address unchanged); it becomes `running` when its kestrel answers again.
 *
 * Clones (`forClone`): a snapshot resumed as a new VM with its own identity (`_identity.ts`).
 *
 * @module
 */
import {
  type AgentAccess,
  fromZodError,
  SnapshotCreateRequest,
  type SnapshotFile,
  SnapshotRecord,
  type VmRecord,
  VmRestoreRequest,
  VolantError,
} from "../../schema/mod.ts";
import { z } from "zod";
import { assertAction } from "../vm_state.ts";
import { launch, stopVm } from "./_lifecycle.ts";
import {
  killHandle,
  killLadder,
  messageOf,
  setState,
  toRecord,
  type VmRuntime,
} from "./_runtime.ts";
import { vmPaths } from "./spec.ts";
import { lockRuntimeDir } from "./_jail.ts";
import { noSpaceError } from "../../images/no_space.ts";
import type { VmRow } from "../store/mod.ts";

/** What `snapshot.json` holds: the record, and kestrel's access for a restore. */
const StoredSnapshot = z.object({
  record: SnapshotRecord,
  agent: z.object({ port: z.number().int(), secret: z.string() }),
  /**
   * Whether the saved guest's kestrel holds a control port (the VMM wired one and the VM runs
   * kestrel): a restore then hands it fresh entropy, the clock and a new secret; a clone needs it.
   */
  control: z.optional(z.boolean()),
  /** What a clone is made of (absent in snapshots taken before clones existed). */
  template: z.optional(z.object({
    plugin: z.string().nullable(),
    image: z.string().nullable(),
    image_digest: z.string().nullable(),
    image_overrides: z.unknown(),
    cpu_cores: z.number().int(),
    memory_mb: z.number().int(),
    kernel: z.string(),
    kernel_cmdline: z.string().nullable(),
    network_policy: z.unknown(),
  })),
});
type StoredSnapshot = z.infer<typeof StoredSnapshot>;

const META = "snapshot.json";

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function sha256File(path: string): Promise<string> {
  const hasher = await crypto.subtle.digest(
    "SHA-256",
    await Deno.readFile(path),
  );
  return `sha256:${
    [...new Uint8Array(hasher)].map((b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

/** Every regular file below `dir`, as paths relative to it. */
async function filesBelow(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(`${dir}${prefix ? `/${prefix}` : ""}`)) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) out.push(...await filesBelow(dir, rel));
    else if (entry.isFile) out.push(rel);
  }
  return out.sort();
}

/** Copies `from` to `to` (reflinked when the filesystem can, holes kept), via a temp name. */
async function copyFile(from: string, to: string): Promise<void> {
  const temp = `${to}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  const out = await new Deno.Command("cp", {
    args: ["--reflink=auto", "--sparse=always", "--", from, temp],
    stderr: "piped",
  }).output();
  if (!out.success) {
    await Deno.remove(temp).catch(() => {});
    throw new VolantError(
      "invalid_state",
      `cannot copy ${from}: ${new TextDecoder().decode(out.stderr).trim()}`,
      { from, to },
    );
  }
  await Deno.rename(temp, to);
}

function utcStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "z").toLowerCase();
}

/** What a clone resumes from (`SnapshotService.forClone`). */
export interface CloneSource {
  record: SnapshotRecord;
  /** The source VM's settings the clone takes (as its row held them). */
  template: Pick<
    VmRow,
    | "plugin"
    | "image"
    | "image_digest"
    | "image_overrides"
    | "cpu_cores"
    | "memory_mb"
    | "kernel"
    | "kernel_cmdline"
    | "network_policy"
  >;
  /** The saved state's directory (`LaunchRestore.stateDir`). */
  stateDir: string;
  /** Copies the snapshot's writable disks into `diskDir` (each clone gets its own). */
  copyDisks(diskDir: string): Promise<void>;
  /** Ends the snapshot's use by this clone (it may be deleted again once none uses it). */
  release(): void;
}

/** Snapshots and restores; see the module doc. */
export class SnapshotService {
  readonly #rt: VmRuntime;
  /** Snapshots a clone is being made from right now: `remove` refuses them. */
  readonly #inUse = new Map<string, number>();

  /** Snapshots of the VMs `rt` runs. */
  constructor(rt: VmRuntime) {
    this.#rt = rt;
  }

  /** Where snapshots live. */
  get dir(): string {
    const c = this.#rt.config;
    return `${c.stateDir ?? `${c.runtimeDir}/state`}/snapshots`;
  }

  /** Removes what a save cut short left (`.partial-*`); run at start. */
  async gc(): Promise<void> {
    const entries = await Array.fromAsync(Deno.readDir(this.dir)).catch(() => []);
    for (const e of entries) {
      if (e.name.startsWith(".partial-")) {
        await Deno.remove(`${this.dir}/${e.name}`, { recursive: true }).catch(() => {});
      }
    }
  }

  async #read(name: string): Promise<StoredSnapshot> {
    const path = `${this.dir}/${name}/${META}`;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch {
      throw new VolantError("not_found", `No snapshot named ${name}`, { snapshot: name });
    }
    const parsed = StoredSnapshot.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new VolantError("invalid_state", `snapshot ${name}: ${path} is not a snapshot record`, {
        snapshot: name,
      });
    }
    return parsed.data;
  }

  /** Every snapshot, oldest first. */
  async list(): Promise<SnapshotRecord[]> {
    const entries = await Array.fromAsync(Deno.readDir(this.dir)).catch(() => []);
    const out: SnapshotRecord[] = [];
    for (const e of entries) {
      if (!e.isDirectory || e.name.startsWith(".")) continue;
      const stored = await this.#read(e.name).catch(() => undefined);
      if (stored) out.push(stored.record);
    }
    return out.sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  /** One snapshot; `not_found` when there is none of that name. */
  async get(name: string): Promise<SnapshotRecord> {
    return (await this.#read(name)).record;
  }

  /** Deletes a snapshot and its files. */
  async remove(name: string): Promise<SnapshotRecord> {
    const record = await this.get(name);
    if ((this.#inUse.get(name) ?? 0) > 0) {
      throw new VolantError(
        "invalid_state",
        `snapshot ${name} is being resumed as a new VM right now; delete it once that is done`,
        { snapshot: name },
      );
    }
    await Deno.remove(`${this.dir}/${name}`, { recursive: true });
    this.#rt.logger.info("snapshot deleted", { snapshot: name });
    this.#event("snapshot.deleted", record);
    return record;
  }

  /**
   * Snapshots running VM `vm` (body: {@linkcode SnapshotCreateRequest}). Errors:
   * `invalid_state` (not running), `already_exists`, `unsupported` (the driver cannot save),
   * the driver's own; the VM runs on whatever happens.
   */
  async create(vm: string, input: unknown): Promise<SnapshotRecord> {
    const parsedBody = SnapshotCreateRequest.safeParse(input ?? {});
    if (!parsedBody.success) throw fromZodError(parsedBody.error);
    const rt = this.#rt;
    const driver = rt.driver;
    if (driver.saveState === undefined) {
      throw new VolantError(
        "unsupported",
        `the ${driver.name} driver cannot snapshot VMs yet (QEMU can)`,
        { hypervisor: driver.name },
      );
    }
    return await rt.mutex.run(vm, async () => {
      const row = rt.store.get(vm);
      if (!row) throw new VolantError("not_found", `VM ${vm} does not exist`, { name: vm });
      if (row.state !== "running" || !row.handle) {
        throw new VolantError(
          "invalid_state",
          `VM ${vm} is ${row.state}: only a running VM can be snapshotted (start it first)`,
          { vm, state: row.state },
        );
      }
      const name = parsedBody.data.snapshot ?? `${vm}-${utcStamp(rt.now())}`;
      const final = `${this.dir}/${name}`;
      if (await exists(final)) {
        throw new VolantError("already_exists", `A snapshot named ${name} exists`, {
          snapshot: name,
        });
      }
      await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
      const temp = `${this.dir}/.partial-${name}-${crypto.randomUUID().slice(0, 8)}`;
      await Deno.mkdir(`${temp}/state`, { recursive: true, mode: 0o700 });
      await Deno.mkdir(`${temp}/disks`, { mode: 0o700 });
      const handle = row.handle;
      const began = performance.now();
      let pausedMs = 0;
      try {
        const runtimeDir = vmPaths(rt.config, vm).runtimeDir;
        try {
          // A jailed VMM connects to the save's socket in its (root-owned, locked) runtime dir:
          // it may pass through for the save, never add entries (see lockRuntimeDir).
          if (handle.jail) {
            await Deno.chown(runtimeDir, 0, handle.jail.gid);
            await Deno.chmod(runtimeDir, 0o750);
          }
          // saveState pauses the guest; the disks are copied while it still is.
          await driver.saveState!(handle, `${temp}/state`);
          const diskDir = vmPaths(rt.config, vm).diskDir;
          const entries = await Array.fromAsync(Deno.readDir(diskDir)).catch(() => []);
          for (const e of entries) {
            if (e.isFile) await copyFile(`${diskDir}/${e.name}`, `${temp}/disks/${e.name}`);
          }
        } finally {
          if (handle.jail) await lockRuntimeDir(runtimeDir).catch(() => {});
          // The VM runs on, snapshot or not (a VMM that died meanwhile is the exit watcher's).
          await driver.resume(handle).catch((err) =>
            rt.logger.warn("resume after snapshot failed", { vm, error: err })
          );
          pausedMs = Math.round(performance.now() - began);
        }
        const files: SnapshotFile[] = [];
        for (const path of await filesBelow(temp)) {
          const full = `${temp}/${path}`;
          files.push({ path, bytes: (await Deno.stat(full)).size, sha256: await sha256File(full) });
        }
        if (!row.agent_secret || row.agent_port === null) {
          throw new VolantError("invalid_state", `VM ${vm} has no kestrel access to save`);
        }
        const record: SnapshotRecord = {
          name,
          vm,
          created_at: rt.now().toISOString(),
          hypervisor: driver.name as SnapshotRecord["hypervisor"],
          kvm: driver.kvm,
          cpu_cores: row.cpu_cores,
          memory_mb: row.memory_mb,
          plugin: row.plugin,
          image: row.image,
          bytes: files.reduce((n, f) => n + f.bytes, 0),
          save_ms: pausedMs,
          files,
        };
        const stored: StoredSnapshot = {
          record,
          agent: { port: row.agent_port, secret: row.agent_secret.reveal() },
          control: driver.guestControlDevice !== undefined && this.#runsKestrel(row),
          template: {
            plugin: row.plugin,
            image: row.image,
            image_digest: row.image_digest,
            image_overrides: row.image_overrides,
            cpu_cores: row.cpu_cores,
            memory_mb: row.memory_mb,
            kernel: row.kernel,
            kernel_cmdline: row.kernel_cmdline,
            network_policy: row.network_policy,
          },
        };
        await Deno.writeTextFile(`${temp}/${META}`, JSON.stringify(stored), { mode: 0o600 });
        await Deno.rename(temp, final);
        this.#event("snapshot.created", record);
        rt.logger.info("snapshot taken", {
          vm,
          snapshot: name,
          bytes: record.bytes,
          paused_ms: pausedMs,
        });
        return record;
      } catch (err) {
        await Deno.remove(temp, { recursive: true }).catch(() => {});
        throw noSpaceError(err, this.dir, `snapshot ${name} of ${vm}`);
      }
    });
  }

  /** Checks every file of a snapshot against its recorded size and checksum. */
  async #verify(name: string, record: SnapshotRecord): Promise<void> {
    for (const f of record.files) {
      const path = `${this.dir}/${name}/${f.path}`;
      const size = await Deno.stat(path).then((s) => s.size, () => -1);
      if (size !== f.bytes || await sha256File(path) !== f.sha256) {
        throw new VolantError(
          "invalid_state",
          `snapshot ${name}: ${f.path} ${size < 0 ? "is missing" : "does not match its checksum"}` +
            "; the snapshot cannot be used (delete it)",
          { snapshot: name, file: f.path },
        );
      }
    }
  }

  /** Records a snapshot event in the durable event log (what `volar events` follows). */
  #event(type: "snapshot.created" | "snapshot.deleted", snapshot: SnapshotRecord): void {
    this.#rt.events.record({
      type,
      name: snapshot.name,
      at: this.#rt.now().toISOString(),
      snapshot,
    });
  }

  /** Whether VM `row` runs kestrel (an image VM, or a plugin whose init is kestrel). */
  #runsKestrel(row: VmRow): boolean {
    if (row.plugin === null) return true;
    try {
      return (this.#rt.plugins?.parsedManifest(row.plugin).init.mode ?? "kestrel") === "kestrel";
    } catch {
      return false; // the plugin is gone: nothing to tell about its guest
    }
  }

  /**
   * A snapshot to resume as a new VM (`from_snapshot`): checked (same hypervisor, every file's
   * checksum) and marked in use until `release()`. `field` names the request field in errors.
   */
  async forClone(name: string, field = "from_snapshot"): Promise<CloneSource> {
    const rt = this.#rt;
    // Refused before anything runs: a clone this driver cannot re-identify would resume on the
    // bridge as its parent.
    if (rt.driver.guestControl === undefined || rt.driver.connectNics === undefined) {
      throw new VolantError(
        "unsupported",
        `${field}: the ${rt.driver.name} driver cannot give a resumed clone its own identity ` +
          "yet (no guest control port); QEMU can",
        { field, hypervisor: rt.driver.name },
      );
    }
    const stored = await this.#read(name).catch((err) => {
      if (err instanceof VolantError && err.code === "not_found") {
        throw new VolantError("not_found", `${field}: no snapshot named ${name}`, {
          field,
          snapshot: name,
        });
      }
      throw err;
    });
    const snap = stored.record;
    const refuse = (why: string) =>
      new VolantError("invalid_argument", `${field}: snapshot ${name} ${why}`, {
        field,
        snapshot: name,
      });
    if (snap.hypervisor !== rt.driver.name) {
      throw refuse(`was saved by ${snap.hypervisor}; this volantd runs ${rt.driver.name}`);
    }
    if (stored.template === undefined) {
      throw refuse("was taken before clones were possible; take a new one to clone from");
    }
    this.#inUse.set(name, (this.#inUse.get(name) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (this.#inUse.get(name) ?? 1) - 1;
      if (left > 0) this.#inUse.set(name, left);
      else this.#inUse.delete(name);
    };
    try {
      await this.#verify(name, snap);
    } catch (err) {
      release();
      throw err;
    }
    const dir = `${this.dir}/${name}`;
    const t = stored.template;
    return {
      record: snap,
      template: {
        plugin: t.plugin,
        image: t.image,
        image_digest: t.image_digest,
        image_overrides: (t.image_overrides ?? null) as VmRow["image_overrides"],
        cpu_cores: t.cpu_cores,
        memory_mb: t.memory_mb,
        kernel: t.kernel as VmRow["kernel"],
        kernel_cmdline: t.kernel_cmdline,
        network_policy: t.network_policy as VmRow["network_policy"],
      },
      stateDir: `${dir}/state`,
      copyDisks: async (diskDir) => {
        const disks = snap.files.filter((f) => f.path.startsWith("disks/"));
        if (disks.length > 0) await Deno.mkdir(diskDir, { recursive: true });
        for (const f of disks) await copyFile(`${dir}/${f.path}`, `${diskDir}/${f.path.slice(6)}`);
      },
      release,
    };
  }

  /**
   * Puts VM `vm` back to its snapshot (body: {@linkcode VmRestoreRequest}); resolves at
   * `starting` (then `running` once kestrel answers). Nothing is changed when a check fails.
   */
  async restore(vm: string, input: unknown): Promise<VmRecord> {
    const parsedBody = VmRestoreRequest.safeParse(input ?? {});
    if (!parsedBody.success) throw fromZodError(parsedBody.error);
    const { from, force } = parsedBody.data;
    const rt = this.#rt;
    return await rt.mutex.run(vm, async () => {
      let row = rt.store.get(vm);
      if (!row) throw new VolantError("not_found", `VM ${vm} does not exist`, { name: vm });
      const stored = await this.#read(from);
      const snap = stored.record;
      const refuse = (field: string, why: string) => {
        throw new VolantError("invalid_argument", `from: snapshot ${from} ${why}`, {
          field,
          snapshot: from,
        });
      };
      if (snap.vm !== vm) {
        refuse("from", `is of VM ${snap.vm}, not ${vm} (a restore puts a VM back to its own past)`);
      }
      if (snap.hypervisor !== rt.driver.name) {
        refuse("from", `was saved by ${snap.hypervisor}; this volantd runs ${rt.driver.name}`);
      }
      if (snap.cpu_cores !== row.cpu_cores || snap.memory_mb !== row.memory_mb) {
        refuse(
          "from",
          `has ${snap.cpu_cores} CPUs and ${snap.memory_mb} MiB; VM ${vm} now has ` +
            `${row.cpu_cores} and ${row.memory_mb}`,
        );
      }
      if ((row.state === "running" || row.state === "starting") && !force) {
        throw new VolantError(
          "invalid_state",
          `VM ${vm} is ${row.state}: restoring replaces its state; pass force to stop it first`,
          { vm, state: row.state },
        );
      }
      await this.#verify(from, snap);
      if (row.state === "running" || row.state === "starting") row = await stopVm(rt, row);
      else assertAction(vm, "start", row.state);
      if (row.handle) await killHandle(rt, vm, row.handle, killLadder(rt));
      // The disks as they were (the VM is down: nothing writes them).
      const diskDir = vmPaths(rt.config, vm).diskDir;
      const disks = snap.files.filter((f) => f.path.startsWith("disks/"));
      if (disks.length > 0) await Deno.mkdir(diskDir, { recursive: true });
      for (const f of disks) {
        await copyFile(`${this.dir}/${from}/${f.path}`, `${diskDir}/${f.path.slice(6)}`);
      }
      const agent: AgentAccess = stored.agent;
      const stateDir = `${this.dir}/${from}/state`;
      // The guest goes back in time: with a control port it gets fresh entropy (its RNG would
      // otherwise repeat what it produced after the snapshot), the host's clock and a new
      // secret (the saved one is on disk in snapshot.json); without one it keeps the old ones.
      const fresh = stored.control === true && rt.driver.guestControl !== undefined &&
        rt.driver.connectNics !== undefined;
      try {
        const launched = await launch(
          rt,
          rt.store.get(vm) ?? row,
          undefined,
          fresh ? { stateDir, identity: true } : { stateDir, agent },
        );
        rt.logger.info("vm restored", { vm, snapshot: from });
        return toRecord(launched);
      } catch (err) {
        const now = rt.store.get(vm);
        if (now?.state === "starting") {
          setState(rt, vm, "crashed", { last_error: `restore from ${from}: ${messageOf(err)}` });
        } else if (now) {
          rt.store.update(vm, { last_error: `restore from ${from}: ${messageOf(err)}` });
        }
        throw err;
      }
    });
  }
}
