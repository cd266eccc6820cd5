import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { ip, kernelTest, withTestNamespace } from "./testing.ts";
import { rootSnapshot } from "./root_guard.ts";
import { withNetns } from "./netns.ts";
import {
  deleteNftTable,
  ensureNat,
  listPortForwards,
  NFT_TABLE,
  nftAvailable,
  type PortForward,
  portInUse,
  setPortForwards,
} from "./nft.ts";
import { getSysctl, setSysctl } from "./sysctl.ts";

const ROOT_BEFORE = rootSnapshot();
const SUBNET = "192.168.127.0/24";
const BRIDGE = "vbr0";

interface Chain {
  name: string;
  hook?: string;
}
interface Rule {
  chain: string;
  comment?: string;
  expr: Record<string, unknown>[];
}

/** `nft -j list table ip volant` in `ns`, as chains and rules; `undefined` without the table. */
function table(ns: string): { chains: Chain[]; rules: Rule[] } | undefined {
  const out = new Deno.Command("ip", {
    args: ["netns", "exec", ns, "nft", "-j", "list", "table", "ip", NFT_TABLE],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (!out.success) return undefined;
  const items = JSON.parse(new TextDecoder().decode(out.stdout)).nftables as Record<
    string,
    unknown
  >[];
  return {
    chains: items.filter((i) => i.chain).map((i) => i.chain as Chain),
    rules: items.filter((i) => i.rule).map((i) => i.rule as Rule),
  };
}

function rulesIn(ns: string, chain: string): Rule[] {
  return table(ns)?.rules.filter((r) => r.chain === chain) ?? [];
}

function ruleset(ns: string): string {
  return ip("netns", "exec", ns, "nft", "list", "ruleset");
}

const web: PortForward = {
  hostPort: 8080,
  guestIp: "192.168.127.2",
  guestPort: 80,
  protocol: "tcp",
  owner: "web",
};
const dns: PortForward = {
  hostPort: 5353,
  guestIp: "192.168.127.3",
  guestPort: 53,
  protocol: "udp",
  owner: "dns",
};

kernelTest("ensureNat adds, keeps and removes the masquerade; dryRun changes nothing", async () => {
  await withTestNamespace(async (ns) => {
    assert.equal(await nftAvailable({ netns: ns }), true);
    const opts = { subnet: SUBNET, bridge: BRIDGE, netns: ns };
    assert.equal(await ensureNat({ ...opts, enabled: true, dryRun: true }), true);
    assert.equal(table(ns), undefined, "dryRun must not create the table");

    assert.equal(await ensureNat({ ...opts, enabled: true }), true);
    const [masq] = rulesIn(ns, "nat_postrouting");
    assert.ok(masq, "a masquerade rule");
    assert.deepEqual(masq.expr.at(-1), { masquerade: null });
    assert.deepEqual(masq.expr[0], {
      match: {
        op: "==",
        left: { payload: { protocol: "ip", field: "saddr" } },
        right: { prefix: { addr: "192.168.127.0", len: 24 } },
      },
    });
    assert.deepEqual(masq.expr[1], {
      match: { op: "!=", left: { meta: { key: "oifname" } }, right: BRIDGE },
    });
    assert.equal(rulesIn(ns, "nat_forward").length, 2);
    const hooks = table(ns)!.chains.map((c) => `${c.name}:${c.hook}`).sort();
    assert.deepEqual(hooks, ["nat_forward:forward", "nat_postrouting:postrouting"]);

    const before = ruleset(ns);
    assert.equal(await ensureNat({ ...opts, enabled: true }), false, "idempotent");
    assert.equal(ruleset(ns), before);

    // Another subnet replaces the rule (dryRun only reports it).
    const other = { ...opts, subnet: "10.50.0.0/16", enabled: true };
    assert.equal(await ensureNat({ ...other, dryRun: true }), true);
    assert.equal(ruleset(ns), before);
    assert.equal(await ensureNat(other), true);
    assert.match(ruleset(ns), /ip saddr 10\.50\.0\.0\/16 oifname != "vbr0" masquerade/);
    assert.doesNotMatch(ruleset(ns), /192\.168\.127/);

    assert.equal(await ensureNat({ ...other, enabled: false }), true);
    assert.equal(table(ns), undefined, "nothing else in the table: the table goes too");
    assert.equal(await ensureNat({ ...other, enabled: false }), false);
  });
});

kernelTest(
  "NAT and port forwards live in separate chains and never clobber each other",
  async () => {
    await withTestNamespace(async (ns) => {
      const net = { subnet: SUBNET, bridge: BRIDGE, netns: ns };
      await setPortForwards([web], net);
      assert.equal(await ensureNat({ ...net, enabled: true }), true);
      assert.deepEqual(await listPortForwards({ netns: ns }), [web]);
      await setPortForwards([], net);
      assert.deepEqual(await listPortForwards({ netns: ns }), []);
      assert.equal(await ensureNat({ ...net, enabled: true }), false, "NAT untouched by forwards");
      assert.deepEqual(table(ns)!.chains.map((c) => c.name).sort(), [
        "nat_forward",
        "nat_postrouting",
      ]);
      await setPortForwards([web, dns], net);
      assert.equal(await ensureNat({ ...net, enabled: false }), true);
      assert.deepEqual(
        await listPortForwards({ netns: ns }),
        [web, dns],
        "forwards untouched by NAT",
      );
      assert.equal(rulesIn(ns, "nat_postrouting").length, 0);
      await deleteNftTable({ netns: ns });
      assert.equal(table(ns), undefined);
      await deleteNftTable({ netns: ns }); // absent: no error
    });
  },
);

kernelTest("setPortForwards replaces the rules exactly; listPortForwards round-trips", async () => {
  await withTestNamespace(async (ns) => {
    const net = { subnet: SUBNET, bridge: BRIDGE, netns: ns };
    assert.deepEqual(await listPortForwards({ netns: ns }), []);
    await setPortForwards([web, dns], net);
    assert.deepEqual(await listPortForwards({ netns: ns }), [web, dns]);
    for (const chain of ["pf_prerouting", "pf_output", "pf_forward"]) {
      assert.deepEqual(rulesIn(ns, chain).map((r) => r.comment), ["web", "dns"], chain);
    }
    assert.equal(rulesIn(ns, "pf_postrouting").length, 2, "hairpin + host-originated");

    const moved: PortForward = { ...web, hostPort: 9090, guestIp: "192.168.127.9", owner: "api" };
    await setPortForwards([moved], net);
    assert.deepEqual(await listPortForwards({ netns: ns }), [moved]);
    assert.equal(rulesIn(ns, "pf_output").length, 1);
    assert.doesNotMatch(ruleset(ns), /8080|5353|"web"|"dns"/);

    const before = ruleset(ns);
    await setPortForwards([moved], net);
    assert.equal(ruleset(ns), before, "same forwards: no change");

    // Invalid lists are refused whole; the rules stay as they were.
    const bad: [PortForward[], RegExp][] = [
      [[moved, { ...web, hostPort: 9090, owner: "other" }], /9090\/tcp is forwarded twice/],
      [[{ ...web, guestIp: "10.0.0.2" }], /forwards\[0\]\.guestIp: 10\.0\.0\.2 is outside/],
      [[{ ...web, owner: 'a"b' }], /forwards\[0\]\.owner/],
      [[{ ...web, hostPort: 0 }], /forwards\[0\]\.hostPort: 0 is not a port/],
      [[{ ...web, guestPort: 70000 }], /forwards\[0\]\.guestPort/],
    ];
    for (const [forwards, message] of bad) {
      await assert.rejects(setPortForwards(forwards, net), (err: unknown) => {
        assert.ok(err instanceof VolantError);
        assert.equal(err.code, "invalid_argument");
        assert.match(err.message, message);
        return true;
      });
    }
    assert.equal(ruleset(ns), before);

    await setPortForwards([], net);
    assert.equal(table(ns), undefined, "no forwards and no NAT: no table");
  });
});

kernelTest("nft errors: missing namespace, missing nft, invalid names", async () => {
  const missing = `volant-t-missing-${crypto.randomUUID().slice(0, 6)}`;
  assert.equal(await nftAvailable({ netns: missing }), false);
  await assert.rejects(
    ensureNat({ subnet: SUBNET, bridge: BRIDGE, enabled: true, netns: missing }),
    (err: unknown) => {
      assert.ok(err instanceof VolantError);
      assert.equal(err.code, "network_error");
      assert.match(err.message, /Cannot open network namespace.*create it with `ip netns add`/);
      return true;
    },
  );
  await assert.rejects(
    listPortForwards({ netns: "a/b" }),
    /netns: "a\/b" is not a namespace name/,
  );
  await assert.rejects(
    ensureNat({ subnet: "192.168.127.5/24", bridge: BRIDGE, enabled: true, netns: missing }),
    /subnet: .*host bits set/,
  );

  // A PATH holding `ip` but no `nft`: ip netns exec cannot find it.
  await withTestNamespace(async (ns) => {
    const dir = await Deno.makeTempDir({ prefix: "volant-nft-path-" });
    const path = Deno.env.get("PATH");
    try {
      const ipPath = new TextDecoder().decode(
        new Deno.Command("sh", { args: ["-c", "command -v ip"], stdout: "piped" }).outputSync()
          .stdout,
      ).trim();
      await Deno.symlink(ipPath, `${dir}/ip`);
      Deno.env.set("PATH", dir);
      assert.equal(await nftAvailable({ netns: ns }), false);
      await assert.rejects(
        ensureNat({ subnet: SUBNET, bridge: BRIDGE, enabled: true, netns: ns }),
        (err: unknown) => {
          assert.ok(err instanceof VolantError);
          assert.equal(err.code, "network_error");
          assert.match(err.message, /apt-get install --no-install-recommends nftables/);
          return true;
        },
      );
    } finally {
      if (path === undefined) Deno.env.delete("PATH");
      else Deno.env.set("PATH", path);
      await Deno.remove(dir, { recursive: true });
    }
  });
});

/** A process started with `ip netns exec`, stopped by PID. */
function spawnIn(ns: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  await child.output();
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `busybox wget` from `ns`: the body, or `undefined` when the fetch fails. (Its `-T` timeout
 * flag crashes Debian's busybox 1.35, so the process gets a deadline instead.)
 */
async function fetchFrom(ns: string, url: string): Promise<string | undefined> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, "busybox", "wget", "-q", "-O", "-", url],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(15_000),
  }).output();
  return out.success ? new TextDecoder().decode(out.stdout) : undefined;
}

function makeNs(): string {
  const ns = `volant-t-${crypto.randomUUID().slice(0, 8)}`;
  ip("netns", "add", ns);
  ip("-n", ns, "link", "set", "lo", "up");
  return ns;
}

kernelTest(
  "a forward carries real HTTP: from a client, from the host itself, and hairpin from a guest",
  async () => {
    await withTestNamespace(async (host) => {
      const client = makeNs();
      const vm = makeNs();
      const dir = await Deno.makeTempDir({ prefix: "volant-httpd-" });
      let httpd: Deno.ChildProcess | undefined;
      try {
        // host: bridge with the gateway; a veth to the client; a veth into the bridge for the VM.
        ip("-n", host, "link", "add", BRIDGE, "type", "bridge");
        ip("-n", host, "addr", "add", "192.168.127.1/24", "dev", BRIDGE);
        ip("-n", host, "link", "set", BRIDGE, "up");
        ip("-n", host, "link", "add", "vh", "type", "veth", "peer", "name", "vc", "netns", client);
        ip("-n", host, "addr", "add", "10.77.0.1/24", "dev", "vh");
        ip("-n", host, "link", "set", "vh", "up");
        ip("-n", client, "addr", "add", "10.77.0.2/24", "dev", "vc");
        ip("-n", client, "link", "set", "vc", "up");
        ip("-n", host, "link", "add", "vb", "type", "veth", "peer", "name", "eth0", "netns", vm);
        ip("-n", host, "link", "set", "vb", "master", BRIDGE, "up");
        ip("-n", vm, "addr", "add", "192.168.127.2/24", "dev", "eth0");
        ip("-n", vm, "link", "set", "eth0", "up");
        ip("-n", vm, "route", "add", "default", "via", "192.168.127.1");
        assert.equal(setSysctl("net.ipv4.ip_forward", "1", { netns: host }), true);

        const page = `hello from the guest ${crypto.randomUUID()}\n`;
        await Deno.writeTextFile(`${dir}/index.html`, page);
        assert.equal(await portInUse(80, "tcp", { netns: vm }), false);
        httpd = spawnIn(vm, ["busybox", "httpd", "-f", "-p", "80", "-h", dir]);
        await waitFor("httpd to listen", () => portInUse(80, "tcp", { netns: vm }));
        assert.equal(await portInUse(80, "tcp", { netns: host }), false, "per namespace");
        assert.equal(await portInUse(80, "udp", { netns: vm }), false, "tcp is not udp");

        const url = "http://10.77.0.1:8080/";
        const hairpin = "http://192.168.127.1:8080/";
        assert.equal(await fetchFrom(client, url), undefined, "no forward yet");
        assert.equal(await fetchFrom(host, url), undefined);

        await setPortForwards([web], { bridge: BRIDGE, subnet: SUBNET, netns: host });
        assert.equal(await fetchFrom(client, url), page, "client → host:8080 → guest:80");
        assert.equal(await fetchFrom(host, url), page, "host → its own address:8080");
        assert.equal(await fetchFrom(host, "http://127.0.0.1:8080/"), undefined, "no loopback");

        // Hairpin (a guest reaching its own forward through the gateway). Routed, it needs the
        // masquerade; with br_netfilter active the DNAT-ed frame is bridged back out the port it
        // came from, which also needs the port's hairpin mode (as Docker sets on its veths).
        const brNf = "net.bridge.bridge-nf-call-iptables";
        const hasBrNf = withNetns(host, () => {
          try {
            return getSysctl(brNf) !== "";
          } catch {
            return false; // br_netfilter not loaded
          }
        });
        if (hasBrNf) setSysctl(brNf, "0", { netns: host });
        assert.equal(await fetchFrom(vm, hairpin), page, "guest → gateway:8080 → itself (routed)");
        if (hasBrNf) {
          setSysctl(brNf, "1", { netns: host });
          ip("-n", host, "link", "set", "vb", "type", "bridge_slave", "hairpin", "on");
          assert.equal(await fetchFrom(vm, hairpin), page, "… and bridged by br_netfilter");
        }

        await setPortForwards([], { bridge: BRIDGE, subnet: SUBNET, netns: host });
        assert.equal(await fetchFrom(client, url), undefined, "forward removed");
        assert.equal(await fetchFrom(host, url), undefined);
        assert.equal(await fetchFrom(vm, hairpin), undefined);
      } finally {
        if (httpd) await stop(httpd);
        ip("netns", "del", client);
        ip("netns", "del", vm);
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

kernelTest("portInUse sees TCP listeners and bound UDP sockets, IPv4 and IPv6", async () => {
  await withTestNamespace(async (ns) => {
    // Deno.listen binds synchronously, so inside withNetns the socket lives in `ns`.
    const v4 = withNetns(ns, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
    const v6 = withNetns(ns, () => Deno.listen({ hostname: "::1", port: 0 }));
    const udpScript = await Deno.makeTempFile({ prefix: "volant-udp-", suffix: ".ts" });
    let udp: Deno.ChildProcess | undefined;
    try {
      const p4 = (v4.addr as Deno.NetAddr).port;
      const p6 = (v6.addr as Deno.NetAddr).port;
      assert.equal(await portInUse(p4, "tcp", { netns: ns }), true);
      assert.equal(await portInUse(p6, "tcp", { netns: ns }), true, "tcp6");
      assert.equal(await portInUse(p4, "udp", { netns: ns }), false);
      await Deno.writeTextFile(
        udpScript,
        `const s = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 45353 });\n` +
          `console.log("bound");\nfor await (const _ of s) break;\n`,
      );
      udp = spawnIn(ns, [Deno.execPath(), "run", "--unstable-net", "--allow-net", udpScript]);
      await waitFor("the UDP socket", () => portInUse(45353, "udp", { netns: ns }));
      assert.equal(await portInUse(45353, "tcp", { netns: ns }), false);
    } finally {
      v4.close();
      v6.close();
      if (udp) await stop(udp);
      await Deno.remove(udpScript);
    }
    assert.equal(await portInUse(45353, "udp", { netns: ns }), false, "closed");
    await assert.rejects(portInUse(0, "tcp", { netns: ns }), /port: 0 is not a port/);
  });
});

kernelTest("the root namespace's links, nft ruleset and ip_forward are unchanged", () => {
  assert.deepEqual(rootSnapshot(), ROOT_BEFORE);
});
