import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { DaemonConfig, VolantError } from "../../schema/mod.ts";
import { CAN_NETNS, ip, ipJson, NETNS_SKIP } from "../../net/testing.ts";
import { rootSnapshot } from "../../net/root_guard.ts";
import { netnsExists } from "../../net/mod.ts";
import type { Io } from "../io.ts";
import { main } from "../main.ts";
import { runSetup, type SetupSystem } from "./setup.ts";
import { renderUnit } from "./_setup_files.ts";

const ROOT_BEFORE = CAN_NETNS ? rootSnapshot() : undefined;

// A local capture rather than cli/testing.ts, which starts a whole volantd for other tests.
function captureIo(env: Record<string, string> = {}): Io & { stdout(): string; stderr(): string } {
  let out = "";
  let err = "";
  return {
    out: (text) => void (out += text),
    err: (text) => void (err += text),
    outIsTerminal: false,
    errIsTerminal: false,
    env: (key) => env[key],
    now: () => Date.now(),
    stdout: () => out,
    stderr: () => err,
  };
}

async function volar(args: string[], options: { env?: Record<string, string> } = {}) {
  const io = captureIo(options.env);
  const code = await main(args, io);
  return { code, stdout: io.stdout(), stderr: io.stderr() };
}

function kernelTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: CAN_NETNS ? name : `${name} (skipped: ${NETNS_SKIP})`,
    ignore: !CAN_NETNS,
    fn,
  });
}

interface Ctx {
  dir: string;
  ns: string;
  config: string;
  unit: string;
  volantd: string;
  /** The flags that keep every path in the temp dir and everything in the namespace. */
  args: string[];
}

/** A temp dir and an unused namespace name; both removed afterwards, whatever happened. */
async function withSetup(fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volar-setup-test-" });
  const ns = `volant-t-${crypto.randomUUID().slice(0, 8)}`;
  const ctx: Ctx = {
    dir,
    ns,
    config: `${dir}/etc/config.yaml`,
    unit: `${dir}/units/volantd.service`,
    volantd: `${dir}/bin/volantd`,
    args: [
      "--netns",
      ns,
      "--config",
      `${dir}/etc/config.yaml`,
      "--state-dir",
      `${dir}/state`,
      "--runtime-dir",
      `${dir}/run`,
      "--log-dir",
      `${dir}/log`,
      "--service-file",
      `${dir}/units/volantd.service`,
      "--volantd",
      `${dir}/bin/volantd`,
      // A group every host has: these runs must not create one (the fake system tests that).
      "--group",
      "root",
    ],
  };
  try {
    await fn(ctx);
  } finally {
    if (netnsExists(ns)) ip("netns", "del", ns);
    await Deno.remove(dir, { recursive: true });
  }
}

async function listTree(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    found.push(entry.name);
    if (entry.isDirectory) {
      for (const sub of await listTree(`${dir}/${entry.name}`)) found.push(`${entry.name}/${sub}`);
    }
  }
  return found.sort();
}

function nsState(ns: string) {
  const addrs = ipJson<{ ifname: string; addr_info: { local: string; prefixlen: number }[] }[]>(
    ns,
    "-4",
    "addr",
    "show",
  ).flatMap((l) => l.addr_info.map((a) => `${l.ifname}:${a.local}/${a.prefixlen}`)).sort();
  return { addrs, ruleset: ip("netns", "exec", ns, "nft", "list", "ruleset") };
}

kernelTest(
  "volar setup prepares namespace, network, config and unit; then nothing to change",
  async () => {
    await withSetup(async (ctx) => {
      const args = ["setup", ...ctx.args, "--subnet", "10.98.0.0/24"];
      const first = await volar(args);
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(first.stdout.trimEnd().split("\n"), [
        `created network namespace ${ctx.ns}`,
        "created bridge vbr0",
        "added 10.98.0.1/24 to vbr0",
        "set vbr0 up",
        "enabled net.ipv4.ip_forward",
        "added NAT for 10.98.0.0/24",
        `created directory ${ctx.dir}/state`,
        `created directory ${ctx.dir}/run`,
        `created directory ${ctx.dir}/log`,
        `wrote ${ctx.config}`,
        `wrote ${ctx.unit}`,
      ]);
      // No systemd here, or a unit outside systemd's directories: say how to start it by hand.
      assert.match(first.stderr, /note: .*the unit was not enabled/);
      assert.match(
        first.stderr,
        new RegExp(`note: start volantd by hand: VOLANT_NETNS=${ctx.ns} setsid ${ctx.volantd} `),
      );
      assert.match(first.stderr, /does not exist yet: install it/);

      const yaml = parseYaml(await Deno.readTextFile(ctx.config));
      assert.deepEqual(yaml, {
        state_dir: `${ctx.dir}/state`,
        runtime_dir: `${ctx.dir}/run`,
        log_dir: `${ctx.dir}/log`,
        network: {
          bridge: "vbr0",
          subnet: "10.98.0.0/24",
          gateway: "10.98.0.1",
          nat: true,
          namespace: ctx.ns,
        },
        api: { socket_group: "root" },
      });
      assert.equal(DaemonConfig.parse(yaml).network.namespace, ctx.ns, "volantd accepts it");
      const unit = (await Deno.readTextFile(ctx.unit)).split("\n");
      for (
        const line of [
          "[Service]",
          `ExecStart=${ctx.volantd} --config ${ctx.config}`,
          `Environment=VOLANT_NETNS=${ctx.ns}`,
          "Restart=always",
          "KillMode=process",
          `StandardOutput=append:${ctx.dir}/log/volantd.log`,
          `StandardError=append:${ctx.dir}/log/volantd.log`,
          "WantedBy=multi-user.target",
        ]
      ) assert.ok(unit.includes(line), `unit has ${line}`);

      const net = nsState(ctx.ns);
      assert.deepEqual(net.addrs, ["lo:127.0.0.1/8", "vbr0:10.98.0.1/24"]);
      assert.match(net.ruleset, /ip saddr 10\.98\.0\.0\/24 oifname != "vbr0" masquerade/);
      const files = await listTree(ctx.dir);

      const second = await volar(args);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stdout, "nothing to change\n");
      assert.deepEqual(nsState(ctx.ns), net);
      assert.deepEqual(await listTree(ctx.dir), files);

      // Without --subnet the config's values stand; --no-nat removes the NAT; --json.
      const third = await volar(["setup", ...ctx.args, "--no-nat", "--json"]);
      assert.equal(third.code, 0, third.stderr);
      const report = JSON.parse(third.stdout);
      assert.deepEqual(report.changes, ["removed NAT for 10.98.0.0/24", `wrote ${ctx.config}`]);
      assert.equal(report.dry_run, false);
      assert.ok(report.notes.length > 0);
      assert.equal(parseYaml(await Deno.readTextFile(ctx.config)).network.nat, false);
      assert.equal(nsState(ctx.ns).ruleset.trim(), "");
    });
  },
);

kernelTest("volar setup keeps an existing config's other keys and comments", async () => {
  await withSetup(async (ctx) => {
    await Deno.mkdir(`${ctx.dir}/etc`);
    const original = [
      "# my volantd",
      "hypervisor:",
      "  name: qemu # pinned",
      "timeouts:",
      "  ready_ms: 90000",
      "network:",
      "  bridge: vbr7",
      "  range_start: 192.168.127.100",
      "",
    ].join("\n");
    await Deno.writeTextFile(ctx.config, original);
    const run = await volar(["setup", ...ctx.args, "--gateway", "192.168.127.254"]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.includes("created bridge vbr7"), "the file's bridge is kept");
    const text = await Deno.readTextFile(ctx.config);
    assert.match(text, /^# my volantd/);
    assert.match(text, /name: qemu # pinned/);
    assert.deepEqual(parseYaml(text), {
      hypervisor: { name: "qemu" },
      timeouts: { ready_ms: 90000 },
      network: {
        bridge: "vbr7",
        range_start: "192.168.127.100",
        subnet: "192.168.127.0/24",
        gateway: "192.168.127.254",
        nat: true,
        namespace: ctx.ns,
      },
      state_dir: `${ctx.dir}/state`,
      runtime_dir: `${ctx.dir}/run`,
      log_dir: `${ctx.dir}/log`,
      api: { socket_group: "root" },
    });
    assert.deepEqual(nsState(ctx.ns).addrs, ["lo:127.0.0.1/8", "vbr7:192.168.127.254/24"]);

    // A new subnet that leaves the file's range_start outside: refused, naming the file's key.
    const bad = await volar(["setup", ...ctx.args, "--subnet", "10.1.0.0/24"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /config\.yaml: network\.range_start: 192\.168\.127\.100 is outside/);
    assert.equal(await Deno.readTextFile(ctx.config), text, "nothing written");
  });
});

kernelTest("volar setup --dry-run prints every change and makes none", async () => {
  await withSetup(async (ctx) => {
    const run = await volar(["setup", ...ctx.args, "--dry-run"]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.stdout.trimEnd().split("\n"), [
      `would create network namespace ${ctx.ns}`,
      "would create bridge vbr0",
      "would add 192.168.127.1/24 to vbr0",
      "would set vbr0 up",
      "would enable net.ipv4.ip_forward",
      "would add NAT for 192.168.127.0/24",
      `would create directory ${ctx.dir}/state`,
      `would create directory ${ctx.dir}/run`,
      `would create directory ${ctx.dir}/log`,
      `would write ${ctx.config}`,
      `would write ${ctx.unit}`,
    ]);
    assert.equal(netnsExists(ctx.ns), false, "no namespace");
    assert.deepEqual(await listTree(ctx.dir), [], "no file, no directory");

    // Once set up, a dry run with other values lists only the differences, and changes nothing.
    assert.equal((await volar(["setup", ...ctx.args])).code, 0);
    const before = { net: nsState(ctx.ns), files: await listTree(ctx.dir) };
    const config = await Deno.readTextFile(ctx.config);
    const other = await volar(["setup", ...ctx.args, "--dry-run", "--no-nat", "--json"]);
    assert.equal(other.code, 0, other.stderr);
    assert.deepEqual(JSON.parse(other.stdout).changes, [
      "would remove NAT for 192.168.127.0/24",
      `would write ${ctx.config}`,
    ]);
    assert.deepEqual({ net: nsState(ctx.ns), files: await listTree(ctx.dir) }, before);
    assert.equal(await Deno.readTextFile(ctx.config), config);
    assert.equal((await volar(["setup", ...ctx.args, "--dry-run"])).stdout, "nothing to change\n");
  });
});

kernelTest("volar setup: bad flags exit 2 naming the flag, and change nothing", async () => {
  await withSetup(async (ctx) => {
    const cases: [string[], RegExp][] = [
      [["--subnet", "10.0.0.0/40"], /--subnet: .*prefix length/],
      [["--subnet", "10.0.0.9/24"], /--subnet: .*host bits set/],
      [
        ["--gateway", "10.0.0.1"],
        /--gateway: 10\.0\.0\.1 is outside the subnet 192\.168\.127\.0\/24/,
      ],
      [["--gateway", "192.168.127.255"], /--gateway: .*broadcast address/],
      [["--bridge", "a-bridge-name-too-long"], /--bridge: .*at most 15/],
      [["--netns", "a/b"], /--netns: "a\/b" is not a network namespace name/],
      [["--log-dir", "/tmp/with space"], /--log-dir: .*cannot go into a systemd unit/],
      [["--nat", "--bogus"], /unknown option '--bogus'/],
    ];
    for (const [extra, message] of cases) {
      const run = await volar(["setup", ...ctx.args, ...extra]);
      assert.equal(run.code, 2, `${extra.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(run.stdout, "");
    }
    const env = await volar(["setup", ...ctx.args.slice(2)], { env: { VOLANT_NETNS: "x/y" } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /VOLANT_NETNS: "x\/y" is not a network namespace name/);
    const json = await volar(["setup", ...ctx.args, "--gateway", "1.2.3.4", "--json"]);
    assert.equal(json.code, 2);
    assert.equal(JSON.parse(json.stderr).code, "invalid_argument");
    assert.equal(netnsExists(ctx.ns), false);
    assert.deepEqual(await listTree(ctx.dir), []);
  });
});

function fakeSystem(options: { uid?: number; unitDir: string; enabled?: boolean }) {
  const calls: string[] = [];
  let enabled = options.enabled ?? false;
  const groups = new Set(["root"]);
  const groupCalls: string[] = [];
  const system: SetupSystem = {
    groupExists: (name) => Promise.resolve(groups.has(name)),
    addGroup: (name) => {
      groupCalls.push(`groupadd --system ${name}`);
      groups.add(name);
      return Promise.resolve({ ok: true, output: "" });
    },
    uid: () => options.uid ?? 0,
    systemdRunning: () => true,
    unitDirs: [options.unitDir],
    systemctl: (args) => {
      calls.push(args.join(" "));
      if (args[0] === "enable") enabled = true;
      const ok = args[0] === "is-enabled" ? enabled : true;
      return Promise.resolve({ ok, output: "" });
    },
  };
  return { system, calls, groupCalls };
}

function flagsOf(ctx: Ctx) {
  return {
    netns: ctx.ns,
    config: ctx.config,
    stateDir: `${ctx.dir}/state`,
    runtimeDir: `${ctx.dir}/run`,
    logDir: `${ctx.dir}/log`,
    serviceFile: ctx.unit,
    volantd: ctx.volantd,
  };
}

kernelTest("with systemd: daemon-reload when the unit changes, enable once", async () => {
  await withSetup(async (ctx) => {
    const { system, calls } = fakeSystem({ unitDir: `${ctx.dir}/units` });
    const io = captureIo();
    const planned = await runSetup({ ...flagsOf(ctx), dryRun: true }, io, system);
    assert.ok(planned.changes.includes("would run systemctl daemon-reload"));
    assert.ok(planned.changes.includes("would enable volantd.service"));
    assert.deepEqual(calls, ["is-enabled --quiet volantd.service"], "a dry run only asks");

    calls.length = 0;
    const first = await runSetup(flagsOf(ctx), io, system);
    assert.deepEqual(first.changes.slice(-2), [
      "reloaded systemd (systemctl daemon-reload)",
      "enabled volantd.service",
    ]);
    assert.deepEqual(calls, [
      "daemon-reload",
      "is-enabled --quiet volantd.service",
      "enable volantd.service",
    ]);
    assert.ok(first.notes.some((n) => n.includes("systemctl start volantd.service")));
    assert.ok(!first.notes.some((n) => n.includes("by hand")));

    calls.length = 0;
    assert.deepEqual((await runSetup(flagsOf(ctx), io, system)).changes, []);
    assert.deepEqual(calls, ["is-enabled --quiet volantd.service"]);
  });
});

kernelTest("volar setup refuses to run without root (a dry run is fine)", async () => {
  await withSetup(async (ctx) => {
    const { system, calls } = fakeSystem({ uid: 1000, unitDir: `${ctx.dir}/units` });
    await assert.rejects(runSetup(flagsOf(ctx), captureIo(), system), (err: unknown) => {
      assert.ok(err instanceof VolantError);
      assert.equal(err.code, "invalid_state");
      assert.match(err.message, /must run as root/);
      return true;
    });
    assert.deepEqual(calls, []);
    assert.equal(netnsExists(ctx.ns), false);
    assert.deepEqual(await listTree(ctx.dir), []);
    const dry = await runSetup({ ...flagsOf(ctx), dryRun: true }, captureIo(), system);
    assert.ok(dry.changes.length > 0);
  });
});

kernelTest("the root namespace's links, nft ruleset and ip_forward are unchanged", () => {
  assert.deepEqual(rootSnapshot(), ROOT_BEFORE);
  return Promise.resolve();
});

kernelTest("volar setup creates the socket's group once, and says how to join it", async () => {
  await withSetup(async (ctx) => {
    const { system, groupCalls } = fakeSystem({ unitDir: `${ctx.dir}/units` });
    const io = captureIo();
    const planned = await runSetup({ ...flagsOf(ctx), dryRun: true }, io, system);
    assert.ok(
      planned.changes.includes("would create group volant (its members may use volantd's socket)"),
    );
    assert.deepEqual(groupCalls, [], "a dry run creates nothing");
    const first = await runSetup(flagsOf(ctx), io, system);
    assert.ok(
      first.changes.includes("created group volant (its members may use volantd's socket)"),
    );
    assert.ok(first.notes.some((n) => n.includes("usermod -aG volant <user>")));
    assert.deepEqual(groupCalls, ["groupadd --system volant"]);
    const second = await runSetup(flagsOf(ctx), io, system);
    assert.ok(!second.changes.some((c) => c.includes("group")));
    assert.deepEqual(groupCalls, ["groupadd --system volant"]);
    // The default group is not written to the config; another one is.
    assert.equal(parseYaml(await Deno.readTextFile(ctx.config)).api, undefined);
    await runSetup({ ...flagsOf(ctx), group: "ops" }, io, system);
    assert.deepEqual(parseYaml(await Deno.readTextFile(ctx.config)).api, { socket_group: "ops" });
    await assert.rejects(
      runSetup({ ...flagsOf(ctx), group: "Bad Name" }, io, system),
      /--group: expected a group name/,
    );
  });
});

const analyze = await new Deno.Command("systemd-analyze", { args: ["--version"], stdout: "null" })
  .output().then((o) => o.success, () => false);

Deno.test({
  name:
    "the volantd unit volar setup writes verifies and is rated 5.0 or better by systemd-analyze" +
    (analyze ? "" : " (skipped: systemd-analyze is not installed)"),
  ignore: !analyze,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "volant-unit-" });
    try {
      const unit = `${dir}/volantd.service`;
      await Deno.writeTextFile(
        unit,
        renderUnit({
          volantd: "/bin/true",
          config: "/etc/volant/config.yaml",
          logFile: "/var/log/volant/volantd.log",
          netns: "volant",
          writable: ["/var/lib/volant", "/run/volant", "/var/log/volant"],
        }),
      );
      const verify = await new Deno.Command("systemd-analyze", {
        args: ["verify", unit],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const complaints = new TextDecoder().decode(verify.stderr).split("\n")
        .filter((l) => l.includes("volantd.service"));
      assert.deepEqual(complaints, [], "systemd-analyze verify has nothing to say about the unit");
      const security = await new Deno.Command("systemd-analyze", {
        args: ["security", "--offline=true", unit],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(security.stdout);
      const score = Number(/Overall exposure level for volantd\.service: ([\d.]+)/.exec(text)?.[1]);
      assert.ok(Number.isFinite(score), text.slice(-500));
      assert.ok(score <= 5.0, `exposure ${score} (was 9.6 before hardening)`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
