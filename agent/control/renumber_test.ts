import assert from "node:assert/strict";
import { netlinkError } from "../../net/netlink/error.ts";
import type { NetOps } from "../network.ts";
import { planNetwork } from "../network.ts";
import { changeMac, renumberNic } from "./renumber.ts";
import { BOOT_NETWORK } from "./testing.ts";
import { evalInNetns, ipJson } from "../netns_testing.ts";

function recordingOps(addresses: string[], failMac?: number[]): { ops: NetOps; calls: string[] } {
  const calls: string[] = [];
  let macCalls = 0;
  return {
    calls,
    ops: {
      links: () => Promise.resolve([]),
      up: (n) => void calls.push(`up ${n}`),
      down: (n) => void calls.push(`down ${n}`),
      setMac: (n, mac) => {
        const errno = failMac?.[macCalls++];
        if (errno !== undefined) {
          throw netlinkError(errno, { op: "set link", subject: `link ${n}`, link: n });
        }
        calls.push(`mac ${mac} ${n}`);
      },
      ipv4Addresses: () => addresses,
      addAddress: (l, c) => void calls.push(`add ${c} ${l}`),
      deleteAddress: (l, c) => void calls.push(`delete ${c} ${l}`),
      addDefaultRoute: () => assert.fail("renumbering replaces the route"),
      replaceDefaultRoute: (g, d) => void calls.push(`default ${g} ${d}`),
    },
  };
}

Deno.test("renumberNic(): MAC, every other IPv4 address out, the new one in, the route replaced", () => {
  const { ops, calls } = recordingOps(["10.1.2.10/24", "10.9.0.5/16"]);
  const next = renumberNic(
    ops,
    BOOT_NETWORK,
    planNetwork({ ip: "10.3.0.7", prefix: 16, gateway: "10.3.0.1", mac: "02:00:00:00:00:09" }),
  );
  assert.deepEqual(calls, [
    "mac 02:00:00:00:00:09 eth0",
    "delete 10.1.2.10/24 eth0",
    "delete 10.9.0.5/16 eth0",
    "add 10.3.0.7/16 eth0",
    "default 10.3.0.1 eth0",
  ]);
  assert.deepEqual(next, {
    ip: "10.3.0.7",
    prefix: 16,
    cidr: "10.3.0.7/16",
    gateway: "10.3.0.1",
    mac: "02:00:00:00:00:09",
    nic: "eth0",
    nicMac: "02:00:00:00:00:09",
  });
});

Deno.test("renumberNic(): the new address already there is kept; no gateway removes the default route", () => {
  const { ops, calls } = recordingOps(["10.1.2.11/24"]);
  renumberNic(ops, BOOT_NETWORK, planNetwork({ ip: "10.1.2.11", prefix: 24 }));
  assert.deepEqual(calls, ["add 10.1.2.11/24 eth0", "default undefined eth0"]);
});

Deno.test("changeMac(): EBUSY → down, set, up; another error is thrown; up even when the retry fails", () => {
  const busy = recordingOps([], [-16]);
  changeMac(busy.ops, "eth0", "02:00:00:00:00:01");
  assert.deepEqual(busy.calls, ["down eth0", "mac 02:00:00:00:00:01 eth0", "up eth0"]);

  const denied = recordingOps([], [-1]);
  assert.throws(() => changeMac(denied.ops, "eth0", "02:00:00:00:00:01"), /EPERM/);
  assert.deepEqual(denied.calls, []);

  const twice = recordingOps([], [-16, -99]);
  assert.throws(() => changeMac(twice.ops, "eth0", "02:00:00:00:00:01"), /EADDRNOTAVAIL/);
  assert.deepEqual(twice.calls, ["down eth0", "up eth0"]);
});

/** Runs `renumberNic` with the real netlink ops inside namespace `ns` (a child process). */
async function renumberInNetns(ns: string, current: object, next: object) {
  const script = `
    import { planNetwork, realNetOps } from ${JSON.stringify(import.meta.resolve("../network.ts"))};
    import { renumberNic } from ${JSON.stringify(import.meta.resolve("./renumber.ts"))};
    try {
      const r = renumberNic(realNetOps(), ${JSON.stringify(current)}, planNetwork(${
    JSON.stringify(next)
  }));
      console.log(JSON.stringify(r));
    } catch (err) {
      console.log(JSON.stringify({ error: err.message }));
      Deno.exit(1);
    }
  `;
  return await evalInNetns(ns, script);
}

const netnsSkip = Deno.uid() !== 0 ? "network namespaces need root" : undefined;

Deno.test({
  name: "renumberNic() with the real netlink ops moves a namespace's eth0 (veth)" +
    (netnsSkip === undefined ? "" : ` (skipped: ${netnsSkip})`),
  ignore: netnsSkip !== undefined,
  fn: async () => {
    const { createNetns, deleteNetns } = await import("../../hypervisor/testing/netns.ts");
    const ns = await createNetns();
    try {
      const ipNs = async (...args: string[]) => {
        const out = await new Deno.Command("ip", { args: ["-n", ns, ...args], stderr: "piped" })
          .output();
        assert.ok(out.success, `ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
      };
      const oldMac = "52:54:00:aa:bb:01";
      await ipNs("link", "add", "eth0", "address", oldMac, "type", "veth", "peer", "name", "peer0");
      await ipNs("link", "set", "peer0", "up");
      await ipNs("link", "set", "eth0", "up");
      await ipNs("addr", "add", "10.77.3.10/24", "dev", "eth0");
      await ipNs("addr", "add", "10.77.9.9/24", "dev", "eth0");
      await ipNs("route", "add", "default", "via", "10.77.3.1", "dev", "eth0");
      const current = {
        ip: "10.77.3.10",
        prefix: 24,
        cidr: "10.77.3.10/24",
        gateway: "10.77.3.1",
        mac: oldMac,
        nic: "eth0",
        nicMac: oldMac,
      };
      const newMac = "52:54:00:aa:bb:02";
      const r = await renumberInNetns(ns, current, {
        ip: "10.88.0.20",
        prefix: 16,
        gateway: "10.88.0.1",
        mac: newMac,
      });
      assert.ok(r.ok, r.out);
      assert.equal(JSON.parse(r.out).nicMac, newMac);
      const links = await ipJson(ns, "addr", "show", "dev", "eth0") as Array<{
        address: string;
        flags: string[];
        addr_info: Array<{ family: string; local: string; prefixlen: number }>;
      }>;
      const eth0 = links[0]!;
      assert.equal(eth0.address, newMac);
      assert.ok(eth0.flags.includes("UP"), JSON.stringify(eth0.flags));
      assert.deepEqual(
        eth0.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
        ["10.88.0.20/16"],
      );
      const routes = await ipJson(ns, "route", "show", "default") as Array<
        { gateway: string; dev: string }
      >;
      assert.deepEqual(routes.map((x) => [x.gateway, x.dev]), [["10.88.0.1", "eth0"]]);
    } finally {
      await deleteNetns(ns);
    }
  },
});
