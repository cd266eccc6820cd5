/**
 * VMs outlive volantd: a restarted daemon re-adopts live VMMs, and a VMM killed with -9 (while
 * the daemon runs, or while it is down) turns its VM `crashed` with its resources freed.
 */
import { equal, match, ok } from "node:assert/strict";
import { VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, listTree, pidAlive, startDaemon } from "./harness.ts";

function record(body: unknown): VmRecord {
  return VmRecord.parse(body);
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

    // kill -9 while the daemon watches: crashed, handle released.
    Deno.kill(pid, "SIGKILL");
    const crashed = await daemon.api("/api/v1/vms/keep/wait?state=crashed&timeout_ms=30000");
    equal(crashed.status, 200, JSON.stringify(crashed.body));
    const dead = record(crashed.body);
    equal(dead.state, "crashed");
    equal(dead.pid, null);
    match(dead.last_error ?? "", /exited unexpectedly/);
    equal((await listTree(`${daemon.dir}/run/vms/keep`)).length, 0, "sockets removed");

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

    const deleted = await daemon.volar("vms", "delete", "keep");
    equal(deleted.code, 0, deleted.stderr);
  } finally {
    await daemon?.dispose();
  }
});
