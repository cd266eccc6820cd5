import assert from "node:assert/strict";
import { netlinkError } from "../../net/netlink/error.ts";
import { AgentHealth } from "../../schema/agent.ts";
import { IdentityReply } from "../../schema/guest_control.ts";
import { createRouter } from "../api/router.ts";
import { apiRoutes } from "../api/routes.ts";
import { ApiBinding } from "./api_binding.ts";
import { applyIdentity } from "./identity.ts";
import {
  BOOT_NETWORK,
  ENTROPY_BYTES,
  fakeDeps,
  identity,
  NEW_SECRET,
  OLD_SECRET,
} from "./testing.ts";

const HEX = Array.from(ENTROPY_BYTES, (b) => b.toString(16)).join("");

Deno.test("applyIdentity() runs every step in order with the message's values", async () => {
  const { deps, calls, logs, info } = fakeDeps({ restoreSignal: "SIGHUP" });
  const reply = await applyIdentity(identity(1), deps);
  IdentityReply.parse(reply);
  assert.deepEqual(reply, {
    kind: "identity_applied",
    generation: 1,
    steps: ["entropy", "clock", "hostname", "network", "api", "signal"],
    ms: 7,
  });
  assert.deepEqual(calls, [
    `entropy ${HEX}`,
    "clock 1900000000123",
    "hostname web-clone-1",
    "files web-1 10.1.2.10 -> web-clone-1 10.1.2.11",
    "mac 52:54:00:12:34:57 eth0",
    "delete 10.1.2.10/24 eth0",
    "address 10.1.2.11/24 eth0",
    "default via 10.1.2.1 eth0",
    `secret ${NEW_SECRET}`,
    "api 10.1.2.11:12751",
    "signal SIGHUP",
  ]);
  assert.deepEqual(info, {
    name: "web-clone",
    hostname: "web-clone-1",
    status: "ok",
    ip: "10.1.2.11",
    mac: "52:54:00:12:34:57",
  });
  assert.deepEqual(deps.current, {
    generation: 1,
    name: "web-clone",
    hostname: "web-clone-1",
    network: {
      ip: "10.1.2.11",
      prefix: 24,
      cidr: "10.1.2.11/24",
      gateway: "10.1.2.1",
      mac: "52:54:00:12:34:57",
      nic: "eth0",
      nicMac: "52:54:00:12:34:57",
    },
  });
  assert.equal(logs.length, 1);
  assert.match(
    logs[0]!,
    new RegExp(
      "^new identity \\(generation 1\\): web-clone 10\\.1\\.2\\.11/24 mac 52:54:00:12:34:57, " +
        "hostname web-clone-1, applied in 7 ms \\(entropy \\d+, clock \\d+, hostname \\d+, " +
        "network \\d+, api \\d+, signal \\d+\\)$",
    ),
  );
  assert.ok(!logs.join("\n").includes(NEW_SECRET), "the secret is never logged");
});

Deno.test("applyIdentity(): the restore signal only when the manifest sets one and a run is up", async () => {
  const unset = fakeDeps();
  const a = await applyIdentity(identity(1), unset.deps);
  assert.ok(a.kind === "identity_applied" && !a.steps.includes("signal"), JSON.stringify(a));
  assert.ok(!unset.calls.some((c) => c.startsWith("signal")));

  const idle = fakeDeps({ restoreSignal: "SIGUSR1", running: false });
  const b = await applyIdentity(identity(1), idle.deps);
  assert.ok(b.kind === "identity_applied" && !b.steps.includes("signal"), JSON.stringify(b));

  const usr2 = fakeDeps({ restoreSignal: "SIGUSR2" });
  const c = await applyIdentity(identity(1), usr2.deps);
  assert.ok(c.kind === "identity_applied" && c.steps.at(-1) === "signal");
  assert.equal(usr2.calls.at(-1), "signal SIGUSR2");
});

Deno.test("applyIdentity(): a generation not above the last applied one is stale; nothing runs", async () => {
  const { deps, calls, logs } = fakeDeps();
  assert.equal((await applyIdentity(identity(2), deps)).kind, "identity_applied");
  calls.length = 0;
  for (const generation of [2, 1]) {
    const reply = await applyIdentity(identity(generation, { hostname: "other" }), deps);
    assert.equal(reply.kind, "identity_failed");
    assert.equal(reply.generation, generation);
    assert.match(
      (reply as { error: string }).error,
      /^stale generation \d: generation 2 is applied already$/,
    );
  }
  assert.deepEqual(calls, []);
  assert.equal(deps.current.hostname, "web-clone-1");
  assert.match(logs.at(-1)!, /^new identity \(generation 1\) refused: stale generation/);
  assert.equal((await applyIdentity(identity(3), deps)).kind, "identity_applied");
});

Deno.test("applyIdentity(): a message that cannot apply changes nothing and names the field", async () => {
  const cases: Array<[Parameters<typeof identity>[1], RegExp]> = [
    [{ hostname: "-bad-" }, /^hostname: "-bad-" is not a valid hostname/],
    [
      { network: { ip: "10.1.2.11", prefix: 24, gateway: "10.9.9.1" } },
      /^network\.gateway: 10\.9\.9\.1 is not in 10\.1\.2\.0\/24/,
    ],
    [{ network: { ip: "10.1.2", prefix: 24 } }, /^network\.ip: /],
  ];
  for (const [overrides, pattern] of cases) {
    const { deps, calls } = fakeDeps();
    const reply = await applyIdentity(identity(1, overrides), deps);
    assert.equal(reply.kind, "identity_failed");
    const error = (reply as { error: string }).error;
    assert.match(error, pattern);
    assert.match(error, /; nothing was changed$/);
    assert.deepEqual(calls, []);
    assert.equal(deps.current.generation, 0);
  }
  const { deps } = fakeDeps({ network: null });
  const reply = await applyIdentity(identity(1), deps);
  assert.match((reply as { error: string }).error, /^network: kestrel configured no network/);
});

Deno.test("applyIdentity(): a failing step is named; steps before it stay done; it may be resent", async () => {
  const eperm = new Error("EPERM: cannot delete address 10.1.2.10/24 from link eth0");
  const { deps, calls, info } = fakeDeps({ fail: { op: "deleteAddress", error: eperm } });
  const reply = await applyIdentity(identity(1), deps);
  assert.deepEqual(reply, {
    kind: "identity_failed",
    generation: 1,
    error: `network: ${eperm.message} (done before it, and kept: entropy, clock, hostname)`,
  });
  assert.deepEqual(calls.slice(-2), [
    "files web-1 10.1.2.10 -> web-clone-1 10.1.2.11",
    "mac 52:54:00:12:34:57 eth0",
  ]);
  assert.equal(info.hostname, "web-clone-1", "the hostname step stays done");
  assert.equal(info.ip, "10.1.2.10", "the address did not change");
  assert.equal(deps.current.generation, 0, "a failed identity is not applied");
  deps.net.deleteAddress = (link, cidr) => void calls.push(`delete ${cidr} ${link}`);
  calls.length = 0;
  const again = await applyIdentity(identity(1), deps);
  assert.equal(again.kind, "identity_applied", "the same generation, resent, applies");
  assert.ok(calls.includes("delete 10.1.2.10/24 eth0"), calls.join("\n"));
  assert.equal(info.ip, "10.1.2.11");

  const first = fakeDeps({ fail: { op: "entropy", error: new Error("ENOTTY") } });
  const early = await applyIdentity(identity(1), first.deps);
  assert.equal(
    (early as { error: string }).error,
    "entropy: ENOTTY (done before it, and kept: nothing)",
  );
  assert.deepEqual(first.calls, []);
});

Deno.test("applyIdentity(): EBUSY on the live MAC change: down, set, up, then the addresses", async () => {
  let busy = true;
  const { deps, calls } = fakeDeps();
  const setMac = deps.net.setMac;
  deps.net.setMac = (name, mac) => {
    if (busy) {
      busy = false;
      throw netlinkError(-16, { op: "set link", subject: `link ${name}`, link: name });
    }
    setMac(name, mac);
  };
  const reply = await applyIdentity(identity(1), deps);
  assert.equal(reply.kind, "identity_applied", JSON.stringify(reply));
  assert.deepEqual(calls.slice(4, 9), [
    "down eth0",
    "mac 52:54:00:12:34:57 eth0",
    "up eth0",
    "delete 10.1.2.10/24 eth0",
    "address 10.1.2.11/24 eth0",
  ]);
});

Deno.test("applyIdentity(): without a MAC, or with the same one, the MAC is not touched", async () => {
  for (const mac of [undefined, BOOT_NETWORK.mac]) {
    const { deps, calls, info } = fakeDeps();
    const network = { ip: "10.1.2.11", prefix: 24, gateway: "10.1.2.1", ...(mac ? { mac } : {}) };
    const reply = await applyIdentity(identity(1, { network }), deps);
    assert.equal(reply.kind, "identity_applied");
    assert.ok(!calls.some((c) => c.startsWith("mac ")), calls.join("\n"));
    assert.equal(info.mac, BOOT_NETWORK.nicMac);
  }
});

Deno.test("applyIdentity(): no host files (not an image root), no API, no workload: those steps are skipped", async () => {
  const { deps, calls } = fakeDeps({
    noHostFiles: true,
    api: null,
    noWorkload: true,
    restoreSignal: "SIGHUP",
  });
  const reply = await applyIdentity(identity(1), deps);
  assert.deepEqual(reply.kind === "identity_applied" && reply.steps, [
    "entropy",
    "clock",
    "hostname",
    "network",
  ]);
  assert.ok(!calls.some((c) => /^(files|secret|api|signal) /.test(c)), calls.join("\n"));
});

async function get(url: string, secret?: string): Promise<Response> {
  return await fetch(
    url,
    secret === undefined ? {} : { headers: { authorization: `Bearer ${secret}` } },
  );
}

Deno.test("applyIdentity() with the real API: the old secret is refused, the API moves to the new address", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const { deps, info } = fakeDeps({ api: null });
  Object.assign(info, { ip: "127.0.0.1" });
  deps.current.network = {
    ...BOOT_NETWORK,
    ip: "127.0.0.1",
    prefix: 8,
    cidr: "127.0.0.1/8",
    gateway: undefined,
  };
  const binding = new ApiBinding(
    createRouter(apiRoutes(info, { uptime: () => Promise.resolve(1000) })),
    OLD_SECRET,
  );
  binding.listen({ hostname: "127.0.0.1", port });
  try {
    deps.api = { setSecret: (s) => binding.setSecret(s), rebind: (a) => binding.rebind(a) };
    const before = await get(`http://127.0.0.1:${port}/healthz`, OLD_SECRET);
    assert.equal(before.status, 200);
    await before.body?.cancel();
    const reply = await applyIdentity(
      identity(1, {
        network: { ip: "127.0.0.2", prefix: 8, mac: "52:54:00:12:34:57" },
        agent: { port, secret: NEW_SECRET },
      }),
      deps,
    );
    assert.equal(reply.kind, "identity_applied", JSON.stringify(reply));
    assert.equal(binding.server?.hostname, "127.0.0.2");
    await assert.rejects(
      () => get(`http://127.0.0.1:${port}/healthz`, NEW_SECRET),
      "nothing listens on the old address",
    );
    const old = await get(`http://127.0.0.2:${port}/healthz`, OLD_SECRET);
    assert.equal(old.status, 401, "the old secret is refused");
    await old.body?.cancel();
    const now = await get(`http://127.0.0.2:${port}/healthz`, NEW_SECRET);
    assert.equal(now.status, 200);
    const health = AgentHealth.parse(await now.json());
    assert.deepEqual(
      [health.name, health.hostname, health.ip, health.mac],
      ["web-clone", "web-clone-1", "127.0.0.2", "52:54:00:12:34:57"],
    );
  } finally {
    await binding.stop();
  }
});

Deno.test("applyIdentity(): a restore in place (same address, MAC and port) reseeds, sets the clock and swaps the secret, moving nothing", async () => {
  const { deps, calls } = fakeDeps();
  deps.api!.address = () => ({ hostname: BOOT_NETWORK.ip, port: 12751 });
  const reply = await applyIdentity(
    identity(2, {
      name: "web",
      hostname: "web-1",
      network: { ip: "10.1.2.10", prefix: 24, gateway: "10.1.2.1", mac: "52:54:00:12:34:56" },
    }),
    deps,
  );
  assert.equal(reply.kind, "identity_applied", JSON.stringify(reply));
  assert.deepEqual(reply.kind === "identity_applied" && reply.steps, [
    "entropy",
    "clock",
    "hostname",
    "api",
  ]);
  assert.ok(!calls.some((c) => /^(mac|delete|address|default|api) /.test(c)), calls.join("\n"));
  assert.ok(calls.includes(`secret ${NEW_SECRET}`), "the old secret stops working");
});
