/**
 * VMs outlive volantd: a restarted daemon re-adopts live VMMs, and a VMM killed with -9 (while
 * the daemon runs, or while it is down) turns its VM `crashed` with its resources freed.
 */
import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { VmRecord } from "../schema/mod.ts";
import { FAULT_ENV } from "../daemon/fault.ts";
import { type E2eDaemon, listTree, pidAlive, processesMentioning, startDaemon } from "./harness.ts";

function record(body: unknown): VmRecord {
  return VmRecord.parse(body);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("a VM keeps running across a daemon restart and is re-adopted; kill -9 → crashed", async () => {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon();
    const created = await daemon.volar("vms", "create", "keep", "--json");
    equal(created.code, 0, created.stderr);
    const vm = record(JSON.parse(created.stdout));
    equal(vm.state, "running");
    const pid = vm.pid!;

    equal(await daemon.stop(), 0, "volantd exits cleanly on SIGTERM");
    ok(await pidAlive(pid), "the VMM survives the daemon");
    await daemon.start();
    const adopted = record((await daemon.api("/api/v1/vms/keep")).body);
    equal(adopted.state, "running");
    equal(adopted.pid, pid, "the same VMM is re-adopted");
    ok(daemon.logs().some((l) => l.includes('"vm adopted"') && l.includes('"keep"')));
    // Still in its jail, and the record still says which.
    deepEqual(adopted.jail, vm.jail);
    ok(vm.jail, "the VMM runs jailed");
    for (const path of vm.jail.cgroup.paths) {
      ok((await Deno.readTextFile(`${path}/cgroup.procs`)).split("\n").includes(String(pid)));
    }

    // kill -9 while the daemon watches: crashed, handle released.
    Deno.kill(pid, "SIGKILL");
    const crashed = await daemon.api("/api/v1/vms/keep/wait?state=crashed&timeout_ms=30000");
    equal(crashed.status, 200, JSON.stringify(crashed.body));
    const dead = record(crashed.body);
    equal(dead.state, "crashed");
    equal(dead.pid, null);
    match(dead.last_error ?? "", /exited unexpectedly/);
    equal((await listTree(`${daemon.dir}/run/vms/keep`)).length, 0, "sockets removed");
    for (const path of [...vm.jail.cgroup.paths, vm.jail.root]) {
      equal(await exists(path), false, `${path} removed with the crashed VMM`);
    }

    // kill -9 while the daemon is down: the next start finds it dead.
    const restarted = await daemon.volar("vms", "start", "keep", "--json");
    equal(restarted.code, 0, restarted.stderr);
    const second = record(JSON.parse(restarted.stdout));
    equal(second.state, "running");
    equal(await daemon.stop(), 0);
    Deno.kill(second.pid!, "SIGKILL");
    for (let i = 0; i < 50 && await pidAlive(second.pid!); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await daemon.start();
    const found = record((await daemon.api("/api/v1/vms/keep")).body);
    equal(found.state, "crashed");
    equal(found.pid, null);
    match(found.last_error ?? "", /exited while volantd was not running/);
    for (const path of [...second.jail!.cgroup.paths, second.jail!.root]) {
      equal(await exists(path), false, `${path} of the VMM that died meanwhile is cleaned up`);
    }

    const deleted = await daemon.volar("vms", "delete", "keep");
    equal(deleted.code, 0, deleted.stderr);
  } finally {
    await daemon?.dispose();
  }
});

Deno.test("volantd killed between spawning a VMM and its API answering: the restart ends it", async () => {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon();
    await daemon.stop();
    // This daemon SIGKILLs itself as soon as the VMM's pid is recorded.
    await daemon.start({ [FAULT_ENV]: "vmm_spawned" });
    const created = await daemon.volar("vms", "create", "orphan", "--no-wait");
    notEqual(created.code, 0, "the daemon died under the request");
    equal(await daemon.stop(), 137, "volantd was killed by its fault point");
    const orphans = await processesMentioning(`${daemon.dir}/run/vms/orphan/`);
    equal(orphans.length, 1, "the VMM it spawned outlived it");
    const orphan = orphans[0]!;

    await daemon.start();
    ok(
      daemon.logs().some((l) => l.includes('"reconciled"') && l.includes("orphan")),
      daemon.logs().join("\n"),
    );
    for (let i = 0; i < 50 && await pidAlive(orphan); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    equal(await pidAlive(orphan), false, "the restarted daemon ended the VMM it had recorded");
    const vm = record((await daemon.api("/api/v1/vms/orphan")).body);
    equal(vm.state, "crashed");
    equal(vm.pid, null);
    match(vm.last_error ?? "", /being created/);
    deepEqual(await listTree(`${daemon.dir}/run/jails`), [], "its jail dir went with it");

    // And the VM starts normally (its cgroup, uid and tap are free again).
    const started = await daemon.volar("vms", "start", "orphan", "--json");
    equal(started.code, 0, started.stderr);
    equal(record(JSON.parse(started.stdout)).state, "running");
    equal((await daemon.volar("vms", "delete", "orphan")).code, 0);
  } finally {
    await daemon?.dispose();
  }
});
