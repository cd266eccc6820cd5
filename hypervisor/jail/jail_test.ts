/**
 * A real jailed process (root only): `sleep` launched through the jail prefix runs as the
 * jail's uid with no new privileges, in its cgroup with the limits written, and its root holds
 * only what was bound; removing the cgroup ends it.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { isAlive, spawnDetached } from "../process/mod.ts";
import type { VmSpec } from "../driver.ts";
import {
  cgroupParentDirs,
  cgroupPids,
  createVmmCgroup,
  detectCgroupHost,
  prepareCgroupParent,
  prepareVmmJail,
  readCgroupLimits,
  removeVmmCgroup,
  vmmLimits,
} from "./mod.ts";

const root = Deno.uid() === 0;
const host = root ? await detectCgroupHost("auto").catch((e: Error) => e) : null;
const ignore = !root
  ? "needs root"
  : host instanceof Error
  ? `no cgroup controllers: ${host.message}`
  : undefined;

Deno.test({
  name: "a jailed process runs as its uid, in its cgroup, seeing only its files" +
    (ignore ? ` (skipped: ${ignore})` : ""),
  ignore: ignore !== undefined,
  fn: async () => {
    if (!host || host instanceof Error) return;
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "volant-jail-" }));
    const parent = cgroupParentDirs(host, `volant-test-${crypto.randomUUID().slice(0, 8)}`);
    const uid = 990_123;
    let cgroup: Awaited<ReturnType<typeof createVmmCgroup>> | undefined;
    try {
      await prepareCgroupParent(host, parent);
      cgroup = await createVmmCgroup(
        host,
        parent,
        "vm",
        vmmLimits({ cpus: 1, memoryMib: 128, accel: "tcg", pidsMax: 32 }),
      );
      for (const d of ["run", "root"]) await Deno.mkdir(`${dir}/${d}`);
      await Deno.chown(`${dir}/run`, uid, uid);
      await Deno.writeTextFile(`${dir}/kernel`, "k");
      await Deno.writeTextFile(`${dir}/serial.log`, "");
      const spec: VmSpec & { jail: NonNullable<VmSpec["jail"]> } = {
        id: "vm",
        cpus: 1,
        memoryMib: 128,
        kernel: { path: `${dir}/kernel`, format: "bzImage" },
        cmdline: "",
        disks: [],
        nics: [],
        serialLog: `${dir}/serial.log`,
        vmmLog: `${dir}/vmm.log`,
        runtimeDir: `${dir}/run`,
        jail: { uid, gid: uid, root: `${dir}/root`, cgroup, devices: [] },
      };
      const sleep = await Deno.realPath("/usr/bin/sleep");
      const launch = await prepareVmmJail(spec, sleep);
      let spawned: number | null = null;
      const p = await spawnDetached({
        argv: [sleep, "300"],
        log: spec.vmmLog,
        prefix: launch.prefix,
        exe: launch.exe,
        cgroupProcs: launch.cgroupProcs,
        clearEnv: true,
        onSpawn: (pid) => void (spawned = pid),
      });
      equal(spawned, p.pid, "the pid is handed over before the wrappers are done");
      const status = await Deno.readTextFile(`/proc/${p.pid}/status`);
      match(status, new RegExp(`^Uid:\\t${uid}\\t${uid}\\t${uid}\\t${uid}$`, "m"));
      match(status, new RegExp(`^Gid:\\t${uid}\\t${uid}\\t${uid}\\t${uid}$`, "m"));
      match(status, /^Groups:[\t ]*$/m);
      match(status, /^NoNewPrivs:\t1$/m);
      equal((await Deno.readTextFile(`/proc/${p.pid}/environ`)).includes("HOME="), false);
      deepEqual(await cgroupPids(cgroup), [p.pid]);
      const limits = await readCgroupLimits(cgroup);
      equal(
        limits[host.version === "v2" ? "memory.max" : "memory.limit_in_bytes"],
        String(cgroup.limits.memoryMaxBytes),
      );
      equal(limits["pids.max"], "32");
      // Its root: the bound paths and /dev, nothing else of the host.
      const top = (await Array.fromAsync(Deno.readDir(`/proc/${p.pid}/root`))).map((e) => e.name);
      ok(top.includes("dev") && top.includes("usr"), top.join(" "));
      for (const absent of ["etc", "root", "home", "var", "proc", "sys"]) {
        ok(!top.includes(absent), `${absent} is not in the jail: ${top.join(" ")}`);
      }
      const devs = (await Array.fromAsync(Deno.readDir(`/proc/${p.pid}/root/dev`))).map((e) =>
        e.name
      );
      deepEqual(devs.sort(), ["null", "random", "urandom", "zero"]);
      ok((await Deno.stat(`/proc/${p.pid}/root${dir}/kernel`)).isFile);
      // On the host the jail dir stays empty (the mounts live in the process's namespace).
      deepEqual(await Array.fromAsync(Deno.readDir(`${dir}/root`)), []);
      await removeVmmCgroup(cgroup);
      equal(await isAlive(p.pid, p.startTime), false, "removing its cgroup ends it");
    } finally {
      // Kills what the test started in its cgroup, whatever failed.
      if (cgroup) await removeVmmCgroup(cgroup).catch(() => {});
      for (const d of new Set(Object.values(parent))) await Deno.remove(d).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});
