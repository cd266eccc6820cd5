import assert from "node:assert/strict";
import { VolantError } from "../../schema/error.ts";
import { ipJson, kernelTest, withTestNamespace } from "../testing.ts";
import { withNetns } from "../netns.ts";
import { addAddress, deleteAddress, ensureAddress, listAddresses } from "./address.ts";
import { NetlinkError } from "./error.ts";
import { createVeth, setLinkUp } from "./mod.ts";
import { addRoute, deleteRoute, listRoutes } from "./route.ts";

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
}

function errno(fn: () => unknown, name: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof NetlinkError, String(err));
    assert.equal(err.errno, name);
    assert.match(err.message, pattern);
    return true;
  });
}

kernelTest("eth0-style setup: address, up, default route, as kestrel does", async () => {
  await withTestNamespace((ns) => {
    withNetns(ns, () => {
      // The veth end "eth0" plays the guest NIC; its peer stays down-side of the pair.
      createVeth("eth0", "peer0");
      setLinkUp("peer0");
      setLinkUp("eth0");
      addAddress("eth0", "10.66.0.2/24");
      addRoute({ dst: "default", gateway: "10.66.0.1", dev: "eth0" });
      addRoute({ dst: "10.200.0.0/16", gateway: "10.66.0.254", metric: 50 });
      addRoute({ dst: "10.201.0.0/16", dev: "eth0" });
    });
    const routes = ipJson<IpRoute[]>(ns, "route", "show");
    const byDst = new Map(routes.map((r) => [r.dst, r]));
    assert.equal(byDst.get("default")?.gateway, "10.66.0.1");
    assert.equal(byDst.get("default")?.dev, "eth0");
    assert.equal(byDst.get("10.200.0.0/16")?.gateway, "10.66.0.254");
    assert.equal(byDst.get("10.200.0.0/16")?.dev, "eth0", "dev resolved by the kernel");
    assert.equal(byDst.get("10.200.0.0/16")?.metric, 50);
    assert.equal(byDst.get("10.201.0.0/16")?.scope, "link");
    assert.equal(byDst.get("10.66.0.0/24")?.protocol, "kernel");

    withNetns(ns, () => {
      // Our listing agrees with ip's.
      const ours = listRoutes();
      assert.deepEqual(
        ours.map((r) => [r.dst, r.gateway ?? null, r.dev ?? null]).sort(),
        routes.map((r) => [r.dst, r.gateway ?? null, r.dev ?? null]).sort(),
      );
      assert.equal(ours.find((r) => r.dst === "10.66.0.0/24")?.src, "10.66.0.2");
      assert.equal(ours.find((r) => r.dst === "10.66.0.0/24")?.protocol, "kernel");
      assert.equal(ours.find((r) => r.dst === "default")?.protocol, "boot");
      assert.equal(ours.find((r) => r.dst === "10.200.0.0/16")?.metric, 50);

      errno(
        () => addRoute({ dst: "default", gateway: "10.66.0.1", dev: "eth0" }),
        "EEXIST",
        /^EEXIST: route default via 10\.66\.0\.1 dev eth0 already exists/,
      );
      deleteRoute({ dst: "default" });
      errno(
        () => deleteRoute({ dst: "default" }),
        "ESRCH",
        /^ESRCH: route default does not exist/,
      );
      errno(
        () => addRoute({ dst: "default", gateway: "192.0.2.1" }),
        "ENETUNREACH",
        /gateway 192\.0\.2\.1 of route default via 192\.0\.2\.1 is not reachable/,
      );
      errno(
        () => addRoute({ dst: "default", dev: "nope0" }),
        "ENODEV",
        /link nope0 does not exist/,
      );
      assert.throws(() => addRoute({ dst: "default" }), (err: unknown) => {
        assert.ok(err instanceof VolantError && err.code === "invalid_argument");
        assert.match(err.message, /give a gateway, a dev, or both/);
        return true;
      });
      assert.throws(() => addRoute({ dst: "10.1.2.3/16", dev: "eth0" }), /dst: .*host bits/);
    });
    const after = ipJson<IpRoute[]>(ns, "route", "show");
    assert.equal(after.find((r) => r.dst === "default"), undefined);
  });
});

kernelTest("addresses: ensure, duplicate, delete, list agree with ip addr", async () => {
  await withTestNamespace((ns) => {
    withNetns(ns, () => {
      createVeth("va0", "va1");
      assert.equal(ensureAddress("va0", "10.5.0.1/24"), true);
      assert.equal(ensureAddress("va0", "10.5.0.1/24"), false);
      addAddress("va0", "10.6.0.1/16");
      addAddress("va1", "172.20.0.9/30");
      errno(
        () => addAddress("va0", "10.5.0.1/24"),
        "EEXIST",
        /^EEXIST: address 10\.5\.0\.1\/24 already on link va0/,
      );
      errno(
        () => deleteAddress("va0", "10.9.9.9/24"),
        "EADDRNOTAVAIL",
        /^EADDRNOTAVAIL: address 10\.9\.9\.9\/24 is not on link va0/,
      );
      assert.throws(() => addAddress("va0", "10.5.0.1"), /no prefix length/);
      assert.throws(() => addAddress("va0", "fd00::1/64"), /IPv6/);
    });
    const ip = ipJson<
      { ifname: string; addr_info: { family: string; local: string; prefixlen: number }[] }[]
    >(
      ns,
      "addr",
      "show",
    );
    const theirs = ip.flatMap((l) =>
      l.addr_info.filter((a) => a.family === "inet").map((a) =>
        `${l.ifname} ${a.local}/${a.prefixlen}`
      )
    ).sort();
    withNetns(ns, () => {
      const ours = listAddresses().filter((a) => a.family === "inet").map((a) =>
        `${a.link} ${a.cidr}`
      )
        .sort();
      assert.deepEqual(ours, theirs);
      assert.ok(theirs.includes("va1 172.20.0.9/30"));
      assert.deepEqual(listAddresses("va0").map((a) => a.cidr).sort(), [
        "10.5.0.1/24",
        "10.6.0.1/16",
      ]);
      assert.ok(listAddresses().some((a) => a.family === "inet6" && a.cidr === "::1/128"));
      deleteAddress("va0", "10.6.0.1/16");
      assert.deepEqual(listAddresses("va0").map((a) => a.cidr), ["10.5.0.1/24"]);
    });
  });
});
