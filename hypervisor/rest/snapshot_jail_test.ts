/**
 * Saving and restoring a jailed VMM (root only): the snapshot-capable fake VMM runs in a real
 * jail (its own uid, cgroup and mount namespace; see `../jail/`), so it sees only its VM's files.
 * A save is written into its runtime dir (the only directory it can write) and moved out; a
 * restore gets the saved files bound read-only and lent to its uid for the load.
 *
 * The fake is a Deno program: its jail also holds Deno, the repository, Deno's cache and
 * `/proc` (Deno needs `/proc/self/exe`), none of which a real VMM gets.
 */
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import type { VolantError } from "../../schema/mod.ts";
import { CloudHypervisorDriver } from "../cloud_hypervisor/driver.ts";
import { processesMentioning } from "../contract_suite.ts";
import type { VmmHandle, VmSpec } from "../driver.ts";
import { type SnapshotFakeKind, TICK_MARKER, writeSnapshotFake } from "../fake/snapshot_vmm.ts";
import { FirecrackerDriver } from "../firecracker/driver.ts";
import {
  cgroupParentDirs,
  createVmmCgroup,
  detectCgroupHost,
  prepareCgroupParent,
  programFiles,
  removeVmmCgroup,
  vmmLimits,
} from "../jail/mod.ts";
import { vendoredDocument } from "../testing/openapi_contract.ts";
import type { RestVmmDriver } from "./driver.ts";

const root = Deno.uid() === 0;
const host = root ? await detectCgroupHost("auto").catch((e: Error) => e) : null;
const ignore = !root
  ? "needs root"
  : host instanceof Error
  ? `no cgroup controllers: ${host.message}`
  : undefined;

const UID = 990_457;

const KINDS: Record<SnapshotFakeKind, { doc: string; version: string; files: string[] }> = {
  "cloud-hypervisor": {
    doc: "cloud_hypervisor/openapi/openapi-v53.0.yaml",
    version: "53.0.0",
    files: ["config.json", "memory-ranges", "state.json"],
  },
  "firecracker": {
    doc: "firecracker/openapi/openapi-v1.16.1.yaml",
    version: "1.16.1",
    files: ["memory", "vmstate"],
  },
};

async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

function ticks(text: string): Array<{ n: number; id: string }> {
  return [...text.matchAll(new RegExp(`^${TICK_MARKER} (\\d+) (\\w+)$`, "gm"))]
    .map((m) => ({ n: Number(m[1]), id: m[2]! }));
}

async function untilTick(log: string, atLeast: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!ticks(await Deno.readTextFile(log).catch(() => "")).some((t) => t.n >= atLeast)) {
    if (Date.now() > deadline) throw new Error(`no tick ${atLeast} in ${log} within 60 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A runtime dir and serial log as the daemon prepares them for a jailed VMM. */
async function vmFiles(dir: string, name: string): Promise<{ run: string; serial: string }> {
  const run = `${dir}/${name}`;
  await Deno.mkdir(run);
  await Deno.chown(run, UID, UID);
  await Deno.chmod(run, 0o700);
  const serial = `${dir}/${name}.serial.log`;
  await Deno.writeTextFile(serial, "", { mode: 0o640 });
  await Deno.chown(serial, UID, null);
  return { run, serial };
}

for (const [kind, { doc, version, files }] of Object.entries(KINDS)) {
  Deno.test({
    name: `${kind}: a jailed VMM saves through its runtime dir and restores from bound, lent ` +
      `files${ignore ? ` (skipped: ${ignore})` : ""}`,
    ignore: ignore !== undefined,
    fn: async () => {
      if (!host || host instanceof Error) return;
      const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "volant-jail-snap-" }));
      const parent = cgroupParentDirs(host, `volant-test-${crypto.randomUUID().slice(0, 8)}`);
      let cgroup: Awaited<ReturnType<typeof createVmmCgroup>> | undefined;
      try {
        await prepareCgroupParent(host, parent);
        cgroup = await createVmmCgroup(
          host,
          parent,
          "vm",
          vmmLimits({ cpus: 1, memoryMib: 256, accel: "kvm" }),
        );
        for (const d of ["jail", "bin", "state"]) await Deno.mkdir(`${dir}/${d}`);
        await Deno.writeTextFile(`${dir}/vmlinux`, "fake kernel");
        await Deno.writeTextFile(`${dir}/root.img`, "root disk\n");
        await Deno.chown(`${dir}/root.img`, UID, null);
        const fake = await writeSnapshotFake(`${dir}/bin`, kind as SnapshotFakeKind, {
          document: vendoredDocument(doc),
          version,
        }, { env: { DENO_DIR: await denoDir() } });
        const deno = await Deno.realPath(Deno.execPath());
        const readOnly = [
          ...await programFiles(deno),
          "/bin/sh",
          ...await programFiles(await Deno.realPath("/bin/sh")),
          "/proc",
          new URL("../../", import.meta.url).pathname.replace(/\/$/, ""),
          await denoDir(),
          `${dir}/bin`,
        ];
        const options = { binary: fake.path, processExe: fake.processExe, startTimeoutMs: 60_000 };
        const driver: RestVmmDriver<unknown, string> = kind === "firecracker"
          ? new FirecrackerDriver(options) as unknown as RestVmmDriver<unknown, string>
          : new CloudHypervisorDriver(options) as unknown as RestVmmDriver<unknown, string>;
        const first = await vmFiles(dir, "run");
        const spec: VmSpec = {
          id: "jailed",
          cpus: 1,
          memoryMib: 256,
          kernel: { path: `${dir}/vmlinux`, format: "vmlinux" },
          cmdline: "console=ttyS0 reboot=k volant_test_ticks=1",
          disks: [{ id: "root", path: `${dir}/root.img`, readOnly: false, format: "raw" }],
          nics: [],
          serialLog: first.serial,
          vmmLog: `${dir}/vmm.log`,
          runtimeDir: first.run,
          jail: { uid: UID, gid: UID, root: `${dir}/jail`, cgroup, devices: [], readOnly },
        };
        const state = `${dir}/state`;
        const stop = async (handle: VmmHandle) => {
          await driver.shutdown(handle, { gracefulMs: 0, termMs: 5_000 });
          await driver.cleanup(handle);
        };

        const source = await driver.create(spec);
        try {
          const status = await Deno.readTextFile(`/proc/${source.pid}/status`);
          match(status, new RegExp(`^Uid:\\t${UID}\\t`, "m"), "the VMM runs as the jail's uid");
          await driver.boot(source);
          await untilTick(first.serial, 2);
          // The daemon hands the runtime dir back to root once the VMM is up: the jailed VMM
          // can no longer reach it, so it cannot write a save there.
          await Deno.chown(first.run, 0, 0);
          await Deno.chmod(first.run, 0o750);
          await rejects(driver.saveState(source, state), (err: VolantError) => {
            equal(err.code, "invalid_state", err.message);
            match(err.message, /runs as uid 990457 and cannot enter its runtime dir .*mode 0750/);
            return true;
          });
          equal(await driver.info(source), "running", "nothing was paused");
          // Searchable (not writable) is enough: the daemon's snapshot service lets the jail's
          // group through for the save.
          await Deno.chown(first.run, 0, UID);
          // What a daemon killed during an earlier save left.
          await Deno.mkdir(`${first.run}/state.partial`);
          await Deno.writeTextFile(`${first.run}/state.partial/memory`, "stale");
          const saved = await driver.saveState(source, state);
          deepEqual(saved.files, files);
          deepEqual(names(state), files);
          for (const file of files) {
            const info = await Deno.stat(`${state}/${file}`);
            deepEqual([info.uid, info.gid, (info.mode ?? 0) & 0o777], [0, 0, 0o600], file);
          }
          ok(!names(first.run).includes("state.partial"), "the staging dir is gone");
        } finally {
          await stop(source);
        }
        const last = ticks(await Deno.readTextFile(first.serial)).at(-1)!;

        const second = await vmFiles(dir, "run2");
        const restored = await driver.create({
          ...spec,
          runtimeDir: second.run,
          serialLog: second.serial,
          restoreFrom: state,
        });
        try {
          equal(await driver.info(restored), "paused");
          for (const file of files) {
            ok(
              (await Deno.stat(`/proc/${restored.pid}/root${state}/${file}`)).isFile,
              `${file} is bound in the jail`,
            );
            const info = await Deno.stat(`${state}/${file}`);
            deepEqual([info.uid, info.gid], [0, 0], `${file} was given back`);
          }
          ok(!names(second.run).includes("state.restore"), "the staged files are gone");
          await driver.resume(restored);
          await untilTick(second.serial, last.n + 2);
          const after = ticks(await Deno.readTextFile(second.serial));
          equal(after[0]!.id, last.id, "the saved guest's memory");
          equal(after[0]!.n, last.n + 1, "carries on where it was saved");
        } finally {
          await stop(restored);
        }
        deepEqual(await processesMentioning(dir), []);
      } finally {
        if (cgroup) await removeVmmCgroup(cgroup).catch(() => {});
        for (const d of new Set(Object.values(parent))) await Deno.remove(d).catch(() => {});
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
