/**
 * Clones end to end (issue 18): a kestrel appliance is snapshotted and resumed as new VMs.
 * Each clone comes back with its parent's memory (a marker the parent wrote is there) but its
 * own address, MAC, hostname and kestrel secret, applied by kestrel over the guest control port
 * while the clone's NIC was still disconnected — so the parent's address is never claimed twice
 * (the namespace's neighbour entry for it keeps the parent's MAC). Two clones resumed from the
 * same snapshot read different random bytes (the host's entropy reseeded each). Writes in a
 * clone never show in the parent. `volar vms clone` does snapshot + resume + cleanup in one.
 * At most two VMs run at once (TCG).
 */
import { equal, match, notEqual, ok } from "node:assert/strict";
import { wgetInNetns } from "../net/testing.ts";
import { SnapshotList, VmCloneResult, VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, startDaemon, volarOk } from "./harness.ts";
import { cgiScript, installHttpd } from "./httpd_appliance.ts";
import { buildTestImage } from "./registry.ts";

const CGI = {
  set: `echo "$QUERY_STRING" >/www/marker.txt\necho set`,
  hostname: `/bin/busybox hostname`,
  rand:
    `/bin/busybox head -c 16 /dev/urandom | /bin/busybox od -An -tx1 | /bin/busybox tr -d ' \\n'`,
};

async function cgi(daemon: E2eDaemon, ip: string, name: string, query = ""): Promise<string> {
  return (await wgetInNetns(daemon.ns, `http://${ip}/cgi-bin/${name}${query}`)).trim();
}

async function marker(daemon: E2eDaemon, ip: string): Promise<string> {
  return (await wgetInNetns(daemon.ns, `http://${ip}/marker.txt`)).trim();
}

/** The MAC the daemon's namespace has learnt for `ip` (its neighbour table). */
async function neighbourMac(daemon: E2eDaemon, ip: string): Promise<string> {
  const out = await new Deno.Command("ip", { args: ["-n", daemon.ns, "neigh", "show", ip] })
    .output();
  return /lladdr ([0-9a-f:]{17})/.exec(new TextDecoder().decode(out.stdout))?.[1] ?? "";
}

Deno.test("a snapshot resumes as clones with their own address, hostname and randomness; the parent runs on as itself", async () => {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon();
    await installHttpd(daemon, "app", {
      index: "ok\n",
      cgi: Object.fromEntries(Object.entries(CGI).map(([k, v]) => [k, cgiScript(v)])),
    });
    const parent = VmRecord.parse(JSON.parse(
      await volarOk(daemon, "vms", "create", "box", "--plugin", "app", "--json"),
    ));
    const pip = parent.ip!;
    equal(await cgi(daemon, pip, "set", "?parent"), "set");
    equal(await cgi(daemon, pip, "hostname"), "box");
    await volarOk(daemon, "vms", "snapshot", "box", "--name", "s1");

    // A clone: the parent's memory, its own identity.
    const began = performance.now();
    const clone = VmRecord.parse(JSON.parse(
      await volarOk(daemon, "vms", "create", "box2", "--from-snapshot", "s1", "--json"),
    ));
    const cloneMs = Math.round(performance.now() - began);
    equal(clone.state, "running", "volar waited for kestrel at the new address");
    equal(clone.plugin, "app", "what it runs came from the snapshot");
    const cip = clone.ip!;
    notEqual(cip, pip);
    notEqual(clone.mac, parent.mac);
    const rand2 = await cgi(daemon, cip, "rand");
    match(rand2, /^[0-9a-f]{32}$/);
    equal(await cgi(daemon, cip, "hostname"), "box2", "its own hostname");
    equal(await marker(daemon, cip), "parent", "the parent's memory came along");
    console.log(`clone create → running: ${cloneMs} ms`);
    // Both run, each as itself; the parent's address still leads to the parent.
    equal(await cgi(daemon, pip, "hostname"), "box");
    equal(await neighbourMac(daemon, pip), parent.mac!.toLowerCase(), "no second claim on it");
    equal(await neighbourMac(daemon, cip), clone.mac!.toLowerCase());
    equal(await cgi(daemon, cip, "set", "?clone"), "set");
    equal(await marker(daemon, cip), "clone");
    equal(await marker(daemon, pip), "parent", "the clone's writes are its own");
    notEqual(await cgi(daemon, pip, "rand"), rand2);
    // The control channel's host end: a socket in the clone's runtime dir, which only root
    // may enter (root:root 0750 once the jailed QEMU is up).
    const runDir = await Deno.stat(`${daemon.dir}/run/vms/box2`);
    equal(runDir.uid, 0);
    equal(runDir.mode! & 0o007, 0, "others cannot enter the runtime dir");
    ok((await Deno.lstat(`${daemon.dir}/run/vms/box2/control.sock`)).isSocket);
    const console2 = await Deno.readTextFile(`${daemon.dir}/log/vms/box2/serial.log`);
    match(console2, /new identity \(generation \d+\): box2 /);
    ok(!console2.includes("KESTREL_READY"), "the clone did not boot");

    // A second clone of the same moment reads other random bytes than the first did.
    await volarOk(daemon, "vms", "delete", "box2");
    const third = VmRecord.parse(JSON.parse(
      await volarOk(daemon, "vms", "create", "box3", "--from-snapshot", "s1", "--json"),
    ));
    const rand3 = await cgi(daemon, third.ip!, "rand");
    match(rand3, /^[0-9a-f]{32}$/);
    notEqual(rand3, rand2, "each clone's RNG was reseeded with the host's entropy");
    equal(await cgi(daemon, third.ip!, "hostname"), "box3");
    await volarOk(daemon, "vms", "delete", "box3");

    // vms clone: snapshot, resume, and the snapshot removed.
    const forked = VmCloneResult.parse(JSON.parse(
      await volarOk(daemon, "vms", "clone", "box", "fork", "--json"),
    ));
    equal(forked.vms.map((v) => v.name).join(), "fork");
    const fork = await daemon.api("/api/v1/vms/fork/wait?state=running&timeout_ms=120000");
    equal(fork.status, 200, JSON.stringify(fork.body));
    const fip = VmRecord.parse(fork.body).ip!;
    equal(await cgi(daemon, fip, "hostname"), "fork");
    equal(await marker(daemon, fip), "parent");
    const snaps = SnapshotList.parse(
      JSON.parse(await volarOk(daemon, "snapshots", "list", "--json")),
    );
    equal(snaps.snapshots.map((s) => s.name).join(), "s1", "fork-base was removed");
    // kestrel's API answers the daemon with the clone's own secret (logs come through it).
    await volarOk(daemon, "vms", "logs", "fork");
    await volarOk(daemon, "vms", "delete", "fork");
    await volarOk(daemon, "vms", "delete", "box");
    await volarOk(daemon, "snapshots", "rm", "s1");
  } finally {
    await daemon?.dispose();
  }
});

// Writes its query to a file on the image VM's root (overlayfs, upper layer on the VM's own
// writable disk) and syncs it to the disk; answers with the file.
const DISK_CGI = `#!/bin/sh
echo "Content-Type: text/plain"
echo
if [ -n "$QUERY_STRING" ]; then echo "$QUERY_STRING" >/marker; /bin/busybox sync; fi
/bin/busybox cat /marker 2>/dev/null || echo none
`;

Deno.test("a clone of an image VM writes its own disk copy: its writes never reach the parent's disk", async () => {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon();
    const layout = await buildTestImage(`${daemon.dir}/image`, { disk: DISK_CGI });
    const parent = VmRecord.parse(JSON.parse(
      await volarOk(daemon, "vms", "create", "img", "--image", `oci:${layout}:1.0`, "--json"),
    ));
    const pip = parent.ip!;
    equal(await cgi(daemon, pip, "disk", "?parent"), "parent");
    const forked = VmCloneResult.parse(JSON.parse(
      await volarOk(daemon, "vms", "clone", "img", "img2", "--json"),
    ));
    const clone = VmRecord.parse(
      (await daemon.api("/api/v1/vms/img2/wait?state=running&timeout_ms=120000")).body,
    );
    equal(forked.vms[0]!.image, `oci:${layout}:1.0`);
    const cip = clone.ip!;
    equal(await cgi(daemon, cip, "disk"), "parent", "the clone starts from the parent's disk");
    equal(await cgi(daemon, cip, "disk", "?clone"), "clone");
    equal(await cgi(daemon, pip, "disk"), "parent");
    const disk = (vm: string) => `${daemon!.dir}/state/vms/${vm}/writable.ext4`;
    const [pd, cd] = [await Deno.stat(disk("img")), await Deno.stat(disk("img2"))];
    ok(pd.ino !== cd.ino, "two files, not one shared");
    // The parent's disk as the parent left it: a cold boot of the parent reads it back.
    await volarOk(daemon, "vms", "delete", "img2");
    await volarOk(daemon, "vms", "restart", "img");
    equal(await cgi(daemon, pip, "disk"), "parent", "the clone's synced write is not on it");
    await volarOk(daemon, "vms", "delete", "img");
  } finally {
    await daemon?.dispose();
  }
});
