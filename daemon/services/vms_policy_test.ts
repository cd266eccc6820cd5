import { deepEqual, equal, match, ok } from "node:assert/strict";
import { AGENT_PORT, DEFAULT_NETWORK_POLICY, type VmRecord } from "../../schema/mod.ts";
import { writeCpio } from "../../kernels/cpio.ts";
import { caught, makeTestEnv, type TestEnv } from "../testing.ts";
import { fakeGuestAgent, FakeHostNetwork } from "../network/mod.ts";
import { reconcile } from "./reconcile.ts";

const GATEWAY = "192.168.127.1";

/** An env whose fake network checks policies against the pool's subnet, as the real one does. */
async function policyEnv(): Promise<{ env: TestEnv; net: FakeHostNetwork }> {
  const env = await makeTestEnv();
  const net = new FakeHostNetwork({
    agent: fakeGuestAgent(env.registry),
    subnet: "192.168.127.0/24",
    gateway: GATEWAY,
  });
  return { env, net };
}

/** What `from` may reach, as `to:port` → yes/no (TCP). */
function reach(net: FakeHostNetwork, from: VmRecord, targets: [string, number][]): string[] {
  return targets.map(([to, port]) =>
    `${to}:${port} ${net.allows(from.ip!, to, port) ? "yes" : "no"}`
  );
}

Deno.test("policy: by default a VM reaches the internet and nothing else", async () => {
  const { env, net } = await policyEnv();
  const d = env.open({}, net);
  try {
    const a = await d.service.create({ name: "a" });
    const b = await d.service.create({ name: "b" });
    deepEqual(a.network_policy, DEFAULT_NETWORK_POLICY);
    deepEqual(net.policies.map((p) => [p.owner, p.link, p.address, p.mac]), [
      ["a", "vt-a", a.ip, a.mac],
      ["b", "vt-b", b.ip, b.mac],
    ]);
    deepEqual(net.policies[1]!.closedPorts, [{ port: AGENT_PORT, protocol: "tcp" }]);
    deepEqual(
      reach(net, a, [
        [b.ip!, 80],
        [b.ip!, AGENT_PORT],
        [GATEWAY, 9000],
        [
          "169.254.169.254",
          80,
        ],
        ["10.1.2.3", 443],
        ["198.51.100.2", 443],
      ]),
      [
        `${b.ip}:80 no`,
        `${b.ip}:${AGENT_PORT} no`,
        `${GATEWAY}:9000 no`,
        "169.254.169.254:80 no",
        "10.1.2.3:443 no",
        "198.51.100.2:443 yes",
      ],
    );
    ok(net.allows(GATEWAY, b.ip!, AGENT_PORT), "the daemon reaches kestrel");
  } finally {
    await env.dispose();
  }
});

Deno.test("policy: opt-ins at create, shown on the record", async () => {
  const { env, net } = await policyEnv();
  const d = env.open({}, net);
  try {
    const a = await d.service.create({ name: "a" });
    const b = await d.service.create({
      name: "b",
      network_policy: {
        egress: "deny",
        allow_egress: [{ cidr: "198.51.100.2", port: 8081 }],
        allow_from: ["a"],
        allow_host_ports: [{ port: 53, protocol: "udp" }],
      },
    });
    deepEqual(b.network_policy, {
      egress: "deny",
      allow_egress: [{ cidr: "198.51.100.2", protocol: "tcp", port: 8081 }],
      allow_from: ["a"],
      allow_host_ports: [{ port: 53, protocol: "udp" }],
    });
    deepEqual(d.service.get("b").network_policy, b.network_policy);
    deepEqual(reach(net, a, [[b.ip!, 80], [b.ip!, AGENT_PORT]]), [
      `${b.ip}:80 yes`,
      `${b.ip}:${AGENT_PORT} no`,
    ]);
    deepEqual(reach(net, b, [[a.ip!, 80], ["198.51.100.2", 8081], ["198.51.100.2", 8082]]), [
      `${a.ip}:80 no`,
      "198.51.100.2:8081 yes",
      "198.51.100.2:8082 no",
    ]);
    ok(net.allows(b.ip!, GATEWAY, 53, "udp") && !net.allows(b.ip!, GATEWAY, 53, "tcp"));
  } finally {
    await env.dispose();
  }
});

Deno.test("policy: bad input at create names the field and leaves nothing", async () => {
  const { env, net } = await policyEnv();
  const d = env.open({}, net);
  try {
    const cases: [unknown, string, RegExp][] = [
      [{ allow_from: ["ghost"] }, "invalid_argument", /network_policy\.allow_from\[0\]: VM ghost/],
      [{ allow_from: ["b"] }, "invalid_argument", /network_policy\.allow_from\[0\]: b is this VM/],
      [
        { allow_egress: [{ cidr: "198.51.100.7/24" }] },
        "invalid_argument",
        /network_policy\.allow_egress\.0\.cidr: has host bits set/,
      ],
      [
        { allow_host_ports: [{ port: 70000 }] },
        "invalid_argument",
        /network_policy\.allow_host_ports\.0\.port/,
      ],
      [{ egress: "open" }, "invalid_argument", /network_policy\.egress/],
    ];
    for (const [network_policy, code, message] of cases) {
      const err = await caught(() => d.service.create({ name: "b", network_policy }));
      equal(err.code, code, err.message);
      match(err.message, message);
      equal(d.store.vms.get("b"), undefined, "no row");
      ok(!net.taps.has("vt-b"), "no tap");
      deepEqual(net.policies, []);
    }
  } finally {
    await env.dispose();
  }
});

Deno.test("policy: changed while the VM runs, all or nothing; refused when it does not run", async () => {
  const { env, net } = await policyEnv();
  const d = env.open({}, net);
  try {
    const a = await d.service.create({ name: "a" });
    const b = await d.service.create({ name: "b" });
    await d.service.wait("b", "running", 5_000);
    const changed = await d.service.setNetworkPolicy("b", { allow_from: ["a"] });
    deepEqual(changed.network_policy, { ...DEFAULT_NETWORK_POLICY, allow_from: ["a"] });
    ok(net.allows(a.ip!, b.ip!, 80), "applied at once");

    // Bad input: the field is named; nothing changes.
    for (
      const [body, message] of [
        [{ allow_from: ["ghost"] }, /^allow_from\[0\]: VM ghost does not exist/],
        [{ allow_egress: [{ cidr: "10.0.0.0/33" }] }, /allow_egress\.0\.cidr: must be an IPv4/],
        [{ allow_egress: [{ cidr: "10.0.0.0/8", port: 0 }] }, /allow_egress\.0\.port/],
        [{ allow_from: ["a"], extra: 1 }, /extra/],
      ] as const
    ) {
      const err = await caught(() => d.service.setNetworkPolicy("b", body));
      equal(err.code, "invalid_argument", err.message);
      match(err.message, message);
      deepEqual(d.service.get("b").network_policy.allow_from, ["a"]);
    }

    // nft refuses: the store keeps the old policy, the rules stay as they were.
    const before = structuredClone(net.policies);
    net.fail.setPolicies = new Error("nft: Could not process rule");
    const failed = await caught(() => d.service.setNetworkPolicy("b", { egress: "deny" }));
    match(failed.message, /Could not process rule/);
    deepEqual(d.service.get("b").network_policy, { ...DEFAULT_NETWORK_POLICY, allow_from: ["a"] });
    deepEqual(net.policies, before);

    await d.service.stop("b");
    const stopped = await caught(() => d.service.setNetworkPolicy("b", { egress: "deny" }));
    equal(stopped.code, "invalid_state");
    match(stopped.message, /VM b is stopped: .*start it first \(volar vms start b\)/);
    equal((await caught(() => d.service.setNetworkPolicy("nope", {}))).code, "not_found");
  } finally {
    await env.dispose();
  }
});

Deno.test("policy: rules go with the tap and the VM, and come back with them", async () => {
  const { env, net } = await policyEnv();
  const d = env.open({}, net);
  try {
    const a = await d.service.create({ name: "a" });
    await d.service.create({ name: "b", network_policy: { allow_from: ["a"] } });
    deepEqual(net.policies.find((p) => p.owner === "b")?.allowFrom, [a.ip]);
    await d.service.stop("a");
    deepEqual(net.policies.map((p) => p.owner), ["b"], "a's rules went with its tap");
    deepEqual(
      net.policies[0]!.allowFrom,
      [a.ip],
      "a stopped peer keeps its lease (and its place)",
    );
    await d.service.start("a");
    deepEqual(net.policies.map((p) => p.owner), ["a", "b"]);
    await d.service.delete("a");
    deepEqual(net.policies.map((p) => [p.owner, p.allowFrom]), [["b", []]], "a deleted peer goes");
    deepEqual(d.service.get("b").network_policy.allow_from, []);
    await d.service.delete("b");
    deepEqual(net.policies, []);
  } finally {
    await env.dispose();
  }
});

Deno.test("policy: a restarted daemon rewrites the rules from the store", async () => {
  const { env, net } = await policyEnv();
  try {
    const first = env.open({}, net);
    await first.service.create({ name: "a" });
    await first.service.create({ name: "b", network_policy: { allow_from: ["a"] } });
    const wanted = structuredClone(net.policies);
    await first.close();
    net.policies = []; // e.g. the host rebooted its nftables
    const second = env.open({}, net);
    await reconcile(second.service);
    deepEqual(net.policies, wanted);
  } finally {
    await env.dispose();
  }
});

Deno.test("policy: a plugin's manifest gives the default, the request overrides field by field", async () => {
  const { env, net } = await policyEnv();
  const d = env.open({}, net);
  try {
    const archive = new Uint8Array(writeCpio([{ type: "dir", path: "www", mode: 0o755 }]));
    const archivePath = `${env.root}/web.cpio`;
    await Deno.writeFile(archivePath, archive);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", archive));
    const checksum = `sha256:${
      Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")
    }`;
    await d.plugins.install({
      allow_unsigned: true,
      manifest: {
        name: "web",
        version: "1.0.0",
        initramfs: { url: archivePath, checksum },
        resources: { cpu_cores: 1, memory_mb: 256 },
        workload: { entrypoint: ["/bin/httpd"], base_url: "http://127.0.0.1:80" },
        network: {
          egress: "deny",
          allow_egress: [{ cidr: "198.51.100.0/24", port: 443 }],
          allow_host_ports: [{ port: 53, protocol: "udp" }],
        },
      },
    });
    const plain = await d.service.create({ name: "w1", plugin: "web" });
    deepEqual(plain.network_policy, {
      egress: "deny",
      allow_egress: [{ cidr: "198.51.100.0/24", protocol: "tcp", port: 443 }],
      allow_from: [],
      allow_host_ports: [{ port: 53, protocol: "udp" }],
    });
    const mine = await d.service.create({
      name: "w2",
      plugin: "web",
      network_policy: { egress: "allow-internet", allow_from: ["w1"] },
    });
    deepEqual(mine.network_policy, {
      egress: "allow-internet",
      allow_egress: [{ cidr: "198.51.100.0/24", protocol: "tcp", port: 443 }],
      allow_from: ["w1"],
      allow_host_ports: [{ port: 53, protocol: "udp" }],
    });
  } finally {
    await env.dispose();
  }
});
