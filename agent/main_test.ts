import assert from "node:assert/strict";
import { encodeBootConfig, READY_MARKER, ReadyReport } from "../schema/boot_config.ts";
import { KESTREL_VERSION } from "./version.ts";

const ROOT = new URL("../main.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Runs `deno run -A main.ts kestrel <args>` as a real process (never PID 1). */
async function kestrel(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", ROOT, "kestrel", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("kestrel --help and --version print and exit 0", async () => {
  const help = await kestrel(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage:/);
  assert.match(help.stdout, /--dry-run/);
  const version = await kestrel(["--version"]);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), KESTREL_VERSION);
});

Deno.test("kestrel refuses to run when it is not PID 1", async () => {
  const r = await kestrel([]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^kestrel: refusing to run: .*must be PID 1/);
  assert.match(r.stderr, /--dry-run/);
  assert.equal(r.stdout, "");
});

Deno.test("kestrel rejects unknown options and --wait without --dry-run", async () => {
  const unknown = await kestrel(["--frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /frobnicate/);
  const wait = await kestrel(["--wait"]);
  assert.equal(wait.code, 2);
  assert.match(wait.stderr, /only go with --dry-run/);
});

Deno.test("kestrel --dry-run prints the plan, the hostname and a valid ready line", async () => {
  const cmdline = `quiet ${encodeBootConfig({ v: 1, name: "web", hostname: "web-1" })}`;
  const r = await kestrel(["--dry-run", "--cmdline", cmdline]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^kestrel: dry run: would set the hostname to web-1$/m);
  assert.match(r.stderr, /^kestrel: dry run: would make Ctrl-Alt-Del send SIGINT$/m);
  assert.match(r.stderr, /^kestrel: no network in the boot config: the HTTP API is not served$/m);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.startsWith(`${READY_MARKER} `));
  const report = ReadyReport.parse(JSON.parse(lines[0]!.slice(READY_MARKER.length)));
  assert.equal(report.name, "web");
  assert.equal(report.kestrel_version, KESTREL_VERSION);
});

Deno.test("kestrel --dry-run with a network prints the planned steps and touches no link", async () => {
  const mac = "52:54:00:12:34:56";
  const cmdline = `quiet ${
    encodeBootConfig({
      v: 1,
      name: "web",
      hostname: "web-1",
      network: { ip: "192.168.127.10", prefix: 24, gateway: "192.168.127.1", mac },
      agent: { port: 4321 },
    })
  }`;
  const linksBefore = Deno.readDirSync("/sys/class/net").map((e) => e.name).toArray().sort();
  const r = await kestrel(["--dry-run", "--cmdline", cmdline]);
  assert.equal(r.code, 0, r.stderr);
  const steps = r.stderr.split("\n").filter((l) => /would (bring|wait|add|serve)/.test(l));
  assert.deepEqual(steps, [
    "kestrel: dry run: would bring lo up",
    `kestrel: dry run: would wait up to 5000 ms for the NIC with MAC ${mac}`,
    `kestrel: dry run: would bring the NIC with MAC ${mac} up`,
    `kestrel: dry run: would add 192.168.127.10/24 to the NIC with MAC ${mac}`,
    `kestrel: dry run: would add the default route via 192.168.127.1 on the NIC with MAC ${mac}`,
    "kestrel: dry run: would serve the HTTP API on 192.168.127.10:4321",
  ]);
  assert.match(
    r.stderr,
    /^kestrel: warning: no agent secret in the boot config: the API on 192\.168\.127\.10:4321 refuses every request$/m,
  );
  const report = ReadyReport.parse(JSON.parse(r.stdout.trim().slice(READY_MARKER.length)));
  assert.equal(report.ip, "192.168.127.10");
  assert.deepEqual(
    Deno.readDirSync("/sys/class/net").map((e) => e.name).toArray().sort(),
    linksBefore,
  );
});

Deno.test("kestrel --dry-run with an invalid network fails naming the field", async () => {
  const cmdline = `quiet ${
    encodeBootConfig({
      v: 1,
      name: "web",
      hostname: "web",
      network: { ip: "192.168.127.10", prefix: 24, gateway: "10.0.0.1" },
    })
  }`;
  const r = await kestrel(["--dry-run", "--cmdline", cmdline]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /^kestrel: error: network: network\.gateway: 10\.0\.0\.1 is not in 192\.168\.127\.0\/24$/m,
  );
  assert.equal(r.stdout, "");
});

Deno.test("kestrel --dry-run --wait runs until SIGTERM, then says how it would power off", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", ROOT, "kestrel", "--dry-run", "--wait", "--cmdline", "quiet"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  while (!stdout.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += value;
  }
  assert.ok(stdout.startsWith(READY_MARKER), stdout);
  child.kill("SIGTERM");
  const status = await child.status;
  while (!(await reader.read()).done) {
    // drain stdout to its end
  }
  const stderr = decoder.decode(await new Response(child.stderr).arrayBuffer());
  assert.equal(status.code, 0, stderr);
  assert.match(
    stderr,
    /^kestrel: no \/volant\/boot\.json in the initramfs and no volant\.boot on the kernel command line; using defaults$/m,
  );
  assert.match(stderr, /^kestrel: powering off \(SIGTERM\)$/m);
  assert.match(stderr, /^kestrel: dry run: would sync$/m);
  assert.match(stderr, /^kestrel: dry run: would power off$/m);
});
