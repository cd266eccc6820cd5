/**
 * Guest network policy end to end, with real VMs (the probe appliance: kestrel + busybox httpd
 * on port 80, driven through a CGI script) in the daemon's namespace; every target is a listener
 * of this test, in the daemon's namespace or in a second namespace of its own ("the internet",
 * on a veth, with a documentation address). Checks: by default a guest reaches neither another
 * guest (kestrel or workload), nor the host (the gateway's listener, 169.254.169.254), nor a
 * private network, only the internet; `--allow-from` opens a guest's workload ports (never
 * kestrel's) to a peer; egress allow-lists let through exactly what they name; a guest using
 * another's address or MAC gets nothing through; published ports reach the workload; the rules
 * go with the VMs.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { AGENT_PORT, VmRecord } from "../schema/mod.ts";
import { wgetInNetns } from "../net/testing.ts";
import { type E2eDaemon, ip, startDaemon, volarOk } from "./harness.ts";
import { guestReaches, guestSh, installProbePlugin } from "./probe_appliance.ts";

const GATEWAY = "192.168.127.1";

async function create(daemon: E2eDaemon, ...args: string[]): Promise<VmRecord> {
  const r = await daemon.volar("vms", "create", ...args, "--json");
  equal(r.code, 0, r.stderr);
  return VmRecord.parse(JSON.parse(r.stdout));
}

/** busybox httpd serving `dir` on `listen` in `ns`; its PID (killed by the test). */
function httpd(ns: string, listen: string, dir: string): number {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, "busybox", "httpd", "-f", "-p", listen, "-h", dir],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn().pid;
}

/** Counts TCP SYNs to `port` arriving in `ns` (a table of the test's own, in its namespace). */
async function synCounter(ns: string, port: number): Promise<() => Promise<number>> {
  const nft = (...args: string[]) => ip("netns", "exec", ns, "nft", ...args);
  await nft("add", "table", "ip", "probe");
  await nft("add chain ip probe count { type filter hook prerouting priority -500; }");
  await nft(`add rule ip probe count tcp dport ${port} tcp flags syn counter`);
  return async () => {
    const out = await nft("list", "chain", "ip", "probe", "count");
    return Number(/counter packets (\d+)/.exec(out)?.[1] ?? NaN);
  };
}

Deno.test("network policy: isolation by default, peers, egress lists, anti-spoofing", async () => {
  let daemon: E2eDaemon | undefined;
  const tag = crypto.randomUUID().slice(0, 6);
  const outside = `volant-e2e-out-${tag}`;
  const client = `volant-e2e-cl-${tag}`;
  const pids: number[] = [];
  const www = await Deno.makeTempDir({ prefix: "volant-e2e-www-" });
  try {
    await Deno.writeTextFile(`${www}/index.html`, "ok\n");
    daemon = await startDaemon();
    const ns = daemon.ns;
    await installProbePlugin(daemon);

    // The host's own listeners: on the gateway, and on 169.254.169.254 (a cloud's metadata).
    await ip("-n", ns, "addr", "add", "169.254.169.254/32", "dev", "lo");
    pids.push(httpd(ns, `${GATEWAY}:9000`, www), httpd(ns, "169.254.169.254:80", www));
    // "The internet": a documentation address (and a private one) in a namespace of ours.
    await ip("netns", "add", outside);
    await ip("-n", outside, "link", "set", "lo", "up");
    await ip("-n", ns, "link", "add", "vout0", "type", "veth", "peer", "name", "vout1");
    await ip("-n", ns, "link", "set", "vout1", "netns", outside);
    await ip("-n", ns, "addr", "add", "198.51.100.1/24", "dev", "vout0");
    await ip("-n", ns, "link", "set", "vout0", "up");
    for (const addr of ["198.51.100.2/24", "198.51.100.3/24", "10.77.0.2/24"]) {
      await ip("-n", outside, "addr", "add", addr, "dev", "vout1");
    }
    await ip("-n", outside, "link", "set", "vout1", "up");
    await ip("-n", ns, "route", "add", "10.77.0.0/24", "via", "198.51.100.2");
    for (const port of [8081, 8082, 8083]) pids.push(httpd(outside, String(port), www));

    const a = await create(daemon, "pol-a", "--plugin", "probe");
    const b = await create(daemon, "pol-b", "--plugin", "probe", "--publish", "8080:80");
    const B = b.ip!;
    const A = a.ip!;
    match(
      await volarOk(daemon, "vms", "get", "pol-a"),
      /^egress: +allow-internet$/m,
      "vms get shows the policy",
    );

    // Defaults: the internet only.
    deepEqual(
      await guestReaches(daemon, A, [
        `http://${B}/index.html`,
        `http://${B}:${AGENT_PORT}/healthz`,
        `http://${GATEWAY}:9000/index.html`,
        "http://169.254.169.254/index.html",
        "http://198.51.100.1:9000/index.html",
        "http://10.77.0.2:8081/index.html",
        "http://198.51.100.2:8081/index.html",
      ]),
      [
        `http://${B}/index.html no`,
        `http://${B}:${AGENT_PORT}/healthz no`,
        `http://${GATEWAY}:9000/index.html no`,
        "http://169.254.169.254/index.html no",
        "http://198.51.100.1:9000/index.html no",
        "http://10.77.0.2:8081/index.html no",
        "http://198.51.100.2:8081/index.html yes",
      ],
    );
    equal(
      (await wgetInNetns(ns, `http://${B}/index.html`)).trim(),
      "ok",
      "the host reaches a guest",
    );

    // b lets a in: its workload port, never kestrel's; a still does not let b in.
    match(
      await volarOk(daemon, "vms", "policy", "pol-b", "--allow-from", "pol-a"),
      /^allow from: +pol-a$/m,
    );
    deepEqual(
      await guestReaches(daemon, A, [`http://${B}/index.html`, `http://${B}:${AGENT_PORT}/`]),
      [`http://${B}/index.html yes`, `http://${B}:${AGENT_PORT}/ no`],
    );
    deepEqual(await guestReaches(daemon, B, [`http://${A}/index.html`]), [
      `http://${A}/index.html no`,
    ]);

    // Egress allow-list: exactly 198.51.100.2:8081.
    await volarOk(
      daemon,
      "vms",
      "policy",
      "pol-a",
      "--egress",
      "deny",
      "--allow-egress",
      "198.51.100.2:8081",
    );
    deepEqual(
      await guestReaches(daemon, A, [
        "http://198.51.100.2:8081/index.html",
        "http://198.51.100.2:8082/index.html",
        "http://198.51.100.3:8081/index.html",
        "http://10.77.0.2:8081/index.html",
      ]),
      [
        "http://198.51.100.2:8081/index.html yes",
        "http://198.51.100.2:8082/index.html no",
        "http://198.51.100.3:8081/index.html no",
        "http://10.77.0.2:8081/index.html no",
      ],
    );
    await volarOk(daemon, "vms", "policy", "pol-a", "--egress", "allow-internet");

    // Spoofing: a with b's address, then with b's MAC, gets no SYN to "the internet".
    const syns = await synCounter(outside, 8083);
    const url = "http://198.51.100.2:8083/index.html";
    const spoofIp = await guestSh(
      daemon,
      A,
      [
        `busybox ip addr add ${B}/32 dev eth0`,
        `busybox ip route add 198.51.100.2/32 via ${GATEWAY} src ${B}`,
        `busybox timeout 3 busybox wget -q -O /dev/null ${url} && echo through || echo blocked`,
        `busybox arping -U -c 2 -w 1 -I eth0 -s ${B} ${B} >/dev/null`,
        `busybox ip route del 198.51.100.2/32`,
        `busybox ip addr del ${B}/32 dev eth0`,
        `busybox ip neigh flush dev eth0`,
      ].join("\n"),
    );
    match(spoofIp, /blocked/);
    equal(await syns(), 0, "nothing from b's address came out of a");
    const neigh = await ip("-n", ns, "neigh", "show", B, "dev", "vbr0");
    ok(!neigh.includes(a.mac!), `the host did not take a's MAC for b's address: ${neigh}`);
    const spoofMac = await guestSh(
      daemon,
      A,
      [
        `busybox ip link set eth0 address ${b.mac}`,
        `busybox timeout 3 busybox wget -q -O /dev/null ${url} && echo through || echo blocked`,
        `busybox ip link set eth0 address ${a.mac}`,
        `busybox ip neigh flush dev eth0`,
      ].join("\n"),
    );
    match(spoofMac, /blocked/);
    equal(await syns(), 0, "nothing with b's MAC came out of a");
    deepEqual(await guestReaches(daemon, A, [url]), [`${url} yes`], "a as itself gets through");
    ok(await syns() > 0);

    // A published port is public: from a client namespace, from the host, and from a guest
    // through the host's address.
    await ip("netns", "add", client);
    await ip("-n", ns, "link", "add", "vcl0", "type", "veth", "peer", "name", "vcl1");
    await ip("-n", ns, "link", "set", "vcl1", "netns", client);
    await ip("-n", ns, "addr", "add", "10.251.0.1/30", "dev", "vcl0");
    await ip("-n", ns, "link", "set", "vcl0", "up");
    await ip("-n", client, "addr", "add", "10.251.0.2/30", "dev", "vcl1");
    await ip("-n", client, "link", "set", "vcl1", "up");
    equal((await wgetInNetns(client, "http://10.251.0.1:8080/index.html")).trim(), "ok");
    equal((await wgetInNetns(ns, "http://10.251.0.1:8080/index.html")).trim(), "ok");
    deepEqual(await guestReaches(daemon, A, ["http://10.251.0.1:8080/index.html"]), [
      "http://10.251.0.1:8080/index.html yes",
    ]);
    await wgetInNetns(client, `http://${B}/index.html`, { timeoutMs: 3000 }).then(
      () => {
        throw new Error("a routed connection reached b without a published port");
      },
      () => {},
    );

    // A stopped VM's policy is not changed (it is changed while the VM runs).
    await volarOk(daemon, "vms", "stop", "pol-a");
    const refused = await daemon.volar("vms", "policy", "pol-a", "--egress", "deny");
    equal(refused.code, 1);
    match(refused.stderr, /pol-a is stopped/);

    // The rules go with the VMs.
    const ruleset = () => ip("netns", "exec", ns, "nft", "list", "ruleset");
    ok(!(await ruleset()).includes('"vt-pol-a"'), "a stopped VM's tap has no rules");
    ok((await ruleset()).includes('"vt-pol-b"'));
    await volarOk(daemon, "vms", "delete", "pol-b");
    await volarOk(daemon, "vms", "delete", "pol-a");
    const after = await ruleset();
    ok(!/vt-pol-|pol-a|pol-b/.test(after), after);
    match(after, /table bridge volant_policy/, "the tables stay (taps without rules send nothing)");
  } finally {
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone.
      }
    }
    await ip("netns", "del", outside).catch(() => {});
    await ip("netns", "del", client).catch(() => {});
    await Deno.remove(www, { recursive: true }).catch(() => {});
    await daemon?.dispose();
  }
});
