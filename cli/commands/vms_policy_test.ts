import { deepEqual, equal, match } from "node:assert/strict";
import { NetworkPolicy, VmRecord } from "../../schema/mod.ts";
import { startDaemon, volar } from "../testing.ts";
import { createRequest } from "./vms.ts";

Deno.test("volar vms create: policy flags become the request's network_policy", () => {
  const req = createRequest("b", {
    egress: "deny",
    allowEgress: [{ cidr: "198.51.100.0/24", port: 443, protocol: "tcp" }],
    allowFrom: ["a"],
    allowHostPort: [{ port: 53, protocol: "udp" }],
  });
  deepEqual(req.network_policy, {
    egress: "deny",
    allow_egress: [{ cidr: "198.51.100.0/24", port: 443, protocol: "tcp" }],
    allow_from: ["a"],
    allow_host_ports: [{ port: 53, protocol: "udp" }],
  });
  equal(createRequest("b", {}).network_policy, undefined, "no flags: the manifest's or default");
});

Deno.test("volar vms create/policy/get: the network policy on a real volantd", async () => {
  const daemon = await startDaemon();
  const s = ["--socket", daemon.socket];
  try {
    const bad: [string[], RegExp][] = [
      [["--allow-egress", "198.51.100.7/24"], /--allow-egress.*has host bits set/],
      [["--allow-egress", "198.51.100.0/24:99999"], /--allow-egress.*port .* 1 to 65535/],
      [["--allow-egress", "10.0.0.0/8:53/icmp"], /protocol 'icmp'/],
      [["--allow-host-port", "x"], /--allow-host-port.*port/],
      [["--allow-from", "Bad_Name"], /--allow-from/],
      [["--egress", "open"], /--egress.*deny or allow-internet/],
    ];
    for (const [flags, message] of bad) {
      const r = await volar([...s, "vms", "create", "x", ...flags]);
      equal(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
      match(r.stderr, message);
    }
    const ghost = await volar([...s, "vms", "create", "x", "--allow-from", "ghost", "--no-wait"]);
    equal(ghost.code, 1);
    match(ghost.stderr, /network_policy\.allow_from\[0\]: VM ghost does not exist/);

    equal((await volar([...s, "vms", "create", "a", "--no-wait"])).code, 0);
    const created = await volar([
      ...s,
      "vms",
      "create",
      "b",
      "--egress",
      "deny",
      "--allow-egress",
      "198.51.100.0/24:443",
      "--allow-from",
      "a",
      "--allow-host-port",
      "53/udp",
      "--json",
    ]);
    equal(created.code, 0, created.stderr);
    deepEqual(VmRecord.parse(JSON.parse(created.stdout)).network_policy, {
      egress: "deny",
      allow_egress: [{ cidr: "198.51.100.0/24", protocol: "tcp", port: 443 }],
      allow_from: ["a"],
      allow_host_ports: [{ port: 53, protocol: "udp" }],
    });
    const got = await volar([...s, "vms", "get", "b"]);
    match(got.stdout, /^egress: +deny, \+ 198\.51\.100\.0\/24:443\/tcp$/m);
    match(got.stdout, /^allow from: +a$/m);
    match(got.stdout, /^host ports: +53\/udp$/m);

    // Shown without flags; replaced whole with them.
    const shown = await volar([...s, "vms", "policy", "b", "--json"]);
    equal(NetworkPolicy.parse(JSON.parse(shown.stdout)).egress, "deny");
    const replaced = await volar([...s, "vms", "policy", "b", "--allow-egress", "203.0.113.7"]);
    equal(replaced.code, 0, replaced.stderr);
    match(replaced.stdout, /^egress: +allow-internet, \+ 203\.0\.113\.7$/m);
    match(replaced.stdout, /^allow from: +-$/m);

    equal((await volar([...s, "vms", "stop", "b"])).code, 0);
    const stopped = await volar([...s, "vms", "policy", "b", "--egress", "deny"]);
    equal(stopped.code, 1);
    match(stopped.stderr, /VM b is stopped: a network policy is changed on a running VM/);
  } finally {
    await daemon.stop();
  }
});
