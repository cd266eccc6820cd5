import assert from "node:assert/strict";
import { VolantError } from "../../schema/error.ts";
import { ipJson, kernelTest, withTestNamespace } from "../testing.ts";
import { withNetns } from "../netns.ts";
import { createTap } from "../tap.ts";
import { addAddress, listAddresses } from "./address.ts";
import { NetlinkError } from "./error.ts";
import { RTM_GETLINK } from "./_constants.ts";
import { MessageBuilder, writeIfInfoMsg } from "./_message.ts";
import { NetlinkSocket } from "./_socket.ts";
import {
  createBridge,
  createLink,
  createVeth,
  deleteLink,
  ensureBridge,
  getLink,
  listLinks,
  setLink,
  setLinkDown,
  setLinkUp,
  setMaster,
  setNoMaster,
} from "./mod.ts";

interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  master?: string;
  operstate: string;
  address?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: Record<string, unknown>;
    info_slave_kind?: string;
  };
}

function ipLink(ns: string, name: string): IpLink | undefined {
  return ipJson<IpLink[]>(ns, "-d", "link", "show").find((l) => l.ifname === name);
}

function netlinkFails(fn: () => unknown, errno: string, message: string | RegExp): NetlinkError {
  let caught: NetlinkError | undefined;
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof NetlinkError, String(err));
    assert.equal(err.errno, errno);
    assert.equal(err.code, "network_error");
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    caught = err;
    return true;
  });
  return caught!;
}

kernelTest("bridge + tap: create, attach, up, address; ip agrees; delete", async () => {
  await withTestNamespace((ns) => {
    withNetns(ns, () => {
      createBridge("vbr0");
      createTap("vt-web");
      setMaster("vt-web", "vbr0");
      setLinkUp("vbr0");
      setLinkUp("vt-web");
      addAddress("vbr0", "10.77.1.1/24");
    });

    const br = ipLink(ns, "vbr0");
    const tap = ipLink(ns, "vt-web");
    assert.ok(br && tap);
    assert.equal(br.linkinfo?.info_kind, "bridge");
    assert.ok(br.flags.includes("UP"));
    assert.equal(tap.master, "vbr0");
    assert.ok(tap.flags.includes("UP"));
    assert.equal(tap.linkinfo?.info_kind, "tun");
    assert.equal(tap.linkinfo?.info_data?.type, "tap");
    assert.equal(tap.linkinfo?.info_data?.vnet_hdr, true);
    assert.equal(tap.linkinfo?.info_data?.persist, true);
    assert.equal(tap.linkinfo?.info_data?.pi, false);
    assert.equal(tap.linkinfo?.info_slave_kind, "bridge");
    const addrs = ipJson<
      {
        ifname: string;
        addr_info: { family: string; local: string; prefixlen: number; broadcast?: string }[];
      }[]
    >(ns, "addr", "show", "dev", "vbr0");
    const v4 = addrs[0]?.addr_info.filter((a) => a.family === "inet");
    assert.deepEqual(v4?.map((a) => [a.local, a.prefixlen, a.broadcast]), [[
      "10.77.1.1",
      24,
      "10.77.1.255",
    ]]);

    // Our own view matches ip's.
    withNetns(ns, () => {
      const link = getLink("vt-web");
      assert.ok(link);
      assert.equal(link.index, tap.ifindex);
      assert.equal(link.masterIndex, br.ifindex);
      assert.equal(link.kind, "tun");
      assert.equal(link.up, true);
      assert.equal(link.mtu, tap.mtu);
      assert.equal(link.mac, tap.address);
      assert.deepEqual(link.tun && { ...link.tun }, {
        type: "tap",
        vnetHdr: true,
        persist: true,
        multiQueue: false,
        pi: false,
        owner: undefined,
        group: undefined,
      });
      const bridge = getLink("vbr0");
      assert.equal(bridge?.kind, "bridge");
      assert.equal(bridge?.masterIndex, undefined);
      assert.deepEqual(
        listAddresses("vbr0").filter((a) => a.family === "inet").map((a) => a.cidr),
        [
          "10.77.1.1/24",
        ],
      );

      setNoMaster("vt-web");
      setLinkDown("vt-web");
    });
    const detached = ipLink(ns, "vt-web");
    assert.equal(detached?.master, undefined);
    assert.ok(!detached?.flags.includes("UP"));

    withNetns(ns, () => {
      assert.equal(deleteLink("vt-web"), true);
      assert.equal(deleteLink("vbr0"), true);
      assert.equal(getLink("vt-web"), undefined);
    });
    assert.equal(ipLink(ns, "vt-web"), undefined);
    assert.equal(ipLink(ns, "vbr0"), undefined);
  });
});

kernelTest("listLinks() reports the same links as ip link", async () => {
  await withTestNamespace((ns) => {
    const ours = withNetns(ns, () => {
      createBridge("br-a");
      createVeth("va0", "va1");
      createLink({
        name: "vb0",
        kind: "veth",
        peer: "vb1",
        mtu: 1400,
        mac: "02:00:00:00:00:42",
        up: true,
      });
      return listLinks();
    });
    const theirs = ipJson<IpLink[]>(ns, "-d", "link", "show");
    assert.deepEqual(
      ours.map((l) => [l.index, l.name, l.mtu, l.kind ?? null]).sort(),
      theirs.map((l) => [l.ifindex, l.ifname, l.mtu, l.linkinfo?.info_kind ?? null]).sort(),
    );
    const veth = ours.find((l) => l.name === "vb0");
    assert.equal(veth?.mac, "02:00:00:00:00:42");
    assert.equal(veth?.mtu, 1400);
    assert.equal(veth?.up, true);
    assert.equal(veth?.kind, "veth");
  });
});

kernelTest("listLinks() collects a multi-part dump", async () => {
  await withTestNamespace((ns) => {
    const { links, datagrams } = withNetns(ns, () => {
      for (let i = 0; i < 60; i++) createVeth(`va${i}`, `vb${i}`);
      const sock = NetlinkSocket.open();
      try {
        const replies = sock.dump(writeIfInfoMsg(new MessageBuilder(RTM_GETLINK), {}));
        assert.ok(replies.length >= 121);
        return { links: listLinks(), datagrams: sock.datagrams };
      } finally {
        sock.close();
      }
    });
    assert.ok(datagrams > 1, `expected several datagrams, got ${datagrams}`);
    assert.equal(links.length, 121);
    const theirs = ipJson<IpLink[]>(ns, "link", "show").map((l) => l.ifname).sort();
    assert.deepEqual(links.map((l) => l.name).sort(), theirs);
  });
});

kernelTest("duplicate, missing and refused operations give clear errors", async () => {
  await withTestNamespace((ns) => {
    withNetns(ns, () => {
      createBridge("vbr0");
      const dup = netlinkFails(
        () => createBridge("vbr0"),
        "EEXIST",
        "EEXIST: link vbr0 already exists",
      );
      assert.deepEqual({ ...dup.details, kernel: undefined }, {
        errno: "EEXIST",
        op: "create bridge",
        link: "vbr0",
        kind: "bridge",
        kernel: undefined,
      });
      netlinkFails(() => setLinkUp("nope0"), "ENODEV", "ENODEV: link nope0 does not exist");
      netlinkFails(
        () => setMaster("vbr0", "nope0"),
        "ENODEV",
        "ENODEV: bridge nope0 does not exist",
      );
      netlinkFails(() => setMaster("nope0", "vbr0"), "ENODEV", "ENODEV: link nope0 does not exist");
      netlinkFails(() => deleteLink("nope0"), "ENODEV", "ENODEV: link nope0 does not exist");
      assert.equal(deleteLink("nope0", { missingOk: true }), false);
      netlinkFails(
        () => addAddress("nope0", "10.0.0.1/24"),
        "ENODEV",
        /^ENODEV: link nope0 does not exist/,
      );
      netlinkFails(
        () => createLink({ name: "x0", kind: "no-such-kind" }),
        "EOPNOTSUPP",
        /kind "no-such-kind"/,
      );
      // A veth cannot be a master.
      createVeth("ve0", "ve1");
      const notBridge = netlinkFails(
        () => setMaster("ve1", "ve0"),
        "EOPNOTSUPP",
        /ve0 cannot be a master of ve1/,
      );
      assert.equal(notBridge.details?.link, "ve1");
      netlinkFails(
        () => createVeth("ve2", "ve0"),
        "EEXIST",
        "EEXIST: link ve2 or ve0 already exists",
      );
      netlinkFails(() => deleteLink("lo"), "EOPNOTSUPP", /lo cannot be deleted/);
      assert.equal(getLink("nope0"), undefined);
    });
    assert.equal(ipLink(ns, "x0"), undefined);
  });
});

kernelTest("ensureBridge() creates once and refuses a non-bridge of that name", async () => {
  await withTestNamespace((ns) => {
    withNetns(ns, () => {
      assert.equal(ensureBridge("vbr0"), true);
      assert.equal(ensureBridge("vbr0"), false);
      createVeth("ve0", "ve1");
      netlinkFails(
        () => ensureBridge("ve0"),
        "EEXIST",
        /link ve0 exists but is a veth, not a bridge/,
      );
      setLink("vbr0", { mtu: 1400, up: true });
    });
    assert.equal(ipLink(ns, "vbr0")?.mtu, 1400);
    assert.equal(ipLink(ns, "vbr0")?.linkinfo?.info_kind, "bridge");
  });
});

kernelTest("bad names are refused before any syscall", async () => {
  const bad = "a-sixteen-chars0"; // 16 bytes
  for (
    const fn of [
      () => createBridge(bad),
      () => getLink(bad),
      () => deleteLink(bad),
      () => setLinkUp(bad),
      () => setMaster("ok", bad),
      () => createTap(bad),
      () => createVeth("ok", bad),
    ]
  ) {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof VolantError && !(err instanceof NetlinkError), String(err));
      assert.equal(err.code, "invalid_argument");
      assert.match(err.message, /"a-sixteen-chars0" is 16 bytes long \(at most 15\)/);
      return true;
    });
  }
  // Proof that the name check comes before any syscall: in a child WITHOUT --allow-ffi
  // (`deno run`, not `deno eval`, which grants everything), loading libc fails, yet the bad
  // name is reported first; a read-only getLink("lo") shows that FFI is really denied. The
  // child also runs inside a throwaway namespace, in case the permission model did not hold.
  await withTestNamespace(async (ns) => {
    const dir = await Deno.makeTempDir({ prefix: "volant-net-" });
    try {
      const script = `${dir}/probe.ts`;
      await Deno.writeTextFile(
        script,
        `import { createBridge, getLink } from "${new URL("./mod.ts", import.meta.url).href}";
try { createBridge(${JSON.stringify(bad)}); } catch (e) { console.log(e.code); }
try { getLink("lo"); console.log("ffi allowed"); } catch (e) { console.log(e.code); }`,
      );
      const out = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          "run",
          "--no-check",
          "--no-prompt",
          `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
          "--allow-read",
          "--allow-env",
          script,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
      assert.deepEqual(
        lines,
        ["invalid_argument", "internal"],
        new TextDecoder().decode(out.stderr),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
