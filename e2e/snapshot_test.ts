/**
 * Snapshot and restore a running microVM end to end (issue 18, first slice): a kestrel appliance
 * keeps a marker in its RAM-backed root; `volar vms snapshot` saves the whole VM while it keeps
 * running; the marker changes; `volar vms restore --force` puts the VM back — the old marker is
 * there again, same address, kestrel reseeded and given the clock and a new secret through the
 * control port before the NIC is connected (its console says so). Refusals: a running VM
 * without --force, a corrupted snapshot (checked before any VMM starts; the VM is untouched), a
 * stopped VM's snapshot.
 */
import { equal, match, ok } from "node:assert/strict";
import { wgetInNetns } from "../net/testing.ts";
import { SnapshotList, SnapshotRecord, VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, startDaemon, volarOk } from "./harness.ts";
import { cgiScript, installHttpd } from "./httpd_appliance.ts";

const SET = cgiScript(`echo "$QUERY_STRING" >/www/marker.txt\necho set`);

async function marker(daemon: E2eDaemon, ip: string): Promise<string> {
  return (await wgetInNetns(daemon.ns, `http://${ip}/marker.txt`)).trim();
}

async function setMarker(daemon: E2eDaemon, ip: string, value: string): Promise<void> {
  equal((await wgetInNetns(daemon.ns, `http://${ip}/cgi-bin/set?${value}`)).trim(), "set");
}

Deno.test("a running VM is snapshotted, changed, and restored to that moment", async () => {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon();
    await installHttpd(daemon, "snap", { index: "ok\n", cgi: { set: SET } });
    const vm = VmRecord.parse(JSON.parse(
      await volarOk(daemon, "vms", "create", "box", "--plugin", "snap", "--json"),
    ));
    const ip = vm.ip!;
    await setMarker(daemon, ip, "before");

    const snap = SnapshotRecord.parse(JSON.parse(
      await volarOk(daemon, "vms", "snapshot", "box", "--name", "s1", "--json"),
    ));
    equal(snap.vm, "box");
    equal(snap.hypervisor, "qemu");
    ok(snap.files.some((f) => f.path === "state/qemu-state.bin"), JSON.stringify(snap.files));
    ok(snap.bytes > 1_000_000, `${snap.bytes} bytes`);
    console.log(
      `snapshot of a ${snap.memory_mb} MiB guest: ${(snap.bytes / 2 ** 20).toFixed(1)} MiB, ` +
        `paused ${snap.save_ms} ms`,
    );
    // It kept running, and still serves.
    equal(VmRecord.parse((await daemon.api("/api/v1/vms/box")).body).state, "running");
    equal(await marker(daemon, ip), "before");
    const stateDir = `${daemon.dir}/state/snapshots/s1`;
    equal((await Deno.stat(stateDir)).mode! & 0o777, 0o700);
    equal((await Deno.stat(`${stateDir}/snapshot.json`)).mode! & 0o777, 0o600);
    const listed = SnapshotList.parse(
      JSON.parse(await volarOk(daemon, "snapshots", "list", "--json")),
    );
    equal(listed.snapshots.map((s) => s.name).join(), "s1");
    ok(!JSON.stringify(listed).includes("secret"), "the API never shows kestrel's secret");

    await setMarker(daemon, ip, "after");
    equal(await marker(daemon, ip), "after");

    // A running VM is replaced only when asked.
    const refused = await daemon.volar("vms", "restore", "box", "--from", "s1");
    ok(refused.code !== 0);
    match(refused.stderr, /box is running: restoring replaces its state; pass force/);
    equal(await marker(daemon, ip), "after");

    await volarOk(daemon, "vms", "restore", "box", "--from", "s1", "--force");
    const back = await daemon.api("/api/v1/vms/box/wait?state=running&timeout_ms=120000");
    equal(back.status, 200, JSON.stringify(back.body));
    const restored = VmRecord.parse(back.body);
    equal(restored.ip, ip, "same address");
    equal(await marker(daemon, ip), "before", "the guest is back at the snapshot");
    const serial = await Deno.readTextFile(`${daemon.dir}/log/vms/box/serial.log`);
    equal(serial.split("KESTREL_READY").length - 1, 1, "the restored guest did not boot again");
    match(serial, /new identity \(generation \d+\): box 192\.168\.\d+\.\d+\/\d+/, "reseeded");

    // A corrupted snapshot is refused before anything changes.
    await volarOk(daemon, "vms", "snapshot", "box", "--name", "s2");
    const state = `${daemon.dir}/state/snapshots/s2/state/qemu-state.bin`;
    const bytes = await Deno.readFile(state);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    await Deno.writeFile(state, bytes);
    const corrupt = await daemon.volar("vms", "restore", "box", "--from", "s2", "--force");
    ok(corrupt.code !== 0);
    match(corrupt.stderr, /snapshot s2: state\/qemu-state\.bin does not match its checksum/);
    equal(VmRecord.parse((await daemon.api("/api/v1/vms/box")).body).state, "running");
    equal(await marker(daemon, ip), "before");

    // Only a running VM can be snapshotted.
    await volarOk(daemon, "vms", "stop", "box");
    const stopped = await daemon.volar("vms", "snapshot", "box", "--name", "s3");
    ok(stopped.code !== 0);
    match(stopped.stderr, /box is stopped: only a running VM can be snapshotted/);
    ok(!(await Deno.stat(`${daemon.dir}/state/snapshots/s3`).then(() => true, () => false)));
    ok(
      !(await Array.fromAsync(Deno.readDir(`${daemon.dir}/state/snapshots`)))
        .some((e) => e.name.startsWith(".partial")),
      "nothing partial left",
    );

    await volarOk(daemon, "snapshots", "rm", "s1");
    await volarOk(daemon, "snapshots", "rm", "s2");
    const empty = await volarOk(daemon, "snapshots", "list");
    match(empty, /No snapshots yet/);
    await volarOk(daemon, "vms", "delete", "box");
  } finally {
    await daemon?.dispose();
  }
});
