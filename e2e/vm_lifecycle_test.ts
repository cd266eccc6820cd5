/**
 * The walking skeleton end to end: `volar` → volantd → QEMU (TCG here, KVM where usable) →
 * kestrel as PID 1 → ready → stop (power button) → start → restart → delete, and nothing left.
 */
import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { ReadyReport, VmList, VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, listTree, pidAlive, processesMentioning, startDaemon } from "./harness.ts";

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

Deno.test("volar drives a real microVM: create → running → stop → start → restart → delete", async () => {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon();
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
    deepEqual(VmRecord.parse(JSON.parse(got.stdout)).name, "demo");

    const stopped = await daemon.volar("vms", "stop", "demo", "--json");
    equal(stopped.code, 0, stopped.stderr);
    equal(VmRecord.parse(JSON.parse(stopped.stdout)).state, "stopped");
    equal(await pidAlive(vm.pid), false, "the VMM is gone after stop");
    const via = vmLogLines(daemon.logs(), "vmm stopped", "demo").map((l) => l.via);
    deepEqual(via, ["graceful"], "kestrel powered off on the ACPI power button");
    deepEqual(await listTree(`${daemon.dir}/run/vms/demo`), [], "no sockets after stop");

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
    const empty = VmList.parse((await daemon.api("/api/v1/vms")).body);
    deepEqual(empty.vms, []);
  } finally {
    await daemon?.dispose();
  }
});
