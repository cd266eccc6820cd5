import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { ip, ipJson, kernelTest, withTestNamespace } from "./testing.ts";
import { rootSnapshot } from "./root_guard.ts";
import {
  netnsExists,
  prepareHostNetwork,
  validateHostNetwork,
  validateNetnsName,
} from "./host_network.ts";
import { getSysctl } from "./sysctl.ts";

const ROOT_BEFORE = rootSnapshot();
const NET = { bridge: "vbr0", subnet: "192.168.127.0/24", gateway: "192.168.127.1", nat: true };

interface IpLink {
  ifname: string;
  flags: string[];
  linkinfo?: { info_kind?: string };
}
interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

/** What the namespace holds: links (name, kind, up), IPv4 addresses, ip_forward, ruleset. */
function stateOf(ns: string) {
  const links = ipJson<IpLink[]>(ns, "-d", "link", "show").map((l) =>
    `${l.ifname}:${l.linkinfo?.info_kind ?? "-"}:${l.flags.includes("UP") ? "up" : "down"}`
  ).sort();
  const addrs = ipJson<IpAddr[]>(ns, "addr", "show").flatMap((l) =>
    l.addr_info.filter((a) => a.family === "inet").map((a) =>
      `${l.ifname}:${a.local}/${a.prefixlen}`
    )
  ).sort();
  return {
    links,
    addrs,
    forward: getSysctl("net.ipv4.ip_forward", { netns: ns }),
    ruleset: ip("netns", "exec", ns, "nft", "list", "ruleset"),
  };
}

function rejectsWith(field: string, pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof VolantError, String(err));
    assert.equal(err.code, "invalid_argument");
    assert.equal(err.details?.field, field);
    assert.match(err.message, pattern);
    return true;
  };
}

Deno.test("validateHostNetwork names the config key of each bad value", () => {
  assert.deepEqual(validateHostNetwork({ ...NET, subnet: "10.9.0.0/16", gateway: "10.9.3.4" }), {
    subnet: "10.9.0.0/16",
    gatewayCidr: "10.9.3.4/16",
  });
  const cases: [Partial<typeof NET> & { netns?: string }, string, RegExp][] = [
    [{ bridge: "a-very-long-bridge" }, "network.bridge", /at most 15/],
    [{ bridge: "br/0" }, "network.bridge", /contains '\/'/],
    [{ subnet: "192.168.127.0/33" }, "network.subnet", /prefix length/],
    [{ subnet: "banana" }, "network.subnet", /no prefix length/],
    [{ subnet: "192.168.127.7/24" }, "network.subnet", /host bits set/],
    [{ gateway: "10.0.0.1" }, "network.gateway", /outside the subnet 192\.168\.127\.0\/24/],
    [{ gateway: "192.168.127.0" }, "network.gateway", /is the network address/],
    [{ gateway: "192.168.127.255" }, "network.gateway", /is the broadcast address/],
    [{ netns: "a/b" }, "network.namespace", /not a network namespace name/],
  ];
  for (const [change, field, pattern] of cases) {
    assert.throws(() => validateHostNetwork({ ...NET, ...change }), rejectsWith(field, pattern));
  }
  assert.equal(validateNetnsName("volant-1.x_y", "--netns"), "volant-1.x_y");
  assert.throws(() => validateNetnsName("-x", "--netns"), /^VolantError: --netns:|--netns:/);
});

kernelTest("prepareHostNetwork sets everything up once, then reports no changes", async () => {
  await withTestNamespace(async (ns) => {
    const empty = stateOf(ns);
    const { changes } = await prepareHostNetwork({ ...NET, netns: ns });
    assert.deepEqual(changes, [
      "created bridge vbr0",
      "added 192.168.127.1/24 to vbr0",
      "set vbr0 up",
      "enabled net.ipv4.ip_forward",
      "added NAT for 192.168.127.0/24",
    ]);
    const after = stateOf(ns);
    assert.ok(after.links.includes("vbr0:bridge:up"), after.links.join());
    assert.deepEqual(after.addrs, ["lo:127.0.0.1/8", "vbr0:192.168.127.1/24"]);
    assert.equal(after.forward, "1");
    assert.match(after.ruleset, /ip saddr 192\.168\.127\.0\/24 oifname != "vbr0" masquerade/);
    assert.notDeepEqual(after, empty);

    assert.deepEqual((await prepareHostNetwork({ ...NET, netns: ns })).changes, []);
    assert.deepEqual(stateOf(ns), after, "second run changes nothing");

    // Turning NAT off removes only the NAT.
    const off = await prepareHostNetwork({ ...NET, nat: false, netns: ns });
    assert.deepEqual(off.changes, ["removed NAT for 192.168.127.0/24"]);
    assert.equal(stateOf(ns).ruleset.trim(), "");
    assert.deepEqual(stateOf(ns).links, after.links);
    assert.deepEqual((await prepareHostNetwork({ ...NET, nat: false, netns: ns })).changes, []);
  });
});

kernelTest("prepareHostNetwork only does what is missing (bridge down, no address)", async () => {
  await withTestNamespace(async (ns) => {
    ip("-n", ns, "link", "add", "vbr0", "type", "bridge");
    ip("-n", ns, "addr", "add", "192.168.127.1/16", "dev", "vbr0"); // another prefix: not ours
    const { changes } = await prepareHostNetwork({ ...NET, nat: false, netns: ns });
    assert.deepEqual(changes, [
      "added 192.168.127.1/24 to vbr0",
      "set vbr0 up",
      "enabled net.ipv4.ip_forward",
    ]);
    assert.ok(stateOf(ns).addrs.includes("vbr0:192.168.127.1/24"));
  });
});

kernelTest(
  "dryRun reports every change and changes nothing, even without the namespace",
  async () => {
    await withTestNamespace(async (ns) => {
      const before = stateOf(ns);
      const { changes } = await prepareHostNetwork({ ...NET, netns: ns, dryRun: true });
      assert.deepEqual(changes, [
        "would create bridge vbr0",
        "would add 192.168.127.1/24 to vbr0",
        "would set vbr0 up",
        "would enable net.ipv4.ip_forward",
        "would add NAT for 192.168.127.0/24",
      ]);
      assert.deepEqual(stateOf(ns), before, "no link, no address, no sysctl, no rule");

      await prepareHostNetwork({ ...NET, netns: ns });
      const ready = stateOf(ns);
      const other = await prepareHostNetwork({
        ...NET,
        subnet: "10.61.0.0/24",
        gateway: "10.61.0.1",
        netns: ns,
        dryRun: true,
      });
      assert.deepEqual(other.changes, [
        "would add 10.61.0.1/24 to vbr0",
        "would add NAT for 10.61.0.0/24",
      ]);
      assert.deepEqual(stateOf(ns), ready);
    });

    const missing = `volant-t-${crypto.randomUUID().slice(0, 8)}`;
    const planned = await prepareHostNetwork({ ...NET, netns: missing, dryRun: true });
    assert.equal(planned.changes.length, 5);
    assert.equal(netnsExists(missing), false, "dryRun does not create the namespace");
    await assert.rejects(prepareHostNetwork({ ...NET, netns: missing }), (err: unknown) => {
      assert.ok(err instanceof VolantError);
      assert.equal(err.code, "not_found");
      assert.match(err.message, new RegExp(`ip netns add ${missing}`));
      return true;
    });
  },
);

kernelTest("bad settings and conflicts fail before anything changes", async () => {
  await withTestNamespace(async (ns) => {
    const before = stateOf(ns);
    await assert.rejects(
      prepareHostNetwork({ ...NET, gateway: "192.168.128.1", netns: ns }),
      rejectsWith("network.gateway", /outside the subnet/),
    );
    await assert.rejects(
      prepareHostNetwork({ ...NET, bridge: "bridge-name-too-long", netns: ns }),
      rejectsWith("network.bridge", /at most 15/),
    );
    await assert.rejects(
      prepareHostNetwork({ ...NET, subnet: "192.168.127.0/31", netns: ns }),
      rejectsWith("network.subnet", /too small/),
    );
    assert.deepEqual(stateOf(ns), before);

    // A link of another kind (this kernel has no dummy links) under the bridge's name.
    ip("-n", ns, "link", "add", "vbr0", "type", "veth", "peer", "name", "vbr0-peer");
    const withDummy = stateOf(ns);
    await assert.rejects(
      prepareHostNetwork({ ...NET, netns: ns }),
      rejectsWith("network.bridge", /link vbr0 exists but is a veth, not a bridge/),
    );
    ip("-n", ns, "link", "del", "vbr0");

    // The subnet already used by another interface.
    ip("-n", ns, "link", "add", "eth9", "type", "veth", "peer", "name", "eth9-peer");
    ip("-n", ns, "addr", "add", "192.168.127.50/25", "dev", "eth9");
    const withEth = stateOf(ns);
    await assert.rejects(
      prepareHostNetwork({ ...NET, netns: ns }),
      rejectsWith("network.subnet", /overlaps 192\.168\.127\.50\/25 on eth9/),
    );
    assert.deepEqual(stateOf(ns), withEth);
    assert.notDeepEqual(withDummy, withEth);
  });
});

kernelTest("the root namespace's links, nft ruleset and ip_forward are unchanged", () => {
  assert.deepEqual(rootSnapshot(), ROOT_BEFORE);
});
