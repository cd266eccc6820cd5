import assert from "node:assert/strict";
import { ipJson, kernelTest, withTestNamespace } from "./testing.ts";
import { withNetns } from "./netns.ts";
import { NetlinkError } from "./netlink/error.ts";
import { createBridge, createVeth, getLink, setLinkUp, setMaster } from "./netlink/mod.ts";
import { createTap, deleteTap, ensureTap } from "./tap.ts";

interface IpTun {
  ifname: string;
  flags: string[];
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

function tunInfo(ns: string, name: string): Record<string, unknown> | undefined {
  return ipJson<IpTun[]>(ns, "-d", "link", "show").find((l) => l.ifname === name)?.linkinfo
    ?.info_data;
}

const QEMU = "qemu-system-x86_64";
const HAS_QEMU = (() => {
  try {
    return new Deno.Command(QEMU, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

kernelTest(
  "createTap() options: vnet_hdr, owner, group, multi-queue; ensureTap; deleteTap",
  async () => {
    await withTestNamespace((ns) => {
      withNetns(ns, () => {
        createTap("vt-a");
        createTap("vt-b", { vnetHdr: false, owner: 54321, group: 54322 });
        createTap("vt-c", { multiQueue: true });
      });
      assert.deepEqual(tunInfo(ns, "vt-a"), {
        type: "tap",
        pi: false,
        vnet_hdr: true,
        multi_queue: false,
        persist: true,
      });
      const b = tunInfo(ns, "vt-b");
      assert.equal(b?.vnet_hdr, false);
      assert.equal(b?.user, 54321); // ip -j prints a uid without a passwd entry as a number
      assert.equal(b?.group, 54322);
      assert.equal(tunInfo(ns, "vt-c")?.multi_queue, true);

      withNetns(ns, () => {
        assert.equal(getLink("vt-b")?.tun?.owner, 54321);
        assert.equal(getLink("vt-b")?.tun?.group, 54322);
        assert.equal(getLink("vt-a")?.tun?.owner, undefined);
        assert.throws(() => createTap("vt-a"), (err: unknown) => {
          assert.ok(err instanceof NetlinkError);
          assert.equal(err.errno, "EEXIST");
          assert.equal(err.message, "EEXIST: link vt-a already exists");
          return true;
        });
        assert.equal(ensureTap("vt-a"), false);
        assert.equal(ensureTap("vt-d"), true);
        createVeth("ve0", "ve1");
        assert.throws(() => ensureTap("ve0"), /link ve0 exists but is veth, not a tap/);
        assert.equal(deleteTap("vt-a"), true);
        assert.equal(deleteTap("vt-a", { missingOk: true }), false);
        assert.throws(() => deleteTap("vt-a"), /ENODEV: link vt-a does not exist/);
      });
      assert.equal(tunInfo(ns, "vt-a"), undefined);
      assert.equal(tunInfo(ns, "vt-d")?.persist, true);
    });
  },
);

async function readLine(conn: Deno.UnixConn, buf: { text: string }): Promise<string> {
  const chunk = new Uint8Array(4096);
  while (!buf.text.includes("\n")) {
    const n = await conn.read(chunk);
    if (n === null) throw new Error(`QMP closed; got ${JSON.stringify(buf.text)}`);
    buf.text += new TextDecoder().decode(chunk.subarray(0, n));
  }
  const at = buf.text.indexOf("\n");
  const line = buf.text.slice(0, at);
  buf.text = buf.text.slice(at + 1);
  return line;
}

/** The next QMP reply (skipping asynchronous events). */
async function reply(conn: Deno.UnixConn, buf: { text: string }): Promise<Record<string, unknown>> {
  for (;;) {
    const msg = JSON.parse(await readLine(conn, buf)) as Record<string, unknown>;
    if (!("event" in msg)) return msg;
  }
}

async function send(conn: Deno.UnixConn, command: Record<string, unknown>): Promise<void> {
  await conn.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
}

Deno.test({
  name: HAS_QEMU
    ? "a tap from createTap() is usable by QEMU with vnet_hdr=on"
    : `a tap from createTap() is usable by QEMU (skipped: ${QEMU} not installed)`,
  ignore: !HAS_QEMU,
  fn: async () => {
    await withTestNamespace(async (ns) => {
      withNetns(ns, () => {
        createBridge("vbr0");
        createTap("vt-qemu");
        setMaster("vt-qemu", "vbr0");
        setLinkUp("vbr0");
        setLinkUp("vt-qemu");
        assert.equal(getLink("vt-qemu")?.lowerUp, false, "no carrier before QEMU attaches");
      });
      const dir = await Deno.makeTempDir({ prefix: "volant-net-qemu-" });
      const sock = `${dir}/qmp.sock`;
      const child = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          QEMU,
          "-M",
          "microvm",
          "-accel",
          "tcg",
          "-nodefaults",
          "-no-user-config",
          "-display",
          "none",
          "-netdev",
          "tap,id=n0,ifname=vt-qemu,script=no,downscript=no,vnet_hdr=on",
          "-device",
          "virtio-net-device,netdev=n0,mac=02:00:00:00:00:01",
          "-S",
          "-qmp",
          `unix:${sock},server=on,wait=off`,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn(); // `ip netns exec` execs QEMU: this pid is QEMU's
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, 60_000);
      const output = Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
      ]);
      let conn: Deno.UnixConn | undefined;
      try {
        const deadline = Date.now() + 60_000;
        while (conn === undefined) {
          try {
            conn = await Deno.connect({ transport: "unix", path: sock });
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        const buf = { text: "" };
        const greeting = JSON.parse(await readLine(conn, buf)) as { QMP?: { version?: unknown } };
        assert.ok(greeting.QMP?.version, "QMP greeting");
        await send(conn, { execute: "qmp_capabilities" });
        assert.deepEqual(await reply(conn, buf), { return: {} });
        await send(conn, {
          execute: "human-monitor-command",
          arguments: { "command-line": "info network" },
        });
        const info = (await reply(conn, buf)).return as string;
        assert.match(info, /ifname=vt-qemu/);
        withNetns(ns, () => {
          assert.equal(getLink("vt-qemu")?.lowerUp, true, "carrier once QEMU holds the tap");
        });
        await send(conn, { execute: "quit" });
        const status = await child.status;
        const [, stderr] = await output;
        assert.equal(status.code, 0, stderr);
        assert.doesNotMatch(stderr, /vnet_hdr|error/i);
      } finally {
        conn?.close();
        clearTimeout(timer);
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
        await child.status;
        await output.catch(() => undefined);
        await Deno.remove(dir, { recursive: true });
      }
      // The tap outlives QEMU: it is persistent.
      assert.equal(tunInfo(ns, "vt-qemu")?.persist, true);
    });
  },
});
