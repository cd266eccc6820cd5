/**
 * The walking skeleton end to end: `volar` → volantd → QEMU (TCG here, KVM where usable) →
 * kestrel as PID 1 → ready → stop (power button) → start → restart → delete, and nothing left.
 */
import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { ReadyReport, VmList, VmRecord } from "../schema/mod.ts";
import {
  type E2eDaemon,
  listTree,
  pidAlive,
  processesMentioning,
  startDaemon,
  testGuestDir,
} from "./harness.ts";

async function inode(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).ino;
  } catch {
    return null;
  }
}

function vmLogLines(logs: string[], msg: string, vm: string): Array<Record<string, unknown>> {
  return logs.flatMap((line) => {
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      return parsed.msg === msg && parsed.vm === vm ? [parsed] : [];
    } catch {
      return [];
    }
  });
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * The VMM of `vm` is jailed: not root, no new privileges, QEMU's seccomp sandbox, in its own
 * cgroup with the record's limits written, and its root holds its VM's files but nothing else
 * of the host's (no /etc, no daemon state, no config).
 */
async function assertJailed(daemon: E2eDaemon, vm: VmRecord) {
  const jail = vm.jail;
  ok(jail, "the record shows the jail in force");
  const pid = vm.pid!;
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const ids = (key: string) => status.match(new RegExp(`^${key}:\\t(.*)$`, "m"))?.[1]?.split("\t");
  notEqual(jail.uid, 0);
  deepEqual(ids("Uid"), Array(4).fill(String(jail.uid)), "the VMM is not root");
  deepEqual(ids("Gid"), Array(4).fill(String(jail.gid)));
  match(status, /^NoNewPrivs:\t1$/m);
  match(status, /^Seccomp:\t2$/m, "a seccomp filter is on");
  const cmdline = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
  equal(
    cmdline[cmdline.indexOf("-sandbox") + 1],
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
  );
  // Its cgroup, with the limits written: guest memory + the VMM's own, 1.25 CPUs, 256 pids.
  const cg = jail.cgroup;
  equal(cg.memory_max_bytes, (256 + 192) * 1024 * 1024);
  const member = await Deno.readTextFile(`/proc/${pid}/cgroup`);
  for (const path of cg.paths) {
    const procs = await Deno.readTextFile(`${path}/cgroup.procs`);
    ok(procs.split("\n").includes(String(pid)), `pid ${pid} is in ${path}`);
    ok(member.includes(path.slice(path.indexOf("/volant-e2e-"))), member);
  }
  const find = async (file: string) => {
    for (const p of cg.paths) {
      if (await exists(`${p}/${file}`)) return (await Deno.readTextFile(`${p}/${file}`)).trim();
    }
    throw new Error(`no ${file} in ${cg.paths.join(", ")}`);
  };
  if (cg.version === "v2") {
    equal(await find("memory.max"), String(cg.memory_max_bytes));
    equal(await find("cpu.max"), cg.cpu_max);
  } else {
    equal(await find("memory.limit_in_bytes"), String(cg.memory_max_bytes));
    equal(`${await find("cpu.cfs_quota_us")} ${await find("cpu.cfs_period_us")}`, cg.cpu_max);
  }
  equal(await find("pids.max"), String(cg.pids_max));
  // What it sees: its own files, not the host's.
  const root = `/proc/${pid}/root`;
  const top = (await Array.fromAsync(Deno.readDir(root))).map((e) => e.name);
  for (const absent of ["etc", "root", "home", "proc", "sys", "boot", "var"]) {
    ok(!top.includes(absent), `/${absent} is not in the jail (${top.join(" ")})`);
  }
  ok(await exists(`${root}${daemon.dir}/log/vms/demo/serial.log`), "its serial log");
  ok(await exists(`${root}${daemon.dir}/run/vms/demo/qmp.sock`), "its QMP socket");
  for (const hidden of ["state/volant.db", "config.yaml", "log/volantd.log", "run/volantd.sock"]) {
    equal(await exists(`${root}${daemon.dir}/${hidden}`), false, `${hidden} is not in the jail`);
  }
  deepEqual(
    (await Array.fromAsync(Deno.readDir(`${root}/dev`))).map((e) => e.name).sort(),
    ["net", "null", "random", "urandom", "zero", ...(vm.kvm ? ["kvm"] : [])].sort(),
  );
  equal((await Deno.stat(`${root}/dev/net/tun`)).uid, jail.uid, "its tun device is its own");
  deepEqual(await Array.fromAsync(Deno.readDir(jail.root)), [], "empty on the host");
  return jail;
}

Deno.test("volar drives a real microVM on Debian's kernel (the fallback path): create → running → stop → start → restart → delete", async () => {
  let daemon: E2eDaemon | undefined;
  try {
    // Every other VM test boots Volant's own kernel; this one keeps Debian's path honest.
    daemon = await startDaemon({ guestDir: await testGuestDir("debian") });
    const created = await daemon.volar("vms", "create", "demo", "--memory", "256");
    equal(created.code, 0, created.stderr);
    match(created.stdout, /demo/);
    match(created.stdout, /running/);
    match(created.stdout, /ready in \d+(\.\d+)? ?m?s/);

    const listed = await daemon.volar("vms", "list", "--json");
    equal(listed.code, 0, listed.stderr);
    const [vm] = VmList.parse(JSON.parse(listed.stdout)).vms;
    ok(vm);
    equal(vm.name, "demo");
    equal(vm.state, "running");
    equal(vm.hypervisor, "qemu");
    ok(vm.boot_ms !== null && vm.boot_ms > 0, "boot_ms is measured");
    ok(vm.pid !== null && await pidAlive(vm.pid));

    // The VMM runs inside the daemon's namespace, not the root one.
    equal(await inode(`/proc/${vm.pid}/ns/net`), await inode(`/run/netns/${daemon.ns}`));
    match(await Deno.readTextFile(`/proc/${vm.pid}/cmdline`), /qemu-system-x86_64/);

    // kestrel ran as PID 1 and reported from inside the guest.
    const serial = await Deno.readTextFile(`${daemon.dir}/log/vms/demo/serial.log`);
    const readyLine = serial.split("\n").find((l) => l.startsWith("KESTREL_READY "));
    ok(readyLine, `no ready line in the serial log:\n${serial}`);
    const report = ReadyReport.parse(JSON.parse(readyLine.slice("KESTREL_READY ".length)));
    equal(report.name, "demo");
    ok(report.mem_total_kb > 100_000 && report.mem_total_kb < 300_000, "guest sees ~256 MiB");

    const table = await daemon.volar("vms", "list");
    equal(table.code, 0);
    match(table.stdout, /^NAME\s+STATE/m);
    match(table.stdout, /^demo\s+running/m);

    const got = await daemon.volar("vms", "get", "demo", "--json");
    const record = VmRecord.parse(JSON.parse(got.stdout));
    deepEqual(record.name, "demo");
    const jail = await assertJailed(daemon, record);
    const shown = await daemon.volar("vms", "get", "demo");
    match(shown.stdout, new RegExp(`^jail: +uid ${jail.uid}, gid ${jail.gid}, root `, "m"));
    match(shown.stdout, /^cgroup: +\S+demo.* \(v[12]\)$/m);
    match(shown.stdout, /^limits: +memory 448 MiB, cpu 1\.25 CPUs, pids 256$/m);

    const stopped = await daemon.volar("vms", "stop", "demo", "--json");
    equal(stopped.code, 0, stopped.stderr);
    equal(VmRecord.parse(JSON.parse(stopped.stdout)).state, "stopped");
    equal(await pidAlive(vm.pid), false, "the VMM is gone after stop");
    const via = vmLogLines(daemon.logs(), "vmm stopped", "demo").map((l) => l.via);
    deepEqual(via, ["graceful"], "kestrel powered off on the ACPI power button");
    deepEqual(await listTree(`${daemon.dir}/run/vms/demo`), [], "no sockets after stop");
    for (const dir of [...jail.cgroup.paths, jail.root]) {
      equal(await exists(dir), false, `${dir} is removed with the VMM`);
    }

    const started = await daemon.volar("vms", "start", "demo", "--json");
    equal(started.code, 0, started.stderr);
    const again = VmRecord.parse(JSON.parse(started.stdout));
    equal(again.state, "running");
    ok(again.pid !== null && again.pid !== vm.pid);

    const restarted = await daemon.volar("vms", "restart", "demo", "--json");
    equal(restarted.code, 0, restarted.stderr);
    const third = VmRecord.parse(JSON.parse(restarted.stdout));
    equal(third.state, "running");
    notEqual(third.pid, again.pid);
    equal(await pidAlive(again.pid!), false);

    const deleted = await daemon.volar("vms", "delete", "demo");
    equal(deleted.code, 0, deleted.stderr);
    const gone = await daemon.volar("vms", "get", "demo");
    equal(gone.code, 1);
    match(gone.stderr, /demo/);
    match(gone.stderr, /does not exist/);
    deepEqual(await processesMentioning(`${daemon.dir}/run/vms`), [], "no VMM process remains");
    deepEqual(await listTree(`${daemon.dir}/run/vms`), [], "no runtime files remain");
    deepEqual(await listTree(`${daemon.dir}/log/vms`), [], "no VM logs remain");
    deepEqual(await listTree(`${daemon.dir}/run/jails`), [], "no jail dir remains");
    const last = third.jail!;
    for (const dir of last.cgroup.paths) equal(await exists(dir), false, `${dir} is removed`);
    const empty = VmList.parse((await daemon.api("/api/v1/vms")).body);
    deepEqual(empty.vms, []);
  } finally {
    await daemon?.dispose();
  }
});
