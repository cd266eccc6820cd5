import assert from "node:assert/strict";
import { AgentHealth } from "../schema/agent.ts";
import {
  BOOT_CONFIG_PATH,
  type BootConfig,
  encodeBootConfig,
  GUEST_ROOT_DIR,
  READY_MARKER,
  ReadyReport,
} from "../schema/boot_config.ts";
import { VolantError } from "../schema/error.ts";
import { fakeSystem, trackMounts } from "./_fake_system.ts";
import type { NetOps, NicInfo } from "./network.ts";
import { boot, DEFAULT_HOSTNAME, resolveBoot, runPid1 } from "./pid1.ts";
import { isValidHostname } from "./hostname.ts";
import type { PowerReason, PowerWatch } from "./power.ts";
import { Reaper } from "./reaper.ts";
import { IdentityReply } from "../schema/guest_control.ts";
import { memoryPort } from "./control/memory_port.ts";
import { identity, NEW_SECRET } from "./control/testing.ts";

const STAGE0_MOUNTINFO = [
  "20 1 254:0 / / ro - erofs /dev/vda ro",
  "21 20 0:21 / /tmp rw - tmpfs tmpfs rw",
  "22 20 0:22 / /run rw - tmpfs tmpfs rw",
  "2 20 0:2 / /proc rw - proc proc rw",
  "3 20 0:20 / /sys rw - sysfs sysfs rw",
  "4 20 0:5 / /dev rw - devtmpfs devtmpfs rw",
  "",
].join("\n");
const MEMINFO = "MemTotal: 222756 kB\nMemAvailable: 146568 kB\n";

function guest(cmdline: string) {
  return fakeSystem({
    files: {
      "/proc/self/mountinfo": STAGE0_MOUNTINFO,
      "/proc/cmdline": cmdline,
      "/proc/uptime": "2.50 1.00\n",
      "/proc/meminfo": MEMINFO,
    },
    paths: ["/dev/ptmx"],
    onMount: trackMounts,
  });
}

/** A power watch resolved by the test. */
function scriptedWatch(): {
  watch: PowerWatch;
  press: (r: PowerReason) => void;
  stopped: () => boolean;
} {
  let press!: (r: PowerReason) => void;
  let stopped = false;
  const requested = new Promise<PowerReason>((r) => (press = r));
  return {
    watch: { requested, devices: ["/dev/input/event0"], stop: () => void (stopped = true) },
    press: (r) => press(r),
    stopped: () => stopped,
  };
}

function quietReaper(): Reaper {
  return new Reaper({ intervalMs: 3_600_000, parentPid: -1 }); // never matches a real process
}

const WEB = `console=ttyS0 quiet ${encodeBootConfig({ v: 1, name: "web", hostname: "web-1" })}`;

Deno.test("isValidHostname() follows RFC 1123 and Linux's 64-byte limit", () => {
  for (
    const ok of [
      "web",
      "web-1",
      "a.b.c",
      "X9",
      "a".repeat(63),
      `${"a".repeat(31)}.${"b".repeat(32)}`,
    ]
  ) {
    assert.ok(isValidHostname(ok), ok);
  }
  for (const bad of ["", "-web", "web-", "a..b", "we b", "web_1", "a".repeat(64) + ".b", "é"]) {
    assert.ok(!isValidHostname(bad), bad);
  }
});

Deno.test("resolveBoot() decodes a valid boot config", () => {
  const r = resolveBoot(WEB);
  assert.deepEqual(r, {
    config: { v: 1, name: "web", hostname: "web-1" },
    name: "web",
    hostname: "web-1",
    problems: [],
  });
});

Deno.test("resolveBoot() falls back to defaults with a reason", () => {
  const missing = resolveBoot("console=ttyS0 quiet");
  assert.equal(missing.hostname, DEFAULT_HOSTNAME);
  assert.match(missing.problems[0] ?? "", /no volant\.boot/);

  const notJson = resolveBoot("volant.boot=bm90IGpzb24"); // "not json"
  assert.equal(notJson.hostname, DEFAULT_HOSTNAME);
  assert.match(notJson.problems[0] ?? "", /invalid boot config.*JSON/);

  const json = btoa(JSON.stringify({ v: 2, name: "x", hostname: "x" })).replace(/=+$/, "");
  const wrongVersion = resolveBoot(`volant.boot=${json}`);
  assert.equal(wrongVersion.config, undefined);
  assert.match(wrongVersion.problems[0] ?? "", /invalid boot config.*\bv\b/);

  const badHost = resolveBoot(encodeBootConfig({ v: 1, name: "web", hostname: "bad_host" }));
  assert.equal(badHost.name, "web");
  assert.equal(badHost.hostname, DEFAULT_HOSTNAME);
  assert.match(badHost.problems[0] ?? "", /invalid hostname "bad_host"/);
});

Deno.test("boot() after stage 0: CAD off, devpts and shm, hostname from the boot config", async () => {
  const fake = guest(WEB);
  const result = await boot(fake);
  assert.deepEqual(fake.calls, [
    "cadOff",
    "mkdirp /dev/pts",
    "mount devpts /dev/pts",
    "mkdirp /dev/shm",
    "mount tmpfs /dev/shm",
    "sethostname web-1",
  ]);
  assert.equal(result.name, "web");
  assert.equal(result.mounted.length, 2);
  assert.ok(fake.logs.includes("mounted devpts on /dev/pts (newinstance,ptmxmode=0666,mode=0620)"));
});

Deno.test("boot() logs a missing boot config and carries on with the default hostname", async () => {
  const fake = guest("console=ttyS0 quiet");
  await boot(fake);
  assert.ok(fake.calls.includes(`sethostname ${DEFAULT_HOSTNAME}`));
  assert.ok(fake.logs.some((l) => l.startsWith("no /volant/boot.json")), fake.logs.join("\n"));
});

Deno.test("runPid1() prints one valid ready line, then powers off cleanly on SIGTERM", async () => {
  const fake = guest(WEB);
  const scripted = scriptedWatch();
  const stops: string[] = [];
  const running = runPid1(fake, {
    watch: () => Promise.resolve(scripted.watch),
    reaper: quietReaper(),
    catchGlobalErrors: false,
    api: false,
    stop: () => Promise.resolve(void stops.push("stopped")),
  });
  // Wait for the ready line, then press.
  while (fake.printed.length === 0) await new Promise((r) => setTimeout(r, 5));
  assert.ok(!fake.calls.includes("powerOff"), "powered off before a request");
  scripted.press("SIGTERM");
  const report = await running;
  assert.equal(fake.printed.length, 1);
  const line = fake.printed[0]!;
  assert.ok(line.startsWith(`${READY_MARKER} `));
  assert.deepEqual(ReadyReport.parse(JSON.parse(line.slice(READY_MARKER.length))), report);
  assert.equal(report?.name, "web");
  assert.equal(report?.uptime_ms, 2500);
  // The timeline rides on the ready line: mounts before ready, nothing after it.
  const t = report?.timeline;
  assert.ok(t?.mounts_ms !== undefined && t.ready_ms !== undefined, JSON.stringify(t));
  assert.ok(t.kestrel_ms! <= t.mounts_ms && t.mounts_ms <= t.ready_ms);
  assert.deepEqual(fake.calls.slice(-2), ["sync", "powerOff"]);
  assert.deepEqual(stops, ["stopped"]);
  assert.ok(fake.logs.includes("powering off (SIGTERM)"));
  assert.ok(scripted.stopped(), "power watch left running");
});

Deno.test("runPid1() turns a mount failure into 'fatal:' and a power-off, with no ready line", async () => {
  const fake = fakeSystem({
    files: { "/proc/self/mountinfo": STAGE0_MOUNTINFO },
    paths: ["/dev/pts", "/dev/shm"],
    failMount: {
      target: "/dev/pts",
      error: new VolantError(
        "internal",
        "mount devpts on /dev/pts failed: EBUSY (Device or resource busy)",
      ),
    },
  });
  const scripted = scriptedWatch();
  await runPid1(fake, {
    watch: () => Promise.resolve(scripted.watch),
    reaper: quietReaper(),
    catchGlobalErrors: false,
    api: false,
  });
  assert.deepEqual(fake.printed, []);
  assert.ok(scripted.stopped(), "the power watch started alongside the boot is stopped again");
  assert.ok(
    fake.logs.includes("fatal: mount devpts on /dev/pts failed: EBUSY (Device or resource busy)"),
    fake.logs.join("\n"),
  );
  assert.deepEqual(fake.calls.slice(-2), ["sync", "powerOff"]);
  assert.ok(fake.logs.includes("powering off (fatal error)"));
});

Deno.test("runPid1() catches an unhandled rejection while running and powers off", async () => {
  const fake = guest(WEB);
  const scripted = scriptedWatch();
  const running = runPid1(fake, {
    watch: () => Promise.resolve(scripted.watch),
    reaper: quietReaper(),
    catchGlobalErrors: true,
    api: false,
  });
  while (fake.printed.length === 0) await new Promise((r) => setTimeout(r, 5));
  // Something started by PID 1 fails and nobody handles it.
  Promise.reject(new Error("workload supervisor crashed"));
  await running;
  assert.ok(fake.logs.includes("fatal: workload supervisor crashed"), fake.logs.join("\n"));
  assert.deepEqual(fake.calls.slice(-2), ["sync", "powerOff"]);
});

Deno.test("runPid1() logs a failed power-off instead of throwing", async () => {
  const fake = guest(WEB);
  fake.powerOff = () => {
    throw new VolantError("internal", "reboot 0x4321fedc failed: EPERM (Operation not permitted)");
  };
  const scripted = scriptedWatch();
  scripted.press("SIGINT");
  await runPid1(fake, {
    watch: () => Promise.resolve(scripted.watch),
    reaper: quietReaper(),
    catchGlobalErrors: false,
    api: false,
  });
  assert.ok(fake.logs.includes("powering off (SIGINT)"));
  assert.ok(
    fake.logs.some((l) => l.startsWith("fatal: cannot power off: reboot 0x4321fedc failed: EPERM")),
  );
});

const NET_CONFIG: BootConfig = {
  v: 1,
  name: "web",
  hostname: "web-1",
  network: { ip: "10.1.2.10", prefix: 24, gateway: "10.1.2.1", mac: "52:54:00:12:34:56" },
};
const NET_BOOT = `console=ttyS0 quiet ${encodeBootConfig(NET_CONFIG)}`;
const SECRET = "s3cr3t-".repeat(7);
const BOOT_FILE = `${GUEST_ROOT_DIR}${BOOT_CONFIG_PATH}`;

/** Network operations on a fake machine whose NIC is `links` (recorded calls). */
function fakeNet(links: NicInfo[]): { ops: NetOps; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    ops: {
      links: () => Promise.resolve(links),
      up: (name) => void calls.push(`up ${name}`),
      addAddress: (link, cidr) => void calls.push(`address ${cidr} ${link}`),
      addDefaultRoute: (gw, dev) => void calls.push(`route ${gw} ${dev}`),
      down: (name) => void calls.push(`down ${name}`),
      setMac: (name, mac) => void calls.push(`mac ${mac} ${name}`),
      ipv4Addresses: () => [],
      deleteAddress: (link, cidr) => void calls.push(`delete ${cidr} ${link}`),
      replaceDefaultRoute: (gw, dev) => void calls.push(`replace route ${gw} ${dev}`),
    },
  };
}

/** A localhost port that was free a moment ago. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("runPid1() configures the network, serves /healthz before the ready line, stops it on power-off", async () => {
  const fake = guest("console=ttyS0 quiet");
  const port = freePort();
  // The boot file (not the command line) carries the port and the secret.
  fake.files.set(BOOT_FILE, JSON.stringify({ ...NET_CONFIG, agent: { port, secret: SECRET } }));
  const net = fakeNet([{ name: "lo", mac: "00:00:00:00:00:00" }, {
    name: "eth0",
    mac: "52:54:00:12:34:56",
  }]);
  const scripted = scriptedWatch();
  let healthAtReady: Promise<AgentHealth> | undefined;
  let listening: boolean | undefined;
  fake.print = (line) => {
    fake.printed.push(line);
    // The API must already listen when the ready line goes out: binding its port now fails.
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      listening = false;
    } catch (err) {
      listening = err instanceof Deno.errors.AddrInUse;
    }
    healthAtReady = fetch(`http://127.0.0.1:${port}/healthz`, {
      headers: { authorization: `Bearer ${SECRET}` },
    }).then(async (r) => AgentHealth.parse(await r.json()));
  };
  let finished = false;
  const running = runPid1(fake, {
    watch: () => Promise.resolve(scripted.watch),
    reaper: quietReaper(),
    catchGlobalErrors: false,
    net: net.ops,
    api: { hostname: "127.0.0.1" },
    routes: { uptime: () => Promise.resolve(2600) },
  }).finally(() => finished = true);
  while (healthAtReady === undefined && !finished) await new Promise((r) => setTimeout(r, 5));
  assert.ok(healthAtReady, `no ready line: ${fake.logs.join("\n")}`);
  assert.equal(listening, true, "the API listened before the ready line");
  const health = await healthAtReady;
  assert.deepEqual(health, {
    status: "ok",
    name: "web",
    hostname: "web-1",
    kestrel_version: health.kestrel_version,
    uptime_ms: 2600,
    ip: "10.1.2.10",
    mac: "52:54:00:12:34:56",
  });
  const anonymous = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(anonymous.status, 401, "the secret from the boot file is required");
  await anonymous.body?.cancel();
  assert.ok(fake.calls.includes(`remove ${BOOT_FILE}`), fake.calls.join("\n"));
  assert.ok(!fake.files.has(BOOT_FILE), "the boot file (with the secret) is gone once read");
  assert.ok(!fake.logs.some((l) => l.includes(SECRET)), "the secret is never logged");
  assert.deepEqual(net.calls, [
    "up lo",
    "up eth0",
    "address 10.1.2.10/24 eth0",
    "route 10.1.2.1 eth0",
  ]);
  const netLine = fake.logs.indexOf("eth0 10.1.2.10/24 via 10.1.2.1");
  assert.ok(netLine >= 0, fake.logs.join("\n"));
  scripted.press("SIGTERM");
  const report = await running;
  assert.equal(report?.ip, "10.1.2.10");
  assert.equal(JSON.parse(fake.printed[0]!.slice(READY_MARKER.length)).ip, "10.1.2.10");
  await assert.rejects(
    () => Deno.connect({ hostname: "127.0.0.1", port }),
    "the API stopped before power-off",
  );
  assert.deepEqual(fake.calls.slice(-2), ["sync", "powerOff"]);
});

Deno.test("runPid1(): a NIC that never appears is fatal (ENODEV), with no ready line", async () => {
  const fake = guest(NET_BOOT);
  const net = fakeNet([{ name: "lo", mac: "00:00:00:00:00:00" }]);
  const scripted = scriptedWatch();
  const port = freePort();
  await runPid1(fake, {
    watch: () => Promise.resolve(scripted.watch),
    reaper: quietReaper(),
    catchGlobalErrors: false,
    net: net.ops,
    nicTimeoutMs: 30,
    api: { hostname: "127.0.0.1", port },
  });
  assert.deepEqual(fake.printed, []);
  assert.ok(
    fake.logs.some((l) =>
      l.startsWith(
        "fatal: network: ENODEV: no NIC with MAC 52:54:00:12:34:56 appeared within 30 ms",
      )
    ),
    fake.logs.join("\n"),
  );
  assert.deepEqual(net.calls, ["up lo"]);
  assert.ok(scripted.stopped(), "the power watch is stopped");
  await assert.rejects(() => Deno.connect({ hostname: "127.0.0.1", port }), "no API was started");
  assert.deepEqual(fake.calls.slice(-2), ["sync", "powerOff"]);
});

Deno.test("runPid1(): a port it cannot bind is fatal, with no ready line", async () => {
  const fake = guest(WEB);
  const scripted = scriptedWatch();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await runPid1(fake, {
      watch: () => Promise.resolve(scripted.watch),
      reaper: quietReaper(),
      catchGlobalErrors: false,
      api: { hostname: "127.0.0.1", port: (taken.addr as Deno.NetAddr).port },
    });
  } finally {
    taken.close();
  }
  assert.deepEqual(fake.printed, []);
  assert.ok(
    fake.logs.some((l) => l.startsWith("fatal: cannot serve the API on 127.0.0.1:")),
    fake.logs.join("\n"),
  );
  assert.ok(scripted.stopped());
});

Deno.test("runPid1(): after the ready line, a new identity on the control port moves the guest and its API", async () => {
  const fake = guest("console=ttyS0 quiet");
  const port = freePort();
  // A character device stands for the port the boot config names (the test opens it).
  fake.files.set(
    BOOT_FILE,
    JSON.stringify({ ...NET_CONFIG, agent: { port, secret: SECRET }, control_device: "/dev/null" }),
  );
  const net = fakeNet([{ name: "eth0", mac: "52:54:00:12:34:56" }]);
  const scripted = scriptedWatch();
  const { port: control, host } = memoryPort();
  const steps: string[] = [];
  let printedAtOpen: number | undefined;
  const running = runPid1(fake, {
    watch: () => Promise.resolve(scripted.watch),
    reaper: quietReaper(),
    catchGlobalErrors: false,
    net: net.ops,
    api: { hostname: "127.0.0.1", port },
    routes: { uptime: () => Promise.resolve(2600) },
    control: {
      open: () => {
        printedAtOpen = fake.printed.length;
        return Promise.resolve(control);
      },
      entropy: (bytes) => void steps.push(`entropy ${bytes.length}`),
      clock: (ms) => void steps.push(`clock ${ms}`), // never clock_settime in a test
    },
  });
  try {
    host.connect();
    host.send(`${
      JSON.stringify(identity(1, {
        network: { ip: "127.0.0.2", prefix: 8, mac: "52:54:00:12:34:57" },
        agent: { port, secret: NEW_SECRET },
      }))
    }\n`);
    const reply = IdentityReply.parse(JSON.parse(await host.nextLine()));
    assert.equal(reply.kind, "identity_applied", JSON.stringify(reply));
    assert.equal(printedAtOpen, 1, "the port is opened once the ready line is out");
    assert.deepEqual(steps, ["entropy 64", "clock 1900000000123"]);
    assert.ok(fake.calls.includes("sethostname web-clone-1"), fake.calls.join("\n"));
    assert.deepEqual(net.calls.slice(-3), [
      "mac 52:54:00:12:34:57 eth0",
      "address 127.0.0.2/8 eth0",
      "replace route undefined eth0",
    ]);
    const old = await fetch(`http://127.0.0.2:${port}/healthz`, {
      headers: { authorization: `Bearer ${SECRET}` },
    });
    assert.equal(old.status, 401, "the boot's secret is refused");
    await old.body?.cancel();
    const res = await fetch(`http://127.0.0.2:${port}/healthz`, {
      headers: { authorization: `Bearer ${NEW_SECRET}` },
    });
    const health = AgentHealth.parse(await res.json());
    assert.deepEqual(
      [health.name, health.hostname, health.ip, health.mac],
      ["web-clone", "web-clone-1", "127.0.0.2", "52:54:00:12:34:57"],
    );
    await assert.rejects(() => Deno.connect({ hostname: "127.0.0.1", port }), "old address");
    const applied = reply.kind === "identity_applied" ? reply.ms : -1;
    assert.ok(
      fake.logs.some((l) =>
        l.startsWith(
          "new identity (generation 1): web-clone 127.0.0.2/8 mac 52:54:00:12:34:57, " +
            `hostname web-clone-1, applied in ${applied} ms (entropy `,
        ) && /\(entropy \d+, clock \d+, hostname \d+, network \d+, api \d+\)$/.test(l)
      ),
      fake.logs.join("\n"),
    );
  } finally {
    scripted.press("SIGTERM");
    await running;
  }
  assert.ok(host.closed, "the port is closed on power-off");
  await assert.rejects(() => Deno.connect({ hostname: "127.0.0.2", port }), "the API stopped");
  assert.deepEqual(fake.calls.slice(-2), ["sync", "powerOff"]);
});
