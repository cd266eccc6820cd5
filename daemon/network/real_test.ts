/**
 * The real HostNetwork in network namespaces these tests create (never the root one): the
 * bridge, taps, forwards and listeners, and the daemon's reconciliation of an orphan tap and a
 * stale lease on real links. The last test checks the root namespace is unchanged.
 */
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { ip, ipJson, kernelTest, withTestNamespace } from "../../net/testing.ts";
import { rootSnapshot } from "../../net/root_guard.ts";
import { withNetns } from "../../net/mod.ts";
import { listPortForwards } from "../../net/nft.ts";
import { makeTestEnv } from "../testing.ts";
import { reconcile } from "../services/reconcile.ts";
import { fakeGuestAgent, FakeHostNetwork } from "./fake.ts";
import type { HostNetwork } from "./host_network.ts";
import { ARP_RETRANS_MS, netHostNetwork } from "./real.ts";

const ROOT_BEFORE = rootSnapshot();
const CONFIG = { bridge: "vbr0", subnet: "192.168.127.0/24", gateway: "192.168.127.1", nat: true };

interface Link {
  ifname: string;
  master?: string;
  flags: string[];
  linkinfo?: { info_kind?: string };
}

function links(ns: string): Link[] {
  return ipJson<Link[]>(ns, "-d", "link", "show");
}

kernelTest("prepare creates the bridge with the gateway address, idempotently", async () => {
  await withTestNamespace(async (ns) => {
    const net = netHostNetwork({ ...CONFIG, netns: ns });
    const first = await net.prepare();
    ok(first.changes.includes("created bridge vbr0"), first.changes.join("; "));
    const bridge = links(ns).find((l) => l.ifname === "vbr0");
    equal(bridge?.linkinfo?.info_kind, "bridge");
    ok(bridge?.flags.includes("UP"));
    const addrs = ipJson<{ addr_info: { local: string; prefixlen: number }[] }[]>(
      ns,
      "addr",
      "show",
      "vbr0",
    );
    deepEqual(
      addrs[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`).filter((a) => a.includes(".")),
      ["192.168.127.1/24"],
    );
    equal(ip("netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward").trim(), "1");
    equal(
      ip("netns", "exec", ns, "cat", "/proc/sys/net/ipv4/neigh/vbr0/retrans_time_ms").trim(),
      String(ARP_RETRANS_MS),
      "unanswered ARP requests on the bridge are repeated quickly",
    );
    deepEqual((await net.prepare()).changes, [], "a second prepare changes nothing");
  });
});

kernelTest(
  "prepare refuses a subnet another interface uses, before changing anything",
  async () => {
    await withTestNamespace(async (ns) => {
      ip("-n", ns, "link", "add", "other0", "type", "veth", "peer", "name", "other1");
      ip("-n", ns, "addr", "add", "192.168.127.77/24", "dev", "other0");
      const net = netHostNetwork({ ...CONFIG, netns: ns });
      await rejects(() => net.prepare(), (err: Error & { code?: string }) => {
        match(err.message, /network\.subnet: 192\.168\.127\.0\/24 overlaps 192\.168\.127\.77\/24/);
        return err.code === "invalid_argument";
      });
      ok(!links(ns).some((l) => l.ifname === "vbr0"), "no bridge was created");
    });
  },
);

kernelTest("taps: created on the bridge and up, listed by prefix, deleted", async () => {
  await withTestNamespace(async (ns) => {
    const net = netHostNetwork({ ...CONFIG, netns: ns });
    await net.prepare();
    await net.createTap("vt-web");
    await net.createTap("vt-api");
    ip("-n", ns, "link", "add", "vt-veth", "type", "veth", "peer", "name", "vt-peer");
    const tap = links(ns).find((l) => l.ifname === "vt-web")!;
    equal(tap.master, "vbr0");
    equal(tap.linkinfo?.info_kind, "tun");
    ok(tap.flags.includes("UP"));
    deepEqual(await net.listTaps("vt-"), ["vt-api", "vt-web"], "only taps, not the veth");
    await rejects(() => net.createTap("vt-web"), /already exists/);
    equal(await net.deleteTap("vt-web"), true);
    equal(await net.deleteTap("vt-web"), false);
    deepEqual(await net.listTaps("vt-"), ["vt-api"]);
    await rejects(() => net.createTap("vt-a-name-too-long"), /at most 15/);
  });
});

kernelTest("forwards are set exactly; listeners in the namespace are seen", async () => {
  await withTestNamespace(async (ns) => {
    const net = netHostNetwork({ ...CONFIG, netns: ns });
    await net.prepare();
    const web = {
      hostPort: 8080,
      guestIp: "192.168.127.2",
      guestPort: 80,
      protocol: "tcp" as const,
      owner: "web",
    };
    await net.setForwards([web]);
    deepEqual(await listPortForwards({ netns: ns }), [web]);
    await net.setForwards([]);
    deepEqual(await listPortForwards({ netns: ns }), []);
    const listener = withNetns(ns, () => Deno.listen({ hostname: "0.0.0.0", port: 18080 }));
    try {
      equal(await net.portInUse(18080, "tcp"), true);
      equal(await net.portInUse(18081, "tcp"), false);
      equal(await net.portInUse(18080, "udp"), false);
    } finally {
      listener.close();
    }
  });
});

/** The real network in `ns`, with kestrel probes answered for the fake driver's guests. */
function realInNs(ns: string, agent: FakeHostNetwork): HostNetwork {
  const real = netHostNetwork({ ...CONFIG, netns: ns });
  return { ...real, probeAgent: (ipAddr, opts) => agent.probeAgent(ipAddr, opts) };
}

kernelTest(
  "daemon killed between tap creation and VMM launch: the restart removes the orphan tap and lease",
  async () => {
    await withTestNamespace(async (ns) => {
      const env = await makeTestEnv();
      try {
        const agent = new FakeHostNetwork({ agent: fakeGuestAgent(env.registry) });
        const net = realInNs(ns, agent);
        await net.prepare();
        const first = env.open({}, net);
        // A VM that runs (its tap must survive) with a published port.
        const live = await first.service.create({
          name: "live",
          publish: [{ host_port: 8080, guest_port: 80 }],
        });
        await first.service.wait("live", "running", 10_000);
        equal(links(ns).find((l) => l.ifname === "vt-live")?.master, "vbr0");
        deepEqual((await listPortForwards({ netns: ns })).map((f) => f.guestIp), [live.ip]);
        // The state a daemon killed mid-create leaves: a pending row holding its lease, its
        // tap on the bridge, no VMM.
        first.store.transaction(() => {
          const row = first.store.vms.insert({
            ...first.store.vms.get("live")!,
            name: "half",
            state: "pending",
            handle: null,
            tap: "vt-half",
            last_ip: null,
          });
          first.store.leases.add(row.id, "192.168.127.9");
        });
        await net.createTap("vt-half");
        await net.createTap("vt-stray"); // no row at all
        await first.close();

        const second = env.open({}, net);
        const report = await reconcile(second.service);
        deepEqual(report.adopted, ["live"]);
        deepEqual(report.crashed, ["half"]);
        deepEqual(report.freed_leases, ["192.168.127.9"]);
        deepEqual(report.orphan_taps, ["vt-stray"], "half's tap went with its release");
        const names = links(ns).map((l) => l.ifname);
        ok(!names.includes("vt-half") && !names.includes("vt-stray"), names.join(" "));
        ok(names.includes("vt-live"), "the adopted VM keeps its tap");
        deepEqual(second.store.leases.list().map((l) => l.vm), ["live"]);
        equal(second.service.get("half").state, "crashed");
        equal(second.service.get("half").tap, null);
        deepEqual((await listPortForwards({ netns: ns })).map((f) => f.owner), ["live"]);

        await second.service.delete("live");
        await second.service.delete("half");
        deepEqual(await net.listTaps("vt-"), []);
        deepEqual(await listPortForwards({ netns: ns }), []);
        equal(second.store.leases.list().length, 0);
      } finally {
        await env.dispose();
      }
    });
  },
);

kernelTest("the root namespace is unchanged by this file's tests", () => {
  deepEqual(rootSnapshot(), ROOT_BEFORE);
});
