import { deepEqual, equal, match, ok } from "node:assert/strict";
import { decodeBootConfig, VolantError } from "../../schema/mod.ts";
import { caught, makeTestEnv, type TestEnv } from "../testing.ts";
import { fakeGuestAgent, FakeHostNetwork } from "../network/mod.ts";

/** Asserts that VM `name` left nothing: row, lease, port, tap, forward, process. */
function assertGone(env: TestEnv, d: ReturnType<TestEnv["open"]>, name: string): void {
  equal(d.store.vms.get(name), undefined, "row left behind");
  ok(d.store.leases.list().every((l) => l.vm !== name), "lease left behind");
  ok(d.store.ports.list().every((p) => p.vm !== name), "published port left behind");
  ok(!env.network.taps.has(`vt-${name}`), "tap left behind");
  ok(env.network.forwards.every((f) => f.owner !== name), "forward left behind");
  deepEqual(env.registry.alive().filter((p) => p.spec.id === name).map((p) => p.pid), []);
}

Deno.test("a VM gets the lowest free address in numeric order, a MAC, a tap and a NIC", async () => {
  const env = await makeTestEnv();
  const d = env.open();
  try {
    for (let i = 2; i <= 9; i++) await d.service.create({ name: `a${i}` });
    deepEqual(
      d.service.list().map((v) => v.ip),
      [2, 3, 4, 5, 6, 7, 8, 9].map((i) => `192.168.127.${i}`),
    );
    await d.service.create({ name: "x", ip: "192.168.127.100" });
    await d.service.create({ name: "x2", ip: "192.168.127.101" });
    const y = await d.service.create({ name: "y" });
    equal(y.ip, "192.168.127.10", "after .9 comes .10, not .100 or .11");
    await d.service.delete("a5");
    equal((await d.service.create({ name: "z" })).ip, "192.168.127.5", "a freed address is reused");
    equal((await d.service.create({ name: "w" })).ip, "192.168.127.11");

    const web = await d.service.create({ name: "web" });
    match(web.mac ?? "", /^02(:[0-9a-f]{2}){5}$/);
    equal(web.tap, "vt-web");
    ok(env.network.taps.has("vt-web"));
    const proc = env.registry.get(web.pid!)!;
    deepEqual(proc.spec.nics, [{ id: "eth0", tap: "vt-web", mac: web.mac }]);
    deepEqual(decodeBootConfig(proc.spec.cmdline)?.network, {
      ip: web.ip,
      prefix: 24,
      gateway: "192.168.127.1",
      mac: web.mac,
    });
    const leases = d.store.leases.list().map((l) => l.ip);
    equal(new Set(leases).size, leases.length, "no address twice");
    ok(!leases.includes("192.168.127.1") && !leases.includes("192.168.127.0"));
  } finally {
    await env.dispose();
  }
});

Deno.test("the lease and ports stay across stop/start; the tap goes with the VMM", async () => {
  const env = await makeTestEnv();
  const d = env.open();
  try {
    const created = await d.service.create({
      name: "web",
      publish: [{ host_port: 8080, guest_port: 80 }],
    });
    deepEqual(env.network.forwards, [{
      hostPort: 8080,
      guestIp: created.ip,
      guestPort: 80,
      protocol: "tcp",
      owner: "web",
    }]);
    await d.service.wait("web", "running", 5_000);
    const stopped = await d.service.stop("web");
    equal(stopped.tap, null);
    equal(stopped.ip, created.ip);
    deepEqual(stopped.ports, created.ports);
    ok(!env.network.taps.has("vt-web"), "the tap is deleted with the VMM");
    equal(env.network.forwards.length, 1, "a stopped VM keeps its published port");
    const started = await d.service.start("web");
    equal(started.ip, created.ip);
    equal(started.mac, created.mac, "the MAC is stable");
    equal(started.tap, "vt-web");
    await d.service.wait("web", "running", 5_000);
    await d.service.restart("web");
    equal((await d.service.wait("web", "running", 5_000)).ip, created.ip);
    await d.service.delete("web");
    deepEqual(env.network.forwards, []);
    assertGone(env, d, "web");
    equal(env.network.taps.size, 0);
  } finally {
    await env.dispose();
  }
});

Deno.test("bad network input is refused naming the field; nothing is left", async (t) => {
  const env = await makeTestEnv();
  const d = env.open();
  try {
    await d.service.create({
      name: "web",
      ip: "192.168.127.50",
      publish: [{ host_port: 8080, guest_port: 80 }],
    });
    env.network.listening.add("9090/tcp");
    const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
      [
        "address taken",
        { ip: "192.168.127.50" },
        "ip_unavailable",
        /^ip: 192\.168\.127\.50 is already leased to VM web/,
      ],
      [
        "gateway",
        { ip: "192.168.127.1" },
        "ip_unavailable",
        /^ip: 192\.168\.127\.1 is the gateway/,
      ],
      [
        "outside the pool",
        { ip: "10.9.9.9" },
        "invalid_argument",
        /^ip: 10\.9\.9\.9 is outside pool/,
      ],
      ["IPv6 address", { ip: "fd00::5" }, "invalid_argument", /ip: must be an IPv4 address/],
      [
        "port published by a VM",
        { publish: [{ host_port: 8080, guest_port: 81 }] },
        "already_exists",
        /^publish\[0\]\.host_port: host port 8080\/tcp is already published by VM web/,
      ],
      [
        "port with a host listener",
        { publish: [{ host_port: 9090, guest_port: 80 }] },
        "already_exists",
        /^publish\[0\]\.host_port: host port 9090\/tcp is in use on the host/,
      ],
      [
        "port twice",
        { publish: [{ host_port: 7000, guest_port: 1 }, { host_port: 7000, guest_port: 2 }] },
        "already_exists",
        /^publish\[1\]\.host_port: host port 7000\/tcp is also publish\[0\]/,
      ],
      [
        "port out of range",
        { publish: [{ host_port: 70000, guest_port: 80 }] },
        "invalid_argument",
        /publish\.0\.host_port/,
      ],
    ];
    for (const [label, extra, code, message] of cases) {
      await t.step(label, async () => {
        const err = await caught(() => d.service.create({ name: "other", ...extra }));
        equal(err.code, code, err.message);
        match(err.message, message);
        assertGone(env, d, "other");
        equal(d.store.leases.list().length, 1);
      });
    }
    const udp = await d.service.create({
      name: "dns",
      publish: [{ host_port: 8080, guest_port: 53, protocol: "udp" }],
    });
    equal(udp.ports[0]?.protocol, "udp", "the same port number over UDP is another port");
  } finally {
    await env.dispose();
  }
});

Deno.test("a pool runs out with ip_pool_exhausted and the freed address is leased again", async () => {
  const env = await makeTestEnv({}, { subnet: "10.20.0.0/29", gateway: "10.20.0.1" });
  const d = env.open();
  try {
    for (const i of [2, 3, 4, 5, 6]) {
      equal((await d.service.create({ name: `vm${i}` })).ip, `10.20.0.${i}`);
    }
    const err = await caught(() => d.service.create({ name: "more" }));
    equal(err.code, "ip_pool_exhausted");
    match(err.message, /No free address left in pool 10\.20\.0\.0\/29/);
    assertGone(env, d, "more");
    await d.service.delete("vm4");
    equal((await d.service.create({ name: "more" })).ip, "10.20.0.4");
  } finally {
    await env.dispose();
  }
});

Deno.test("a create that fails halfway removes the tap and frees the lease", async (t) => {
  const env = await makeTestEnv();
  const d = env.open();
  try {
    await t.step("the VMM fails to start", async () => {
      d.driver.setBehavior({ createError: new VolantError("vmm_failed", "qemu: no tap") });
      const err = await caught(() =>
        d.service.create({ name: "a", publish: [{ host_port: 8081, guest_port: 80 }] })
      );
      equal(err.code, "vmm_failed");
      equal(env.network.calls.createTap, 1, "the tap was created before the VMM");
      assertGone(env, d, "a");
      d.driver.setBehavior({});
    });
    await t.step("the tap cannot be created", async () => {
      env.network.fail.createTap = new VolantError("network_error", "create tap: EPERM");
      const err = await caught(() => d.service.create({ name: "b" }));
      equal(err.code, "network_error");
      assertGone(env, d, "b");
    });
    await t.step("the port forwards cannot be set", async () => {
      env.network.fail.setForwards = new VolantError("network_error", "nft: boom");
      const err = await caught(() =>
        d.service.create({ name: "c", publish: [{ host_port: 8082, guest_port: 80 }] })
      );
      equal(err.code, "network_error");
      assertGone(env, d, "c");
    });
    equal(d.store.leases.list().length, 0);
    equal(env.network.taps.size, 0);
    const ok1 = await d.service.create({
      name: "d",
      publish: [{ host_port: 8081, guest_port: 80 }],
    });
    equal(ok1.ip, "192.168.127.2", "every failed create gave its address back");
  } finally {
    await env.dispose();
  }
});

Deno.test("readiness is kestrel's /healthz: boot_ms counts to the first healthy answer", async (t) => {
  await t.step("the serial ready line alone does not make a VM running", async () => {
    const env = await makeTestEnv({ readyMs: 300 });
    const silent = new FakeHostNetwork(); // nothing answers /healthz

    const d = env.open({}, silent);
    try {
      await d.service.create({ name: "web" });
      const err = await caught(() => d.service.wait("web", "running", 5_000));
      equal(err.code, "invalid_state");
      const vm = d.service.get("web");
      equal(vm.state, "crashed");
      match(vm.last_error ?? "", /did not answer http:\/\/192\.168\.127\.2:12751\/healthz/);
      match(vm.last_error ?? "", /although it printed KESTREL_READY/);
      match(vm.last_error ?? "", /last probe: connection refused/);
      ok(silent.calls.probeAgent >= 2, `probed ${silent.calls.probeAgent} times`);
      equal(silent.taps.size, 0);
    } finally {
      await env.dispose();
    }
  });
  await t.step("an answer naming another VM is not this VM's readiness", async () => {
    const env = await makeTestEnv({ readyMs: 300 });
    const imposter = new FakeHostNetwork({
      agent: (ip) => ({
        status: "ok",
        name: "someone-else",
        hostname: "x",
        kestrel_version: "fake",
        uptime_ms: 1,
        ip,
        mac: null,
      }),
    });
    const d = env.open({}, imposter);
    try {
      await d.service.create({ name: "web" });
      await caught(() => d.service.wait("web", "running", 5_000));
      match(d.service.get("web").last_error ?? "", /it answered as VM someone-else/);
    } finally {
      await env.dispose();
    }
  });
  await t.step("a guest that answers late is running, boot_ms to the answer", async () => {
    const env = await makeTestEnv();
    const agent = fakeGuestAgent(env.registry);
    let openAt = Infinity;
    const late = new FakeHostNetwork({
      agent: (ip) => performance.now() >= openAt ? agent(ip) : null,
    });
    const d = env.open({ behavior: { readyDelayMs: 20 } }, late);
    try {
      const began = performance.now();
      openAt = began + 400;
      await d.service.create({ name: "web" });
      const vm = await d.service.wait("web", "running", 5_000);
      ok(vm.boot_ms! >= 350, `boot_ms ${vm.boot_ms} counts to the /healthz answer`);
      ok(late.calls.probeAgent >= 3);
    } finally {
      await env.dispose();
    }
  });
});
