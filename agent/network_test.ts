import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { netlinkError } from "../net/netlink/error.ts";
import { fakeSystem } from "./_fake_system.ts";
import {
  chooseNic,
  configureNetwork,
  type NetOps,
  networkLine,
  type NicInfo,
  planNetwork,
  planSteps,
  readLinks,
  wantedNic,
} from "./network.ts";
import { drySystem } from "./system.ts";
import { evalInNetns, ipJson } from "./netns_testing.ts";

const LO: NicInfo = { name: "lo", mac: "00:00:00:00:00:00" };
const ETH0: NicInfo = { name: "eth0", mac: "52:54:00:12:34:56" };
const ETH1: NicInfo = { name: "eth1", mac: "02:00:00:00:00:07" };

/** Fake operations: `links` answers from `appearing` (one list per call, the last repeats). */
function fakeOps(appearing: NicInfo[][], fail?: { op: string; error: Error }) {
  const calls: string[] = [];
  let polls = 0;
  const maybeFail = (op: string) => {
    if (fail?.op === op) throw fail.error;
  };
  const ops: NetOps = {
    links: () => {
      polls++;
      return Promise.resolve(appearing[Math.min(polls - 1, appearing.length - 1)] ?? []);
    },
    up: (name) => {
      maybeFail("up");
      calls.push(`up ${name}`);
    },
    addAddress: (link, cidr) => {
      maybeFail("addAddress");
      calls.push(`address ${cidr} ${link}`);
    },
    addDefaultRoute: (gateway, dev) => {
      maybeFail("addDefaultRoute");
      calls.push(`route default via ${gateway} dev ${dev}`);
    },
    // configureNetwork() never renumbers: any of these is a mistake.
    down: () => assert.fail("down"),
    setMac: () => assert.fail("setMac"),
    ipv4Addresses: () => assert.fail("ipv4Addresses"),
    deleteAddress: () => assert.fail("deleteAddress"),
    replaceDefaultRoute: () => assert.fail("replaceDefaultRoute"),
  };
  return { ops, calls, polls: () => polls };
}

function rejectsWith(field: string, pattern: RegExp) {
  return (err: unknown) =>
    err instanceof VolantError && err.code === "invalid_argument" &&
    err.details?.field === field && pattern.test(err.message);
}

Deno.test("planNetwork() normalises the boot config's network", () => {
  assert.deepEqual(
    planNetwork({ ip: "10.1.2.10", prefix: 24, gateway: "10.1.2.1", mac: "52:54:00:AB:CD:EF" }),
    {
      ip: "10.1.2.10",
      prefix: 24,
      cidr: "10.1.2.10/24",
      gateway: "10.1.2.1",
      mac: "52:54:00:ab:cd:ef",
    },
  );
  const bare = planNetwork({ ip: "192.168.127.5", prefix: 32 });
  assert.equal(bare.gateway, undefined);
  assert.equal(bare.mac, undefined);
  assert.equal(bare.cidr, "192.168.127.5/32");
});

Deno.test("planNetwork() names the field that is wrong", () => {
  assert.throws(
    () => planNetwork({ ip: "10.1.2", prefix: 24 }),
    rejectsWith("network.ip", /10\.1\.2/),
  );
  assert.throws(
    () => planNetwork({ ip: "10.1.2.10", prefix: 0 }),
    rejectsWith("network.prefix", /1 to 32/),
  );
  assert.throws(
    () => planNetwork({ ip: "10.1.2.10", prefix: 24, gateway: "10.1.3.1" }),
    rejectsWith("network.gateway", /10\.1\.3\.1 is not in 10\.1\.2\.0\/24/),
  );
  assert.throws(
    () => planNetwork({ ip: "10.1.2.10", prefix: 24, gateway: "10.1.2.10" }),
    rejectsWith("network.gateway", /own address/),
  );
  assert.throws(
    () => planNetwork({ ip: "10.1.2.10", prefix: 24, mac: "52:54:00:12:34" }),
    rejectsWith("network.mac", /not a MAC address/),
  );
});

Deno.test("chooseNic() picks by MAC when given, else eth0, and never lo", () => {
  assert.equal(chooseNic([LO, ETH0, ETH1], "02:00:00:00:00:07"), "eth1");
  assert.equal(chooseNic([LO, ETH0, ETH1], ETH0.mac), "eth0");
  assert.equal(chooseNic([LO, ETH1], ETH0.mac), undefined, "no NIC with that MAC yet");
  assert.equal(chooseNic([LO], LO.mac), undefined, "lo is never the NIC");
  assert.equal(chooseNic([LO, ETH1, ETH0]), "eth0");
  assert.equal(chooseNic([LO, ETH1]), undefined, "without a MAC only eth0 will do");
  assert.equal(chooseNic([]), undefined);
});

Deno.test("networkLine(), wantedNic() and planSteps() word the plan", () => {
  const withGw = planNetwork({ ip: "192.168.127.10", prefix: 24, gateway: "192.168.127.1" });
  assert.equal(networkLine("eth0", withGw), "eth0 192.168.127.10/24 via 192.168.127.1");
  const noGw = planNetwork({ ip: "10.0.0.2", prefix: 16, mac: ETH1.mac });
  assert.equal(networkLine("eth1", noGw), "eth1 10.0.0.2/16");
  assert.equal(wantedNic(withGw), "eth0");
  assert.equal(wantedNic(noGw), "the NIC with MAC 02:00:00:00:00:07");
  assert.deepEqual(planSteps(withGw, 5000), [
    "bring lo up",
    "wait up to 5000 ms for eth0",
    "bring eth0 up",
    "add 192.168.127.10/24 to eth0",
    "add the default route via 192.168.127.1 on eth0",
  ]);
  assert.deepEqual(planSteps(noGw, 250), [
    "bring lo up",
    "wait up to 250 ms for the NIC with MAC 02:00:00:00:00:07",
    "bring the NIC with MAC 02:00:00:00:00:07 up",
    "add 10.0.0.2/16 to the NIC with MAC 02:00:00:00:00:07",
  ]);
});

Deno.test("configureNetwork() waits for the NIC, then lo, NIC, address, route, one log line", async () => {
  const fake = fakeSystem();
  // The NIC appears on the third look.
  const { ops, calls, polls } = fakeOps([[LO], [LO], [LO, ETH1]]);
  const net = await configureNetwork(
    fake,
    { ip: "10.1.2.10", prefix: 24, gateway: "10.1.2.1", mac: "02:00:00:00:00:07" },
    { ops, timeoutMs: 5000, pollMs: 1 },
  );
  assert.equal(polls(), 3);
  assert.deepEqual(calls, [
    "up lo",
    "up eth1",
    "address 10.1.2.10/24 eth1",
    "route default via 10.1.2.1 dev eth1",
  ]);
  assert.deepEqual(fake.logs, ["eth1 10.1.2.10/24 via 10.1.2.1"]);
  assert.equal(net.nic, "eth1");
  assert.equal(net.nicMac, ETH1.mac);
  assert.equal(net.ip, "10.1.2.10");
});

Deno.test("configureNetwork() without a gateway adds no route", async () => {
  const { ops, calls } = fakeOps([[LO, ETH0]]);
  await configureNetwork(fakeSystem(), { ip: "10.9.0.2", prefix: 30 }, { ops, pollMs: 1 });
  assert.deepEqual(calls, ["up lo", "up eth0", "address 10.9.0.2/30 eth0"]);
});

Deno.test("configureNetwork() gives up on a missing NIC with ENODEV and the links it saw", async () => {
  const { ops, calls } = fakeOps([[LO, ETH0]]);
  const started = performance.now();
  await assert.rejects(
    () =>
      configureNetwork(fakeSystem(), { ip: "10.1.2.10", prefix: 24, mac: ETH1.mac }, {
        ops,
        timeoutMs: 60,
        pollMs: 5,
      }),
    (err: VolantError) => {
      assert.equal(err.code, "network_error");
      assert.match(
        err.message,
        /^network: ENODEV: no NIC with MAC 02:00:00:00:00:07 appeared within 60 ms \(links: lo 00:00:00:00:00:00, eth0 52:54:00:12:34:56\)/,
      );
      assert.equal(err.details?.errno, "ENODEV");
      return true;
    },
  );
  assert.ok(performance.now() - started >= 60, "waited the whole timeout");
  assert.deepEqual(calls, ["up lo"], "nothing after lo was touched");
});

Deno.test("configureNetwork() passes a netlink failure on with its errno name", async () => {
  const error = netlinkError(-101, {
    op: "add route",
    subject: "default via 10.1.2.1 dev eth0",
    phrases: { ENETUNREACH: "gateway 10.1.2.1 is not reachable" },
  });
  const { ops } = fakeOps([[LO, ETH0]], { op: "addDefaultRoute", error });
  await assert.rejects(
    () =>
      configureNetwork(fakeSystem(), { ip: "10.1.2.10", prefix: 24, gateway: "10.1.2.1" }, {
        ops,
      }),
    (err: VolantError) =>
      err.code === "network_error" &&
      err.message === "network: ENETUNREACH: gateway 10.1.2.1 is not reachable" &&
      err.details?.errno === "ENETUNREACH" && err.cause === error,
  );
});

Deno.test("configureNetwork() rejects a bad config before touching anything", async () => {
  const { ops, calls } = fakeOps([[LO, ETH0]]);
  await assert.rejects(
    () =>
      configureNetwork(fakeSystem(), { ip: "10.1.2.10", prefix: 24, gateway: "10.2.0.1" }, { ops }),
    /^VolantError: network: network\.gateway: 10\.2\.0\.1 is not in 10\.1\.2\.0\/24/,
  );
  assert.deepEqual(calls, []);
});

Deno.test("configureNetwork() in a dry run only says what it would do", async () => {
  const lines: string[] = [];
  const { ops, calls, polls } = fakeOps([[]]);
  const net = await configureNetwork(
    drySystem({ log: (m) => lines.push(m) }),
    { ip: "10.1.2.10", prefix: 24, gateway: "10.1.2.1" },
    { ops, timeoutMs: 5000 },
  );
  assert.deepEqual(lines, [
    "dry run: would bring lo up",
    "dry run: would wait up to 5000 ms for eth0",
    "dry run: would bring eth0 up",
    "dry run: would add 10.1.2.10/24 to eth0",
    "dry run: would add the default route via 10.1.2.1 on eth0",
  ]);
  assert.deepEqual(calls, []);
  assert.equal(polls(), 0);
  assert.equal(net.ip, "10.1.2.10");
});

Deno.test("readLinks() reads names and MACs from a sysfs-like tree, sorted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kestrel-sysnet-" });
  try {
    for (const [name, mac] of [["lo", "00:00:00:00:00:00\n"], ["eth0", "52:54:00:AA:BB:CC\n"]]) {
      await Deno.mkdir(`${dir}/${name}`);
      await Deno.writeTextFile(`${dir}/${name}/address`, mac!);
    }
    await Deno.mkdir(`${dir}/sit0`); // no address file
    assert.deepEqual(await readLinks(dir), [
      { name: "eth0", mac: "52:54:00:aa:bb:cc" },
      { name: "lo", mac: "00:00:00:00:00:00" },
      { name: "sit0", mac: undefined },
    ]);
    assert.deepEqual(await readLinks(`${dir}/missing`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Configures the network of namespace `ns` from a child process run inside it. */
async function configureInNetns(ns: string, net: object): Promise<{ ok: boolean; out: string }> {
  const script = `
    import { configureNetwork, realNetOps } from ${
    JSON.stringify(import.meta.resolve("./network.ts"))
  };
    import { fakeSystem } from ${JSON.stringify(import.meta.resolve("./_fake_system.ts"))};
    const system = fakeSystem();
    try {
      const r = await configureNetwork(system, ${
    JSON.stringify(net)
  }, { ops: realNetOps(), timeoutMs: 2000 });
      console.log(JSON.stringify({ logs: system.logs, nic: r.nic, mac: r.nicMac }));
    } catch (err) {
      console.log(JSON.stringify({ error: err.message, errno: err.details?.errno }));
      Deno.exit(1);
    }
  `;
  return await evalInNetns(ns, script);
}

const netnsSkip = Deno.uid() !== 0 ? "network namespaces need root" : undefined;

Deno.test({
  name: "configureNetwork() with the real netlink ops configures a namespace's eth0 (veth)" +
    (netnsSkip === undefined ? "" : ` (skipped: ${netnsSkip})`),
  ignore: netnsSkip !== undefined,
  fn: async () => {
    const { createNetns, deleteNetns } = await import("../hypervisor/testing/netns.ts");
    const ns = await createNetns();
    try {
      const ip = (...args: string[]) =>
        new Deno.Command("ip", { args: ["-n", ns, ...args] }).output();
      assert.ok((await ip("link", "set", "lo", "down")).success);
      const mac = "52:54:00:aa:bb:01";
      const made = await ip(
        "link",
        "add",
        "eth0",
        "address",
        mac,
        "type",
        "veth",
        "peer",
        "name",
        "peer0",
      );
      assert.ok(made.success, "ip link add veth");
      assert.ok((await ip("link", "set", "peer0", "up")).success);
      const net = { ip: "10.77.3.10", prefix: 24, gateway: "10.77.3.1", mac };
      const first = await configureInNetns(ns, net);
      assert.ok(first.ok, first.out);
      assert.deepEqual(JSON.parse(first.out), {
        logs: ["eth0 10.77.3.10/24 via 10.77.3.1"],
        nic: "eth0",
        mac,
      });
      const links = await ipJson(ns, "addr", "show") as Array<
        {
          ifname: string;
          flags: string[];
          addr_info: Array<{ family: string; local: string; prefixlen: number }>;
        }
      >;
      const eth0 = links.find((l) => l.ifname === "eth0")!;
      assert.ok(eth0.flags.includes("UP"), JSON.stringify(eth0));
      assert.ok(
        eth0.addr_info.some((a) =>
          a.family === "inet" && a.local === "10.77.3.10" && a.prefixlen === 24
        ),
        JSON.stringify(eth0.addr_info),
      );
      assert.ok(links.find((l) => l.ifname === "lo")!.flags.includes("UP"), "lo brought up");
      const routes = await ipJson(ns, "route", "show", "default") as Array<
        { gateway: string; dev: string }
      >;
      assert.deepEqual(routes.map((r) => [r.gateway, r.dev]), [["10.77.3.1", "eth0"]]);

      // A second run (stage 0 configured the network before kestrel) finds the address and the
      // route there: both kept, nothing doubled.
      const second = await configureInNetns(ns, net);
      assert.ok(second.ok, second.out);
      const again = await ipJson(ns, "route", "show", "default") as Array<
        { gateway: string; dev: string }
      >;
      assert.deepEqual(again.map((r) => [r.gateway, r.dev]), [["10.77.3.1", "eth0"]]);
    } finally {
      await deleteNetns(ns);
    }
  },
});
