/**
 * Networking end to end: static leases on the bridge in the daemon's namespace, kestrel's
 * /healthz reached from the namespace, VM-to-VM traffic, `--publish` from outside the
 * namespace (a client namespace on a veth) and from the namespace itself, and cleanup on delete.
 */
import { wgetInNetns } from "../net/testing.ts";
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { AgentHealth, ErrorBody, NetCheckResult, VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, ip, startDaemon } from "./harness.ts";

function wget(ns: string, url: string, postData?: string): Promise<string> {
  return wgetInNetns(ns, url, postData === undefined ? {} : { postData });
}

async function create(daemon: E2eDaemon, ...args: string[]): Promise<VmRecord> {
  const r = await daemon.volar("vms", "create", ...args, "--json");
  equal(r.code, 0, r.stderr);
  return VmRecord.parse(JSON.parse(r.stdout));
}

async function links(ns: string): Promise<string[]> {
  return (JSON.parse(await ip("-n", ns, "-j", "link")) as Array<{ ifname: string }>)
    .map((l) => l.ifname);
}

Deno.test("VMs get static IPs on the bridge, reach each other, and publish ports", async () => {
  let daemon: E2eDaemon | undefined;
  const client = `volant-e2e-client-${crypto.randomUUID().slice(0, 6)}`;
  try {
    daemon = await startDaemon();
    const a = await create(daemon, "net-a");
    equal(a.ip, "192.168.127.2", "the lowest free address of the pool");
    match(a.mac ?? "", /^02(:[0-9a-f]{2}){5}$/);
    equal(a.tap, "vt-net-a");
    const b = await create(daemon, "net-b", "--ip", "192.168.127.50", "--publish", "8080:8080");
    equal(b.ip, "192.168.127.50");
    deepEqual(b.ports, [{ host_port: 8080, guest_port: 8080, protocol: "tcp" }]);

    const got = await daemon.volar("vms", "get", "net-b");
    match(got.stdout, /192\.168\.127\.50/);
    match(got.stdout, /8080/);

    // kestrel answers on the VM's address from the daemon's namespace.
    const health = AgentHealth.parse(
      JSON.parse(await wget(daemon.ns, `http://${a.ip}:8080/healthz`)),
    );
    equal(health.name, "net-a");
    equal(health.ip, a.ip);
    equal(health.mac, a.mac);
    const tapInfo = JSON.parse(await ip("-n", daemon.ns, "-j", "-d", "link", "show", "vt-net-a"));
    equal(tapInfo[0].master, "vbr0", "the tap is on the bridge");

    // VM to VM: net-a fetches net-b's /healthz from inside the guest.
    const check = NetCheckResult.parse(JSON.parse(
      await wget(
        daemon.ns,
        `http://${a.ip}:8080/v1/net/check`,
        JSON.stringify({ url: `http://${b.ip}:8080/healthz` }),
      ),
    ));
    ok(check.ok, JSON.stringify(check));
    equal(AgentHealth.parse(JSON.parse(check.body!)).name, "net-b");

    // --publish: from a client namespace on a veth, and from the namespace itself.
    await ip("netns", "add", client);
    await ip(
      "-n",
      daemon.ns,
      "link",
      "add",
      "vclient0",
      "type",
      "veth",
      "peer",
      "name",
      "vclient1",
    );
    await ip("-n", daemon.ns, "link", "set", "vclient1", "netns", client);
    await ip("-n", daemon.ns, "addr", "add", "10.251.0.1/30", "dev", "vclient0");
    await ip("-n", daemon.ns, "link", "set", "vclient0", "up");
    await ip("-n", client, "addr", "add", "10.251.0.2/30", "dev", "vclient1");
    await ip("-n", client, "link", "set", "vclient1", "up");
    await ip("-n", client, "link", "set", "lo", "up");
    const viaClient = AgentHealth.parse(
      JSON.parse(await wget(client, "http://10.251.0.1:8080/healthz")),
    );
    equal(viaClient.name, "net-b", "the client reached net-b through the published port");
    const viaHost = AgentHealth.parse(
      JSON.parse(await wget(daemon.ns, "http://10.251.0.1:8080/healthz")),
    );
    equal(viaHost.name, "net-b", "the host reached net-b through its own address");

    // Bad input: taken address, address outside the pool, port already published.
    const taken = await daemon.api("/api/v1/vms", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "net-c", ip: "192.168.127.50" }),
    });
    equal(ErrorBody.parse(taken.body).code, "ip_unavailable");
    const outside = await daemon.volar("vms", "create", "net-c", "--ip", "10.9.9.9");
    equal(outside.code, 1);
    match(outside.stderr, /10\.9\.9\.9/);
    const port = await daemon.volar("vms", "create", "net-c", "--publish", "8080:80");
    equal(port.code, 1);
    match(port.stderr, /8080/);
    equal((await daemon.api("/api/v1/vms/net-c")).status, 404, "no row left by refused creates");
    ok(!(await links(daemon.ns)).includes("vt-net-c"), "no tap left by refused creates");

    // Delete removes the tap, the lease and the forward.
    equal((await daemon.volar("vms", "delete", "net-b")).code, 0);
    ok(!(await links(daemon.ns)).includes("vt-net-b"), "tap removed");
    await wget(client, "http://10.251.0.1:8080/healthz").then(
      () => {
        throw new Error("the published port still answers after delete");
      },
      () => {},
    );
    const reuse = await daemon.api("/api/v1/vms", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: "net-d",
        ip: "192.168.127.50",
        publish: [{ host_port: 8080, guest_port: 8080 }],
      }),
    });
    equal(
      reuse.status,
      201,
      `the lease and the port are free again: ${JSON.stringify(reuse.body)}`,
    );
    equal((await daemon.volar("vms", "delete", "net-d")).code, 0);
    equal((await daemon.volar("vms", "delete", "net-a")).code, 0);
    deepEqual((await links(daemon.ns)).filter((l) => l.startsWith("vt-")), []);
  } finally {
    await ip("netns", "del", client).catch(() => {});
    await daemon?.dispose();
  }
});
