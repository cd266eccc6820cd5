import { equal, match, rejects, throws } from "node:assert/strict";
import type { VolantError } from "../schema/mod.ts";
import { loadConfig, parseConfig } from "./config.ts";

const noEnv = () => undefined;

Deno.test("defaults and derived paths", () => {
  const c = parseConfig({}, noEnv);
  equal(c.state_dir, "/var/lib/volant");
  equal(c.api.socket, "/run/volant/volantd.sock");
  equal(c.api.socket_mode, 0o660);
  equal(c.guest.dir, "/var/lib/volant/guest");
  equal(c.network.namespace, null);
  const d = parseConfig({ state_dir: "/s", runtime_dir: "/r" }, noEnv);
  equal(d.api.socket, "/r/volantd.sock");
  equal(d.guest.dir, "/s/guest");
});

Deno.test("environment overrides win over the file", () => {
  const env: Record<string, string> = {
    VOLANT_STATE_DIR: "/e/state",
    VOLANT_RUNTIME_DIR: "/e/run",
    VOLANT_LOG_DIR: "/e/log",
    VOLANT_API_TCP: "127.0.0.1:7777",
    VOLANT_NETNS: "volant",
    VOLANT_HYPERVISOR: "qemu",
    VOLANT_GUEST_DIR: "/e/guest",
  };
  const c = parseConfig({ state_dir: "/file", api: { socket_mode: 0o600 } }, (k) => env[k]);
  equal(c.state_dir, "/e/state");
  equal(c.log_dir, "/e/log");
  equal(c.api.socket, "/e/run/volantd.sock");
  equal(c.api.socket_mode, 0o600);
  equal(c.api.tcp, "127.0.0.1:7777");
  equal(c.network.namespace, "volant");
  equal(c.hypervisor.name, "qemu");
  equal(c.guest.dir, "/e/guest");
  equal(
    parseConfig({}, (k) => (k === "VOLANT_SOCKET" ? "/x.sock" : undefined)).api.socket,
    "/x.sock",
  );
});

Deno.test("errors name the key (and the variable it came from)", () => {
  throws(
    () => parseConfig({ api: { socket_mode: "660" } }, noEnv, "c.yaml"),
    (e: VolantError) =>
      e.code === "invalid_argument" && /api\.socket_mode: .*expected number/.test(e.message),
  );
  throws(
    () => parseConfig({ colour: "red" }, noEnv),
    (e: VolantError) => /colour/.test(e.message),
  );
  throws(
    () => parseConfig({}, (k) => (k === "VOLANT_HYPERVISOR" ? "vmware" : undefined)),
    (e: VolantError) => /hypervisor\.name: .*\(from VOLANT_HYPERVISOR\)/.test(e.message),
  );
  throws(() => parseConfig([1, 2], noEnv), /top level must be a mapping/);
});

Deno.test("loadConfig reads YAML and JSON; a missing explicit file is an error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/c.yaml`, "state_dir: /y\napi:\n  socket_mode: 0o600\n");
    const y = await loadConfig({ path: `${dir}/c.yaml`, env: noEnv });
    equal(y.state_dir, "/y");
    equal(y.api.socket_mode, 0o600);
    await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify({ log_dir: "/j" }));
    equal((await loadConfig({ path: `${dir}/c.json`, env: noEnv })).log_dir, "/j");
    const viaEnv = await loadConfig({
      env: (k) => (k === "VOLANT_CONFIG" ? `${dir}/c.json` : undefined),
    });
    equal(viaEnv.log_dir, "/j");
    await Deno.writeTextFile(`${dir}/empty.yaml`, "");
    equal((await loadConfig({ path: `${dir}/empty.yaml`, env: noEnv })).log_dir, "/var/log/volant");
    await rejects(
      () => loadConfig({ path: `${dir}/missing.yaml`, env: noEnv }),
      (e: VolantError) => e.code === "not_found" && e.message.includes("missing.yaml"),
    );
    await Deno.writeTextFile(`${dir}/bad.yaml`, "api: [unclosed\n");
    await rejects(
      () => loadConfig({ path: `${dir}/bad.yaml`, env: noEnv }),
      (e: VolantError) => {
        match(e.message, /Cannot parse config .*bad\.yaml/);
        return e.code === "invalid_argument";
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the network section must describe a usable IPv4 pool; errors name the key", () => {
  const net = (network: Record<string, unknown>) => ({ network });
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ subnet: "192.168.127.0/33" }, /network\.subnet: /],
    [{ subnet: "192.168.127.5/24" }, /network\.subnet: .*host bits set.*192\.168\.127\.0\/24/],
    [{ subnet: "fd00::/64" }, /network\.subnet: .*IPv6 pools are not supported/],
    [{ gateway: "10.0.0.1" }, /network\.gateway: 10\.0\.0\.1 is outside the subnet/],
    [{ gateway: "192.168.127.255" }, /network\.gateway: .*broadcast address/],
    [{ bridge: "a-bridge-name-too-long" }, /network\.bridge: .*at most 15/],
    [{ range_start: "192.168.128.10" }, /network\.range_start: 192\.168\.128\.10 is outside/],
    [{ range_end: "fd00::9" }, /network\.range_end: .*IPv6 pools are not supported/],
    [{ range_start: "192.168.127.300" }, /network\.range_start: /],
    [
      { range_start: "192.168.127.200", range_end: "192.168.127.100" },
      /network\.range_start: 192\.168\.127\.200 is after network\.range_end/,
    ],
    [
      {
        subnet: "10.0.0.0/30",
        gateway: "10.0.0.1",
        range_start: "10.0.0.1",
        range_end: "10.0.0.1",
      },
      /network: the range .* holds no address/,
    ],
  ];
  for (const [network, message] of cases) {
    throws(
      () => parseConfig(net(network), noEnv, "c.yaml"),
      (e: VolantError) =>
        e.code === "invalid_argument" && e.message.startsWith("Invalid config c.yaml: ") &&
        message.test(e.message),
      JSON.stringify(network),
    );
  }
  const ok = parseConfig(
    net({ subnet: "10.9.0.0/24", gateway: "10.9.0.1", range_start: "10.9.0.100" }),
    noEnv,
  );
  equal(ok.network.range_start, "10.9.0.100");
});
