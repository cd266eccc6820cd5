import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { ip, kernelTest, wgetInNetns, withTestNamespace } from "./testing.ts";
import { rootSnapshot } from "./root_guard.ts";
import {
  deleteEndpointPolicies,
  type EndpointPolicy,
  endpointPolicyScript,
  listEndpointPolicies,
  setEndpointPolicies,
} from "./nft_policy.ts";
import { getSysctl, setSysctl } from "./sysctl.ts";
import { ensureNat, setPortForwards } from "./nft.ts";

const ROOT_BEFORE = rootSnapshot();
const NET = { bridge: "vbr0", subnet: "10.66.0.0/24", gateway: "10.66.0.1", guardPrefix: "vt-" };
const CLOSED = [{ port: 12751, protocol: "tcp" as const }];

function endpoint(name: string, n: number, extra: Partial<EndpointPolicy> = {}): EndpointPolicy {
  return {
    owner: name,
    link: `vt-${name}`,
    mac: `02:00:00:00:00:0${n}`,
    address: `10.66.0.${n}`,
    egress: "allow-internet",
    allowEgress: [],
    allowFrom: [],
    closedPorts: CLOSED,
    hostPorts: [],
    ...extra,
  };
}

Deno.test("endpointPolicyScript: egress, peers, closed ports, host ports, guard", () => {
  const script = endpointPolicyScript([
    endpoint("b", 3, {
      egress: "deny",
      allowEgress: [
        { cidr: "198.51.100.0/24", protocol: "tcp", port: 443 },
        { cidr: "203.0.113.7/32", protocol: "udp" },
        { cidr: "192.0.2.0/24" },
      ],
      allowFrom: ["10.66.0.2", "10.66.0.2"],
      hostPorts: [{ port: 53, protocol: "udp" }, { port: 53, protocol: "tcp" }],
    }),
    endpoint("a", 2),
  ], NET);
  const lines = script.split("\n");
  const has = (line: string) => assert.ok(lines.includes(line), `missing: ${line}\n${script}`);
  // Sorted by link: a is ep_0, b is ep_1.
  has('add chain bridge volant_policy ep_0 { comment "a"; }');
  has('add element bridge volant_policy endpoints { "vt-a" : jump ep_0, "vt-b" : jump ep_1 }');
  has('add rule bridge volant_policy ep_1 ether saddr != 02:00:00:00:00:03 drop comment "b"');
  has("add rule bridge volant_policy ep_1 ether type arp arp saddr ip != 10.66.0.3 drop");
  has("add rule bridge volant_policy ep_1 ether type ip ip saddr != 10.66.0.3 drop");
  has(
    'add rule bridge volant_policy prerouting iifname "vt-*" drop comment ' +
      '"a guarded port without a policy"',
  );
  has("add rule bridge volant_policy forward iifname @links drop");
  has("add rule ip volant_policy out_1 ip daddr 198.51.100.0/24 tcp dport 443 accept");
  has("add rule ip volant_policy out_1 ip daddr 203.0.113.7/32 meta l4proto udp accept");
  has("add rule ip volant_policy out_1 ip daddr 192.0.2.0/24 accept");
  has("add rule ip volant_policy out_1 drop");
  has("add rule ip volant_policy out_0 ip daddr @not_internet drop");
  has("add rule ip volant_policy out_0 accept");
  has("add rule ip volant_policy in_1 ip saddr 10.66.0.2 tcp dport != 12751 accept");
  has("add rule ip volant_policy in_1 ip saddr 10.66.0.2 meta l4proto udp accept");
  has("add rule ip volant_policy in_0 drop");
  has("add rule ip volant_policy host_1 ip daddr 10.66.0.1 tcp dport 53 accept");
  has("add rule ip volant_policy host_1 ip daddr 10.66.0.1 udp dport 53 accept");
  assert.ok(!lines.some((l) => l.startsWith("add rule ip volant_policy in_0 ip saddr")));
  // The subnet is inside 10.0.0.0/8: not added to not_internet again; a public one is.
  assert.match(script, /not_internet \{ 0\.0\.0\.0\/8, 10\.0\.0\.0\/8, .*240\.0\.0\.0\/4 \}/);
  const pub = endpointPolicyScript([], {
    ...NET,
    subnet: "203.0.113.0/24",
    gateway: "203.0.113.1",
  });
  assert.match(pub, /240\.0\.0\.0\/4, 203\.0\.113\.0\/24 \}/);
  assert.doesNotMatch(pub, /jump/, "no endpoints: empty maps");
});

Deno.test("endpointPolicyScript refuses bad input naming the field", () => {
  const bad: [EndpointPolicy[], RegExp][] = [
    [[endpoint("a", 2), endpoint("b", 2)], /policies\[1\]\.address: "10\.66\.0\.2" is also/],
    [[endpoint("a", 2), { ...endpoint("b", 3), link: "vt-a" }], /policies\[1\]\.link/],
    [[{ ...endpoint("a", 2), address: "10.67.0.2" }], /policies\[0\]\.address/],
    [[{ ...endpoint("a", 2), address: "10.66.0.1" }], /policies\[0\]\.address/],
    [[{ ...endpoint("a", 2), mac: "03:00:00:00:00:01" }], /policies\[0\]\.mac/],
    [[{ ...endpoint("a", 2), owner: 'a"b' }], /policies\[0\]\.owner/],
    [[{ ...endpoint("a", 2), link: "vt a" }], /policies\[0\]\.link/],
    [
      [{ ...endpoint("a", 2), allowEgress: [{ cidr: "198.51.100.7/24" }] }],
      /policies\[0\]\.allowEgress\[0\]\.cidr: .*host bits set \(did you mean 198\.51\.100\.0\/24/,
    ],
    [
      [{ ...endpoint("a", 2), allowEgress: [{ cidr: "198.51.100.0/24", port: 80 }] }],
      /policies\[0\]\.allowEgress\[0\]\.port: 80 needs a protocol/,
    ],
    [
      [{ ...endpoint("a", 2), hostPorts: [{ port: 0, protocol: "tcp" }] }],
      /policies\[0\]\.hostPorts\[0\]\.port: 0 is not a port/,
    ],
    [[{ ...endpoint("a", 2), allowFrom: ["10.66.0.300"] }], /policies\[0\]\.allowFrom\[0\]/],
  ];
  for (const [policies, message] of bad) {
    assert.throws(() => endpointPolicyScript(policies, NET), (err: unknown) => {
      assert.ok(err instanceof VolantError);
      assert.equal(err.code, "invalid_argument");
      assert.match(err.message, message);
      return true;
    });
  }
  assert.throws(() => endpointPolicyScript([], { ...NET, gateway: "10.1.0.1" }), /gateway/);
});

/** A test network: the host namespace with the bridge, endpoint namespaces, an "outside". */
interface Lab {
  host: string;
  ns(name: string): string;
  pids: number[];
}

function spawn(ns: string, args: string[]): number {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return child.pid;
}

/** busybox httpd serving `dir` on `addr:port` in `ns`; its PID. */
function httpd(lab: Lab, ns: string, listen: string, dir: string): number {
  const pid = spawn(ns, ["busybox", "httpd", "-f", "-p", listen, "-h", dir]);
  lab.pids.push(pid);
  return pid;
}

/** Endpoint namespace `name` on a veth whose host end `vt-<name>` is a port of the bridge. */
function addEndpoint(lab: Lab, name: string, n: number): void {
  const ns = lab.ns(name);
  ip("netns", "add", ns);
  ip("-n", ns, "link", "set", "lo", "up");
  ip(
    "-n",
    lab.host,
    "link",
    "add",
    `vt-${name}`,
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    ns,
  );
  ip("-n", lab.host, "link", "set", `vt-${name}`, "master", "vbr0", "up");
  ip("-n", ns, "link", "set", "eth0", "address", `02:00:00:00:00:0${n}`, "up");
  ip("-n", ns, "addr", "add", `10.66.0.${n}/24`, "dev", "eth0");
  ip("-n", ns, "route", "add", "default", "via", "10.66.0.1");
}

async function withLab(fn: (lab: Lab) => Promise<void>): Promise<void> {
  await withTestNamespace(async (host) => {
    const tag = host.slice("volant-t-".length);
    const names = new Set<string>();
    const lab: Lab = {
      host,
      ns: (name) => {
        names.add(name);
        return `volant-t-${tag}-${name}`;
      },
      pids: [],
    };
    const dir = await Deno.makeTempDir({ prefix: "volant-policy-" });
    try {
      await Deno.writeTextFile(`${dir}/index.html`, "ok\n");
      ip("-n", host, "link", "add", "vbr0", "type", "bridge");
      ip("-n", host, "addr", "add", "10.66.0.1/24", "dev", "vbr0");
      ip("-n", host, "link", "set", "vbr0", "up");
      ip("netns", "exec", host, "sysctl", "-qw", "net.ipv4.ip_forward=1");
      // The host's other addresses: a listener on 169.254.169.254 (as a cloud's metadata).
      ip("-n", host, "addr", "add", "169.254.169.254/32", "dev", "lo");
      // "The internet": a public-looking (documentation) address and a private one behind
      // the host, in a namespace of their own.
      const out = lab.ns("out");
      ip("netns", "add", out);
      ip("-n", out, "link", "set", "lo", "up");
      ip("-n", host, "link", "add", "vout0", "type", "veth", "peer", "name", "vout1", "netns", out);
      ip("-n", host, "addr", "add", "198.51.100.1/24", "dev", "vout0");
      ip("-n", host, "link", "set", "vout0", "up");
      ip("-n", out, "addr", "add", "198.51.100.2/24", "dev", "vout1");
      ip("-n", out, "addr", "add", "10.77.0.2/24", "dev", "vout1");
      ip("-n", out, "link", "set", "vout1", "up");
      ip("-n", out, "route", "add", "10.66.0.0/24", "via", "198.51.100.1");
      ip("-n", host, "route", "add", "10.77.0.0/24", "via", "198.51.100.2");
      addEndpoint(lab, "a", 2);
      addEndpoint(lab, "b", 3);
      addEndpoint(lab, "c", 4);
      for (const ns of [lab.ns("b"), lab.ns("a")]) {
        httpd(lab, ns, "80", dir);
        httpd(lab, ns, "12751", dir);
      }
      httpd(lab, host, "10.66.0.1:9000", dir);
      httpd(lab, host, "10.66.0.1:9001", dir);
      httpd(lab, host, "169.254.169.254:80", dir);
      httpd(lab, out, "8081", dir);
      httpd(lab, out, "8082", dir);
      await new Promise((r) => setTimeout(r, 300));
      await fn(lab);
    } finally {
      for (const pid of lab.pids) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // Gone.
        }
      }
      for (const name of names) {
        try {
          ip("netns", "del", lab.ns(name));
        } catch {
          // Never made.
        }
      }
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/** Whether an HTTP GET from `ns` to `url` answers within `ms`. */
async function reaches(ns: string, url: string, ms = 1500): Promise<boolean> {
  try {
    return (await wgetInNetns(ns, url, { timeoutMs: ms })).trim() === "ok";
  } catch {
    return false;
  }
}

/** Each [ns, url] → whether it answered, checked at the same time; `who` names the namespaces. */
async function matrix(lab: Lab, checks: [string, string][]): Promise<string[]> {
  const results = await Promise.all(checks.map(([ns, url]) => reaches(ns, url)));
  const who = (ns: string) => ns === lab.host ? "host" : ns.split("-").pop();
  return checks.map(([ns, url], i) => `${who(ns)} → ${url}: ${results[i] ? "yes" : "no"}`);
}

kernelTest("endpoint policies: isolation by default, peers, egress lists, host ports", async () => {
  await withLab(async (lab) => {
    const [a, b, c, host] = [lab.ns("a"), lab.ns("b"), lab.ns("c"), lab.host];
    const net = { ...NET, netns: host };
    // Without rules the bridge forwards everything.
    assert.equal(await reaches(a, "http://10.66.0.3/"), true, "open bridge before");

    await setEndpointPolicies([endpoint("a", 2), endpoint("b", 3)], net);
    // What they learned on the open bridge (each other's MACs) would take a while to expire.
    for (const ns of [a, b, c]) ip("-n", ns, "neigh", "flush", "all");
    assert.equal(getSysctl("net.ipv4.conf.vbr0.proxy_arp_pvlan", { netns: host }), "1");
    assert.deepEqual(await listEndpointPolicies({ netns: host }), [
      { owner: "a", link: "vt-a" },
      { owner: "b", link: "vt-b" },
    ]);
    assert.deepEqual(
      await matrix(lab, [
        [a, "http://10.66.0.3/"], // another endpoint's workload port
        [a, "http://10.66.0.3:12751/"], // its closed port
        [a, "http://10.66.0.1:9000/"], // a host service on the gateway
        [a, "http://169.254.169.254/"], // a host address that is link-local
        [a, "http://198.51.100.1:9000/"], // another host address
        [a, "http://198.51.100.2:8081/"], // the internet
        [a, "http://10.77.0.2:8081/"], // a private network behind the host
        [c, "http://10.66.0.1:9000/"], // a guarded port without a policy
        [host, "http://10.66.0.2/"], // the host to an endpoint
        [host, "http://10.66.0.3:12751/"],
      ]),
      [
        "a → http://10.66.0.3/: no",
        "a → http://10.66.0.3:12751/: no",
        "a → http://10.66.0.1:9000/: no",
        "a → http://169.254.169.254/: no",
        "a → http://198.51.100.1:9000/: no",
        "a → http://198.51.100.2:8081/: yes",
        "a → http://10.77.0.2:8081/: no",
        "c → http://10.66.0.1:9000/: no",
        "host → http://10.66.0.2/: yes",
        "host → http://10.66.0.3:12751/: yes",
      ],
    );

    // b lets a in (never on the closed port), lets a reach one host port, and allows only
    // 198.51.100.2:8081 out.
    await setEndpointPolicies([
      endpoint("a", 2, { hostPorts: [{ port: 9000, protocol: "tcp" }] }),
      endpoint("b", 3, {
        allowFrom: ["10.66.0.2"],
        egress: "deny",
        allowEgress: [{ cidr: "198.51.100.2/32", protocol: "tcp", port: 8081 }],
      }),
    ], net);
    assert.deepEqual(
      await matrix(lab, [
        [a, "http://10.66.0.3/"],
        [a, "http://10.66.0.3:12751/"],
        [b, "http://10.66.0.2/"],
        [a, "http://10.66.0.1:9000/"],
        [a, "http://10.66.0.1:9001/"],
        [b, "http://198.51.100.2:8081/"],
        [b, "http://198.51.100.2:8082/"],
        [b, "http://10.77.0.2:8081/"],
      ]),
      [
        "a → http://10.66.0.3/: yes",
        "a → http://10.66.0.3:12751/: no",
        "b → http://10.66.0.2/: no",
        "a → http://10.66.0.1:9000/: yes",
        "a → http://10.66.0.1:9001/: no",
        "b → http://198.51.100.2:8081/: yes",
        "b → http://198.51.100.2:8082/: no",
        "b → http://10.77.0.2:8081/: no",
      ],
    );

    // Bad input changes nothing.
    const before = ip("netns", "exec", host, "nft", "list", "ruleset");
    await assert.rejects(
      setEndpointPolicies([endpoint("a", 2), endpoint("b", 2)], net),
      /policies\[1\]\.address/,
    );
    assert.equal(ip("netns", "exec", host, "nft", "list", "ruleset"), before);

    // No endpoints: the tables stay, guarded ports stay mute; deleting opens the bridge.
    await setEndpointPolicies([], net);
    assert.deepEqual(await listEndpointPolicies({ netns: host }), []);
    assert.equal(await reaches(a, "http://198.51.100.2:8081/"), false, "a guarded port");
    await deleteEndpointPolicies({ bridge: "vbr0", netns: host });
    assert.equal(await listEndpointPolicies({ netns: host }), undefined);
    assert.doesNotMatch(ip("netns", "exec", host, "nft", "list", "ruleset"), /volant_policy/);
    assert.equal(getSysctl("net.ipv4.conf.vbr0.proxy_arp_pvlan", { netns: host }), "0");
    assert.equal(await reaches(c, "http://10.66.0.1:9000/"), true, "open bridge after");
    await deleteEndpointPolicies({ netns: host }); // absent: no error
  });
});

/** The values of `bridge-nf-call-iptables` this kernel can run with (br_netfilter built in or loaded). */
function brNetfilterModes(ns: string): (string | undefined)[] {
  try {
    getSysctl("net.bridge.bridge-nf-call-iptables", { netns: ns });
    return ["0", "1"];
  } catch {
    return [undefined];
  }
}

kernelTest(
  "endpoint policies hold with and without br_netfilter: published ports, frames to a peer's MAC",
  async () => {
    await withLab(async (lab) => {
      const [a, host] = [lab.ns("a"), lab.host];
      await ensureNat({ subnet: NET.subnet, bridge: "vbr0", enabled: true, netns: host });
      await setPortForwards(
        [{ hostPort: 8080, guestIp: "10.66.0.3", guestPort: 80, protocol: "tcp", owner: "b" }],
        { bridge: "vbr0", subnet: NET.subnet, netns: host },
      );
      for (const mode of brNetfilterModes(host)) {
        if (mode !== undefined) {
          setSysctl("net.bridge.bridge-nf-call-iptables", mode, { netns: host });
        }
        for (const allowFrom of [[], ["10.66.0.2"]]) {
          await setEndpointPolicies(
            [endpoint("a", 2), endpoint("b", 3, { allowFrom })],
            { ...NET, netns: host },
          );
          ip("-n", a, "neigh", "flush", "all");
          const published = await reaches(a, "http://198.51.100.1:8080/");
          const peer = await reaches(a, "http://10.66.0.3/");
          // a sends straight to b's MAC (known or guessed): bridged, not routed. Dropped at
          // layer 2, or (br_netfilter) judged by the ip rules: never more than the policy.
          const mac = ["10.66.0.3", "lladdr", "02:00:00:00:00:03", "dev", "eth0"];
          ip("-n", a, "neigh", "replace", ...mac);
          const direct = await reaches(a, "http://10.66.0.3/");
          const closed = await reaches(a, "http://10.66.0.3:12751/");
          ip("-n", a, "neigh", "del", "10.66.0.3", "dev", "eth0");
          const allowed = allowFrom.length > 0;
          assert.deepEqual(
            { published, peer, direct: direct && !allowed, closed },
            { published: true, peer: allowed, direct: false, closed: false },
            `bridge-nf-call-iptables ${mode ?? "absent"}, allowFrom ${allowFrom}`,
          );
        }
      }
    });
  },
);

/** `bridge -j …` in `ns`. */
function bridgeJson(ns: string, ...args: string[]): string {
  const out = new Deno.Command("ip", {
    args: ["netns", "exec", ns, "bridge", "-j", ...args],
    stdout: "piped",
  }).outputSync();
  return new TextDecoder().decode(out.stdout) || "[]";
}

/** `nft` counter of packets from `saddr` to TCP port `port`, in `ns` (its own table). */
function countFrom(ns: string, saddr: string, port: number): () => number {
  ip("netns", "exec", ns, "nft", "add", "table", "ip", "count");
  ip(
    "netns",
    "exec",
    ns,
    "nft",
    "add chain ip count c { type filter hook prerouting priority -500; }",
  );
  ip("netns", "exec", ns, "nft", `add rule ip count c ip saddr ${saddr} tcp dport ${port} counter`);
  return () => {
    const out = ip("netns", "exec", ns, "nft", "list", "chain", "ip", "count", "c");
    return Number(/counter packets (\d+)/.exec(out)?.[1] ?? NaN);
  };
}

kernelTest("endpoint policies: an endpoint cannot use another's address or MAC", async () => {
  await withLab(async (lab) => {
    const [a, b, host, out] = [lab.ns("a"), lab.ns("b"), lab.host, lab.ns("out")];
    await setEndpointPolicies([endpoint("a", 2), endpoint("b", 3)], { ...NET, netns: host });
    const fromB = countFrom(out, "10.66.0.3", 8081);
    assert.equal(await reaches(b, "http://198.51.100.2:8081/"), true, "b itself gets through");
    const legit = fromB();
    assert.ok(legit > 0);

    // a sends from b's address: nothing arrives.
    ip("-n", a, "addr", "add", "10.66.0.3/32", "dev", "eth0");
    ip("-n", a, "route", "add", "198.51.100.2/32", "via", "10.66.0.1", "src", "10.66.0.3");
    assert.equal(await reaches(a, "http://198.51.100.2:8081/"), false);
    assert.equal(fromB(), legit, "no packet with b's address came from a");
    // …nor claims it over ARP: the host still has b's MAC for b's address.
    assert.equal(await reaches(host, "http://10.66.0.3/"), true);
    await new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        a,
        "busybox",
        "arping",
        "-U",
        "-c",
        "2",
        "-w",
        "1",
        "-I",
        "eth0",
        "-s",
        "10.66.0.3",
        "10.66.0.3",
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    const neigh = ip("-n", host, "neigh", "show", "10.66.0.3", "dev", "vbr0");
    assert.match(neigh, /lladdr 02:00:00:00:00:03/, neigh);
    ip("-n", a, "route", "del", "198.51.100.2/32");
    ip("-n", a, "addr", "del", "10.66.0.3/32", "dev", "eth0");
    // Its ARP requests for the gateway (sent from b's address) went unanswered meanwhile.
    ip("-n", a, "neigh", "flush", "all");
    assert.equal(await reaches(a, "http://198.51.100.2:8081/"), true, "a as itself again");

    // a with b's MAC: nothing gets through.
    ip("-n", a, "link", "set", "eth0", "address", "02:00:00:00:00:03");
    ip("-n", a, "neigh", "flush", "all");
    assert.equal(await reaches(a, "http://198.51.100.2:8081/"), false);
    const learned = (JSON.parse(bridgeJson(host, "fdb", "show", "br", "vbr0")) as {
      mac: string;
      ifname: string;
    }[]).filter((e) => e.mac === "02:00:00:00:00:03").map((e) => e.ifname);
    assert.ok(!learned.includes("vt-a"), `the bridge learned b's MAC only on b's port: ${learned}`);
  });
});

kernelTest("the root namespace's links, nft ruleset and ip_forward are unchanged", () => {
  assert.deepEqual(rootSnapshot(), ROOT_BEFORE);
});
