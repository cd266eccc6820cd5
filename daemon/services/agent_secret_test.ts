import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { readCpio } from "../../kernels/cpio.ts";
import { AGENT_PORT, type BootConfig, decodeBootConfig } from "../../schema/mod.ts";
import { caught, makeTestEnv, type TestEnv } from "../testing.ts";
import { vmPaths } from "./spec.ts";

/** The boot config in VM `name`'s per-VM initramfs archive, with the archive member's mode. */
async function bootFile(
  env: TestEnv,
  name: string,
): Promise<{ config: BootConfig; mode: number; uid: number }> {
  const initramfs = await Deno.readFile(vmPaths(env.config, name).initramfs);
  const shared = await Deno.readFile(`${env.guestDir}/initramfs.cpio`);
  const members = readCpio(initramfs.subarray(shared.length + ((4 - shared.length % 4) % 4)));
  const file = members.find((m) => m.path === "volant/boot.json")!;
  return {
    config: JSON.parse(new TextDecoder().decode(file.data)),
    mode: file.mode,
    uid: file.uid,
  };
}

Deno.test("kestrel's secret: new at each start, in the initramfs only, never in records, events, logs or the command line", async () => {
  const env = await makeTestEnv();
  const { service, store } = env.open();
  const events: string[] = [];
  service.events.subscribe((e) => events.push(JSON.stringify(e)));
  try {
    const created = await service.create({ name: "web", memory_mb: 256 });
    const { config, mode, uid } = await bootFile(env, "web");
    deepEqual([mode, uid], [0o600, 0], "boot.json is readable by root only");
    const secret = config.agent?.secret ?? "";
    match(secret, /^[A-Za-z0-9_-]{43}$/, "32 random bytes, base64url");
    equal(config.agent?.port, AGENT_PORT);
    const row = store.vms.get("web")!;
    equal(row.agent_secret?.reveal(), secret, "the daemon keeps the secret it booted the VM with");
    equal(row.agent_port, AGENT_PORT);
    const target = service.kestrelTarget("web");
    deepEqual([target.ip, target.port, target.secret?.reveal()], [created.ip, AGENT_PORT, secret]);

    const proc = env.registry.get(created.pid!)!;
    ok(!proc.spec.cmdline.includes(secret), "not on the kernel command line");
    equal(decodeBootConfig(proc.spec.cmdline)?.agent, undefined);

    const running = await service.wait("web", "running", 5_000);
    for (
      const [what, text] of [
        ["the record", JSON.stringify(running)],
        ["the list", JSON.stringify(service.list())],
        ["the events", events.join("\n")],
        ["the daemon's log", env.logs.join("\n")],
        ["the serial log", await Deno.readTextFile(vmPaths(env.config, "web").serialLog)],
      ] as const
    ) {
      ok(!text.includes(secret), `the secret is in ${what}`);
    }
    ok(!Object.keys(running).some((k) => k.startsWith("agent")), Object.keys(running).join());
    equal(JSON.stringify(row.agent_secret), '"[redacted]"', "a row rendered by accident");

    await service.stop("web");
    equal(store.vms.get("web")?.agent_secret, null, "the secret ends with the run");
    equal(
      (await caught(() => Promise.resolve().then(() => service.kestrelTarget("web")))).code,
      "invalid_state",
    );

    await service.start("web");
    const again = (await bootFile(env, "web")).config.agent?.secret;
    match(again ?? "", /^[A-Za-z0-9_-]{43}$/);
    notEqual(again, secret, "a new start gets a new secret");
    equal(store.vms.get("web")?.agent_secret?.reveal(), again);
  } finally {
    await env.dispose();
  }
});

Deno.test("kestrel's port: from the config, and never published", async () => {
  const env = await makeTestEnv({ agentPort: 7001 });
  const { service } = env.open();
  try {
    await service.create({ name: "web" });
    equal((await bootFile(env, "web")).config.agent?.port, 7001);
    equal(service.kestrelTarget("web").port, 7001);
    const refused = await caught(() =>
      service.create({
        name: "api",
        publish: [{ host_port: 8080, guest_port: 80 }, { host_port: 7001, guest_port: 7001 }],
      })
    );
    equal(refused.code, "invalid_argument");
    match(
      refused.message,
      /^publish\[1\]\.guest_port: 7001\/tcp is kestrel's API port in the guest, which only volantd may reach; publish the workload's own port, or move kestrel to another port with guest\.agent_port in the daemon config$/,
    );
    equal(service.list().length, 1, "nothing left of the refused VM");
    const udp = await service.create({
      name: "dns",
      publish: [{ host_port: 5353, guest_port: 7001, protocol: "udp" }],
    });
    equal(udp.ports[0]?.guest_port, 7001, "kestrel listens on TCP only");
  } finally {
    await env.dispose();
  }
});

Deno.test("a VM publishing the port the config later gives kestrel is refused at start", async () => {
  const env = await makeTestEnv();
  const first = env.open();
  try {
    await first.service.create({ name: "web", publish: [{ host_port: 8080, guest_port: 7002 }] });
    await first.service.stop("web");
    await first.close();
    env.config.agentPort = 7002;
    const second = env.open();
    const err = await caught(() => second.service.start("web"));
    equal(err.code, "invalid_argument");
    match(err.message, /^publish\[0\]\.guest_port: 7002\/tcp is kestrel's API port/);
    equal(second.service.get("web").state, "stopped");
  } finally {
    await env.dispose();
  }
});
