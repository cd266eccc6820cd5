/**
 * The real HostNetwork's network policies in a namespace these tests create: the VM service
 * wires them to its taps (created, changed, gone with the VM; rewritten by reconciliation), and
 * `network.isolation: false` removes them. The last test checks the root namespace is unchanged.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { ip, kernelTest, withTestNamespace } from "../../net/testing.ts";
import { rootSnapshot } from "../../net/root_guard.ts";
import { listEndpointPolicies } from "../../net/nft_policy.ts";
import { makeTestEnv } from "../testing.ts";
import { reconcile } from "../services/reconcile.ts";
import type { HostNetwork } from "./host_network.ts";
import { netHostNetwork } from "./real.ts";
import { fakeGuestAgent, FakeHostNetwork } from "./fake.ts";

const ROOT_BEFORE = rootSnapshot();
const CONFIG = { bridge: "vbr0", subnet: "192.168.127.0/24", gateway: "192.168.127.1", nat: true };

/** The real network for links and nft, the fake guests' kestrel for readiness. */
function realWithFakeAgent(real: HostNetwork, agent: FakeHostNetwork): HostNetwork {
  return {
    ...real,
    description: real.description,
    probeAgent: (target, options) => agent.probeAgent(target, options),
    probeTcp: (address, port, options) => agent.probeTcp(address, port, options),
  };
}

kernelTest("the VM service keeps the real policy rules in step with its VMs", async () => {
  await withTestNamespace(async (ns) => {
    const env = await makeTestEnv();
    try {
      const real = netHostNetwork({ ...CONFIG, netns: ns });
      await real.prepare();
      const network = realWithFakeAgent(
        real,
        new FakeHostNetwork({ agent: fakeGuestAgent(env.registry) }),
      );
      const d = env.open({}, network);
      const a = await d.service.create({ name: "a" });
      await d.service.create({ name: "b", network_policy: { allow_from: ["a"] } });
      deepEqual(await listEndpointPolicies({ netns: ns }), [
        { owner: "a", link: "vt-a" },
        { owner: "b", link: "vt-b" },
      ]);
      const ruleset = () => ip("netns", "exec", ns, "nft", "list", "ruleset");
      match(
        ruleset(),
        new RegExp(`ip saddr ${a.ip!.replaceAll(".", "\\.")} tcp dport != \\d+ accept`),
      );
      await d.service.wait("b", "running", 5_000);
      await d.service.setNetworkPolicy("b", { egress: "deny" });
      ok(!ruleset().includes(`ip saddr ${a.ip} tcp dport`), "the peer rule went");

      // A restarted daemon on a host whose rules were lost puts them back.
      await d.close();
      ip("netns", "exec", ns, "nft", "delete", "table", "bridge", "volant_policy");
      const again = env.open({}, network);
      await reconcile(again.service);
      deepEqual((await listEndpointPolicies({ netns: ns }))?.map((e) => e.owner), ["a", "b"]);

      await again.service.delete("a");
      await again.service.delete("b");
      deepEqual(await listEndpointPolicies({ netns: ns }), [], "rules gone with the VMs");
      equal(
        ip("netns", "exec", ns, "cat", "/proc/sys/net/ipv4/conf/vbr0/proxy_arp_pvlan").trim(),
        "1",
      );

      // isolation off: prepare removes the tables; setPolicies does nothing.
      const open = netHostNetwork({ ...CONFIG, netns: ns, isolation: false });
      await open.prepare();
      equal(await listEndpointPolicies({ netns: ns }), undefined);
      await open.setPolicies([]);
      equal(await listEndpointPolicies({ netns: ns }), undefined);
      equal(
        ip("netns", "exec", ns, "cat", "/proc/sys/net/ipv4/conf/vbr0/proxy_arp_pvlan").trim(),
        "0",
      );
    } finally {
      await env.dispose();
    }
  });
});

kernelTest("the root namespace is unchanged by this file's tests", () => {
  deepEqual(rootSnapshot(), ROOT_BEFORE);
});
