/**
 * The invariant checker itself: clean on an empty daemon layout, and it names every kind of
 * leftover planted by hand (no daemon runs here), in a namespace of the test's own.
 */
import { deepEqual, ok } from "node:assert/strict";
import { openStore } from "../daemon/store/mod.ts";
import { newVm } from "../daemon/store/testing.ts";
import { setEndpointPolicies, setPortForwards } from "../net/mod.ts";
import { ip, kernelTest, withTestNamespace } from "../net/testing.ts";
import { findOrphans } from "./invariants.ts";

const HEX = "ab".repeat(32);

kernelTest(
  "findOrphans: clean when nothing is left, and names every planted leftover",
  async () => {
    await withTestNamespace(async (ns) => {
      const dir = await Deno.makeTempDir({ prefix: "volant-invariants-" });
      let sleeper: Deno.ChildProcess | undefined;
      try {
        const d = {
          stateDir: `${dir}/state`,
          runtimeDir: `${dir}/run`,
          logDir: `${dir}/log`,
          netns: ns,
        };
        for (const p of [d.stateDir, `${d.runtimeDir}/vms`, `${d.logDir}/vms`]) {
          await Deno.mkdir(p, { recursive: true });
        }
        ip("-n", ns, "link", "add", "vbr0", "type", "bridge");
        ip("-n", ns, "addr", "add", "192.168.127.1/24", "dev", "vbr0");
        ip("-n", ns, "link", "set", "vbr0", "up");
        openStore(`${d.stateDir}/volant.db`).close();
        deepEqual(await findOrphans(d), [], "an empty daemon leaves nothing");

        // Rows that lie, and a lease.
        const store = openStore(`${d.stateDir}/volant.db`);
        try {
          const handle = {
            driver: "qemu",
            pid: 4_194_304, // pid_max at most: never a process
            startTime: 1,
            apiSocket: `${d.runtimeDir}/vms/gone/qmp.sock`,
            runtimeDir: `${d.runtimeDir}/vms/gone`,
            vmmLog: `${d.logDir}/vms/gone/vmm.log`,
          };
          store.vms.insert(newVm("gone", { state: "running", handle, tap: "vt-gone" }));
          store.vms.insert(newVm("half"));
          const held = store.vms.insert(newVm("held", { state: "stopped", tap: "vt-held" }));
          store.leases.add(held.id, "192.168.127.5");
        } finally {
          store.close();
        }
        // Files: a socket of a VM that does not run, dirs of VMs that do not exist, a jail,
        // temp files and unused blobs.
        await Deno.mkdir(`${d.runtimeDir}/vms/held`);
        await Deno.writeTextFile(`${d.runtimeDir}/vms/held/qmp.sock`, "");
        await Deno.mkdir(`${d.logDir}/vms/nobody`);
        await Deno.mkdir(`${d.runtimeDir}/jails/held`, { recursive: true });
        for (
          const p of [
            "images/tmp/unpack-1",
            "images/blobs/sha256",
            "artifacts/tmp",
            "artifacts/sha256",
          ]
        ) {
          await Deno.mkdir(`${d.stateDir}/${p}`, { recursive: true });
        }
        await Deno.writeTextFile(`${d.stateDir}/images/blobs/sha256/${HEX}`, "");
        await Deno.writeTextFile(`${d.stateDir}/artifacts/tmp/x.part`, "");
        await Deno.writeTextFile(`${d.stateDir}/artifacts/sha256/${HEX}`, "");
        // Network: a tap, a port forward and policy rules no VM owns.
        ip("-n", ns, "tuntap", "add", "vt-ghost", "mode", "tap");
        await setPortForwards(
          [{
            hostPort: 8080,
            guestIp: "192.168.127.9",
            guestPort: 80,
            protocol: "tcp",
            owner: "nobody",
          }],
          { bridge: "vbr0", subnet: "192.168.127.0/24", netns: ns },
        );
        await setEndpointPolicies([{
          owner: "ghost",
          link: "vt-ghost",
          mac: "02:00:00:00:00:07",
          address: "192.168.127.7",
          egress: "allow-internet",
          allowEgress: [],
          allowFrom: ["192.168.127.8"],
          closedPorts: [{ port: 12751, protocol: "tcp" }],
          hostPorts: [],
        }], { bridge: "vbr0", subnet: "192.168.127.0/24", gateway: "192.168.127.1", netns: ns });
        // A process naming the daemon's dirs.
        sleeper = new Deno.Command("sh", {
          args: ["-c", "sleep 60", `${d.runtimeDir}/vms/held/vmm`],
          stdout: "null",
          stderr: "null",
        }).spawn();

        const found = await findOrphans(d);
        const expected = [
          /VM gone \(running\): its VMM \(pid 4194304\) is gone/,
          /VM half \(pending\): a transient state at rest/,
          /VM held \(stopped\): still records tap vt-held/,
          /vms\/held\/qmp\.sock: VM held is stopped/,
          /log\/vms\/nobody: VM nobody does not exist/,
          /jail .*jails\/held: VM held is stopped/,
          /images\/tmp\/unpack-1: a temp tree/,
          new RegExp(`images/blobs/sha256/${HEX}: no image uses it`),
          /artifacts\/tmp\/x\.part: a temp file/,
          new RegExp(`artifacts/sha256/${HEX}: no plugin uses it`),
          /tap vt-ghost: no VM that runs owns it/,
          /port forward 8080\/tcp .*VM nobody does not exist/,
          /policy endpoint vt-ghost \(ghost/,
          /policy rules name 192\.168\.127\.7 /,
          /policy rules name 192\.168\.127\.8 /,
          new RegExp(`process ${sleeper.pid} .* is no VM's VMM`),
        ];
        for (const re of expected) {
          ok(found.some((l) => re.test(l)), `${re} in:\n${found.join("\n")}`);
        }
      } finally {
        if (sleeper) {
          Deno.kill(sleeper.pid, "SIGKILL");
          await sleeper.status;
        }
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
