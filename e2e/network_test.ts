/**
 * Networking end to end: static leases on the bridge in the daemon's namespace, kestrel's
 * /healthz reached from the namespace with the VM's secret (401 without), VM-to-VM traffic
 * (the network policy drops it: another VM's kestrel is out of reach; the policy itself is
 * tested in network_policy_test.ts), `--publish` (kestrel's port refused), and cleanup on
 * delete.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { AgentHealth, ErrorBody, NetCheckResult, VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, ip, startDaemon } from "./harness.ts";
import { KESTREL_PORT, kestrelGet, kestrelSecret } from "./kestrel.ts";

async function create(daemon: E2eDaemon, ...args: string[]): Promise<VmRecord> {
  const r = await daemon.volar("vms", "create", ...args, "--json");
  equal(r.code, 0, r.stderr);
  return VmRecord.parse(JSON.parse(r.stdout));
}

async function links(ns: string): Promise<string[]> {
  return (JSON.parse(await ip("-n", ns, "-j", "link")) as Array<{ ifname: string }>)
    .map((l) => l.ifname);
}

Deno.test("VMs get static IPs on the bridge, are kept apart, and publish ports", async () => {
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

    // kestrel answers on the VM's address from the daemon's namespace, with the VM's secret
    // only (anything else is a 401).
    const secretA = kestrelSecret(daemon, "net-a");
    const health = AgentHealth.parse(
      JSON.parse(await kestrelGet(daemon.ns, a.ip!, "/healthz", secretA)),
    );
    await kestrelGet(daemon.ns, a.ip!, "/healthz").then(
      () => {
        throw new Error("kestrel answered without its secret");
      },
      (err) => match(String(err), /401 Unauthorized/),
    );
    equal(health.name, "net-a");
    equal(health.ip, a.ip);
    equal(health.mac, a.mac);
    const tapInfo = JSON.parse(await ip("-n", daemon.ns, "-j", "-d", "link", "show", "vt-net-a"));
    equal(tapInfo[0].master, "vbr0", "the tap is on the bridge");

    // VM to VM: net-a asks net-b's kestrel from inside the guest. The network policy keeps it
    // from reaching net-b at all; were it let through, kestrel would refuse it (401: net-a has
    // no secret of net-b's). Never an answer.
    const check = NetCheckResult.parse(JSON.parse(
      await kestrelGet(
        daemon.ns,
        a.ip!,
        "/v1/net/check",
        secretA,
        JSON.stringify({ url: `http://${b.ip}:${KESTREL_PORT}/healthz` }),
      ),
    ));
    equal(check.status, null, `the network policy let net-a reach net-b: ${JSON.stringify(check)}`);
    match(check.error ?? "", /timed out/);

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
    // What answers through a published port must be a workload's: kestrel (the only listener of
    // a bare VM) moved off 8080 and its port cannot be published. A workload reached through
    // a published port from a client namespace, the host and another guest: see
    // network_policy_test.ts.
    const kestrelPort = await daemon.volar(
      "vms",
      "create",
      "net-c",
      "--publish",
      `8081:${KESTREL_PORT}`,
    );
    equal(kestrelPort.code, 1);
    match(kestrelPort.stderr, /publish\[0\]\.guest_port: 12751\/tcp is kestrel's API port/);

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
