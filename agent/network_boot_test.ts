/**
 * A real boot of the current kestrel with networking: the guest is built in a temp dir from a
 * fresh `deno bundle agent/main.ts`, booted under QEMU (one VM) on a tap attached to a bridge
 * inside a network namespace made for the test, its boot config (with kestrel's secret) in a
 * per-VM initramfs archive as the daemon writes it. From the namespace, its /healthz answers
 * on the address of the boot config and kestrel's port, only with the secret; a net check from
 * the guest reaches a server in the namespace but not kestrel on the guest's loopback; and the
 * driver's graceful stop still ends it through the power button.
 */
import { wgetInNetns } from "../net/testing.ts";
import assert from "node:assert/strict";
import { AGENT_PORT, AgentHealth, NetCheckResult } from "../schema/agent.ts";
import { encodeBootConfig, READY_MARKER, ReadyReport } from "../schema/boot_config.ts";
import { readHostCmdline } from "../daemon/host.ts";
import type { VmmHandle, VmSpec } from "../hypervisor/driver.ts";
import { isAlive } from "../hypervisor/process/mod.ts";
import { openQemuDriver } from "../hypervisor/qemu/mod.ts";
import { testAccel } from "../daemon/boot_probe/testing.ts";
import { processesMentioning } from "../hypervisor/testing/protocol.ts";
import { createNetns, deleteNetns } from "../hypervisor/testing/netns.ts";
import { buildGuest, writeBootInitramfs } from "../kernels/mod.ts";
import { bootSkipReason, KERNEL_CACHE } from "../kernels/testing.ts";
import { addAddress, createBridge, deleteLink, setLink, setLinkUp } from "../net/netlink/mod.ts";
import { createTap, deleteTap } from "../net/tap.ts";
import { withNetns } from "../net/netns.ts";

const TIMEOUT_MS = 90_000;
const SKIP = bootSkipReason() ??
  (new Deno.Command("busybox", { args: ["--help"], stdout: "null", stderr: "null" })
      .outputSync().success
    ? undefined
    : "busybox is not installed (apt-get install busybox-static)");
if (SKIP) console.error(`network_boot_test: skipped: ${SKIP}`);

const decoder = new TextDecoder();

/** kestrel's secret in this test's guest (32 random bytes, base64url). */
const SECRET = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))
  .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

/** A request to kestrel (with its secret unless `anonymous`) from the namespace. */
function wget(ns: string, url: string, postData?: string, anonymous = false): Promise<string> {
  return wgetInNetns(ns, url, {
    ...(postData === undefined ? {} : { postData }),
    headers: anonymous ? [] : [`authorization: Bearer ${SECRET}`],
  });
}

/** What the namespace and the guest console look like, for a failure message. */
async function diagnose(ns: string, guestIp: string, serialLog: string): Promise<string> {
  const run = async (...args: string[]) => {
    const out = await new Deno.Command("ip", {
      args: ["netns", "exec", ns, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return `$ ${args.join(" ")}\n${decoder.decode(out.stdout)}${decoder.decode(out.stderr)}`;
  };
  const parts = [
    await run("ip", "addr"),
    await run("ip", "neigh"),
    await run("busybox", "ping", "-c", "1", "-W", "3", guestIp),
    `serial:\n${(await Deno.readTextFile(serialLog).catch(() => "")).slice(-3000)}`,
  ];
  return parts.join("\n");
}

/** Waits for a serial line starting with `prefix`; throws when QEMU exits first or on timeout. */
async function serialLine(log: string, handle: VmmHandle, prefix: string): Promise<string> {
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(log).catch(() => "");
    const line = text.split("\n").find((l) => l.startsWith(prefix));
    if (line) return line;
    if (!(await isAlive(handle.pid, handle.startTime))) {
      throw new Error(`QEMU exited before ${prefix}:\n${text.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${prefix} line within ${TIMEOUT_MS} ms`);
}

function randomByte(min: number, max: number): number {
  return min + (crypto.getRandomValues(new Uint8Array(1))[0]! % (max - min + 1));
}

Deno.test({
  name:
    "kestrel configures eth0 in a real guest, serves /healthz and net checks, stops gracefully" +
    (SKIP === undefined ? "" : ` (skipped: ${SKIP})`),
  ignore: SKIP !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "volant-kestrel-net-" });
    let ns: string | undefined;
    let httpd: Deno.ChildProcess | undefined;
    const subnet = `10.${randomByte(200, 250)}.${randomByte(1, 254)}`;
    const guestIp = `${subnet}.10`;
    const hostIp = `${subnet}.1`;
    const mac = `52:54:00:${
      [1, 2, 3].map(() => randomByte(0, 255).toString(16).padStart(2, "0")).join(":")
    }`;
    try {
      // The guest: the current kestrel, bundled like `./volant build` does.
      const bundle = `${dir}/kestrel.js`;
      const bundled = await new Deno.Command(Deno.execPath(), {
        args: ["bundle", "--quiet", "--platform=deno", "-o", bundle, "agent/main.ts"],
        cwd: new URL("..", import.meta.url).pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(bundled.success, decoder.decode(bundled.stderr));
      const guest = `${dir}/guest`;
      await buildGuest({ dir: guest, bundle, kernelDir: KERNEL_CACHE });
      console.error(`kestrel bundle: ${(await Deno.stat(bundle)).size} bytes`);

      // The namespace: a bridge with the gateway address and the VM's tap on it.
      ns = await createNetns();
      withNetns(ns, () => {
        createBridge("br0");
        addAddress("br0", `${hostIp}/24`);
        setLinkUp("br0");
        createTap("vt0");
        setLink("vt0", { master: "br0", up: true });
      });
      await Deno.mkdir(`${dir}/www`);
      await Deno.writeTextFile(`${dir}/www/hello.txt`, `hello from ${hostIp}\n`);
      httpd = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          "busybox",
          "httpd",
          "-f",
          "-p",
          `${hostIp}:8081`,
          "-h",
          `${dir}/www`,
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();

      const driver = await openQemuDriver({
        accel: await testAccel(),
        launchPrefix: ["ip", "netns", "exec", ns],
      });
      await Deno.mkdir(`${dir}/run`);
      const config = {
        v: 1 as const,
        name: "netvm",
        hostname: "netvm",
        network: { ip: guestIp, prefix: 24, gateway: hostIp, mac },
      };
      // As the daemon boots a VM: the full config, secret included, in the per-VM archive;
      // the command line carries the identity and address only.
      const boot = encodeBootConfig(config);
      const initramfs = `${dir}/run/initramfs.cpio`;
      await writeBootInitramfs(initramfs, {
        shared: `${guest}/initramfs.cpio`,
        config: { ...config, agent: { port: AGENT_PORT, secret: SECRET } },
        env: { init: "kestrel" },
      });
      const spec: VmSpec = {
        id: "netvm",
        cpus: 1,
        memoryMib: 256,
        kernel: { path: `${guest}/bzImage-volant`, format: "bzImage" },
        initramfs,
        cmdline: ["console=ttyS0 quiet reboot=t panic=-1", await readHostCmdline(false), boot]
          .filter((w) => w !== "").join(" "),
        disks: [{ id: "runtime", path: `${guest}/runtime.erofs`, readOnly: true, format: "raw" }],
        nics: [{ id: "eth", tap: "vt0", mac }],
        serialLog: `${dir}/serial.log`,
        vmmLog: `${dir}/vmm.log`,
        runtimeDir: `${dir}/run`,
      };
      const handle = await driver.create(spec);
      const started = performance.now();
      await driver.boot(handle);
      try {
        let ready!: ReadyReport;
        await t.step("the ready line carries the address; eth0 was configured first", async () => {
          const line = await serialLine(spec.serialLog, handle, READY_MARKER);
          const readyWallMs = Math.round(performance.now() - started);
          ready = ReadyReport.parse(JSON.parse(line.slice(READY_MARKER.length)));
          assert.equal(ready.name, "netvm");
          assert.equal(ready.ip, guestIp);
          const serial = await Deno.readTextFile(spec.serialLog);
          const netLine = new RegExp(
            `^kestrel: \\[ *([0-9.]+)\\] eth0 ${guestIp.replaceAll(".", "\\.")}/24 via ${
              hostIp.replaceAll(".", "\\.")
            }$`,
            "m",
          ).exec(serial);
          assert.ok(netLine, serial);
          assert.ok(serial.indexOf(netLine[0]) < serial.indexOf(READY_MARKER));
          console.error(serial.split("\n").filter((l) => l.startsWith("kestrel:")).join("\n"));
          console.error(
            `guest uptime: network up at ${netLine[1]} s, ready at ${ready.uptime_ms} ms ` +
              `(${readyWallMs} ms wall from boot to the ready line under TCG)`,
          );
        });

        await t.step(
          "GET /healthz from the namespace answers with the guest's ip and MAC",
          async () => {
            const body = await wget(ns!, `http://${guestIp}:${AGENT_PORT}/healthz`).catch(
              async (err) => {
                throw new Error(`${err.message}\n${await diagnose(ns!, guestIp, spec.serialLog)}`);
              },
            );
            const health = AgentHealth.parse(JSON.parse(body));
            assert.equal(health.status, "ok");
            assert.equal(health.name, "netvm");
            assert.equal(health.hostname, "netvm");
            assert.equal(health.ip, guestIp);
            assert.equal(health.mac, mac);
            assert.ok(health.uptime_ms >= ready.uptime_ms, "uptime moves on");
          },
        );

        await t.step("without the secret kestrel answers 401, /healthz included", async () => {
          for (const path of ["/healthz", "/v1/net/check"]) {
            const url = `http://${guestIp}:${AGENT_PORT}${path}`;
            await assert.rejects(
              wget(ns!, url, path === "/healthz" ? undefined : "{}", true),
              /401 Unauthorized/,
              path,
            );
          }
          await assert.rejects(
            wgetInNetns(ns!, `http://${guestIp}:${AGENT_PORT}/healthz`, {
              headers: [`authorization: Bearer ${SECRET.slice(1)}x`],
            }),
            /401 Unauthorized/,
          );
          assert.ok(!spec.cmdline.includes(SECRET), "not on the kernel command line");
          const serial = await Deno.readTextFile(spec.serialLog);
          assert.ok(!serial.includes(SECRET), "not on the serial console");
          assert.doesNotMatch(serial, /no agent secret/);
        });

        await t.step(
          "POST /v1/net/check: the guest reaches a server in the namespace",
          async () => {
            const url = `http://${guestIp}:${AGENT_PORT}/v1/net/check`;
            const ok = NetCheckResult.parse(JSON.parse(
              await wget(
                ns!,
                url,
                JSON.stringify({ url: `http://${hostIp}:8081/hello.txt`, timeout_ms: 10_000 }),
              ),
            ));
            assert.equal(ok.ok, true, JSON.stringify(ok));
            assert.equal(ok.status, 200);
            assert.equal(ok.body, `hello from ${hostIp}\n`);
            // Nothing listens on port 8082: refused from inside the guest, reported, not thrown.
            const refused = NetCheckResult.parse(JSON.parse(
              await wget(
                ns!,
                url,
                JSON.stringify({ url: `http://${hostIp}:8082/`, timeout_ms: 10_000 }),
              ),
            ));
            assert.equal(refused.ok, false);
            assert.equal(refused.status, null);
            assert.match(refused.error ?? "", /refused/i);
            // kestrel listens on eth0's address only: not on the guest's loopback.
            const loopback = NetCheckResult.parse(JSON.parse(
              await wget(
                ns!,
                url,
                JSON.stringify({
                  url: `http://127.0.0.1:${AGENT_PORT}/healthz`,
                  timeout_ms: 10_000,
                }),
              ),
            ));
            assert.equal(loopback.ok, false, JSON.stringify(loopback));
            assert.match(loopback.error ?? "", /refused/i);
            console.error(`net check from the guest: ${ok.ms} ms (ok), ${refused.ms} ms (refused)`);
          },
        );

        await t.step("the driver's graceful stop powers the guest off", async () => {
          const result = await driver.shutdown(handle, { gracefulMs: 60_000, termMs: 10_000 });
          assert.deepEqual(result, { via: "graceful" });
          const serial = await Deno.readTextFile(spec.serialLog);
          assert.match(serial, /kestrel: .*powering off \(power-button\)/);
          assert.doesNotMatch(serial, /kestrel: .*fatal/);
        });
      } finally {
        if (await isAlive(handle.pid, handle.startTime)) {
          await driver.shutdown(handle, { gracefulMs: 0, termMs: 10_000 });
        }
        await driver.cleanup(handle);
      }
    } finally {
      if (httpd !== undefined) {
        try {
          httpd.kill("SIGKILL");
        } catch {
          // Already gone.
        }
        await httpd.status;
      }
      for (const pid of await processesMentioning(dir)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      if (ns !== undefined) {
        const name = ns;
        try {
          withNetns(name, () => {
            deleteTap("vt0", { missingOk: true });
            deleteLink("br0", { missingOk: true });
          });
        } finally {
          await deleteNetns(name);
        }
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
