import assert from "node:assert/strict";
import { encodeBootConfig, READY_MARKER, ReadyReport } from "../schema/boot_config.ts";
import { VolantError } from "../schema/error.ts";
import { fakeSystem, trackMounts } from "./_fake_system.ts";
import { boot, DEFAULT_HOSTNAME, isValidHostname, resolveBoot, runPid1 } from "./pid1.ts";
import type { PowerReason, PowerWatch } from "./power.ts";
import { Reaper } from "./reaper.ts";

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
  assert.ok(fake.logs.some((l) => l.startsWith("no volant.boot")), fake.logs.join("\n"));
});

Deno.test("runPid1() prints one valid ready line, then powers off cleanly on SIGTERM", async () => {
  const fake = guest(WEB);
  const scripted = scriptedWatch();
  const stops: string[] = [];
  const running = runPid1(fake, {
    watch: () => Promise.resolve(scripted.watch),
    reaper: quietReaper(),
    catchGlobalErrors: false,
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
  });
  assert.ok(fake.logs.includes("powering off (SIGINT)"));
  assert.ok(
    fake.logs.some((l) => l.startsWith("fatal: cannot power off: reboot 0x4321fedc failed: EPERM")),
  );
});
