import { deepEqual, equal, match, ok } from "node:assert/strict";
import { Health } from "../schema/mod.ts";
import type { KvmStatus } from "../hypervisor/kvm.ts";
import { probeQemu } from "../hypervisor/qemu/probe.ts";
import { type FakeVmmConfig, readTrace, writeFakeCh } from "../hypervisor/testing/fake_ch_vmm.ts";
import { vendoredDocument } from "../hypervisor/testing/openapi_contract.ts";
import { volar } from "../cli/testing.ts";
import { DoctorReport } from "../cli/commands/doctor.ts";
import { parseConfig } from "./config.ts";
import { driverFactoryWith } from "./driver_factory.ts";
import { createLogger } from "./log.ts";
import { main } from "./main.ts";
import { fakeGuestAgent, FakeHostNetwork } from "./network/mod.ts";
import { FakeRegistry } from "../hypervisor/fake/mod.ts";
import { unixFetch } from "./testing.ts";

// volantd's real driver factory against a stand-in Cloud Hypervisor on a host whose KVM answers
// (by fiat): the probe boot, the kernel each hypervisor gets, the verdict cache, the fallback.
const KVM: KvmStatus = { available: true, path: "/dev/kvm", apiVersion: 12, modules: ["kvm_pvm"] };
const DOCUMENT = vendoredDocument("cloud_hypervisor/openapi/openapi-v53.0.yaml");
const qemu = await probeQemu("qemu-system-x86_64");

interface Layout {
  dir: string;
  trace: string;
  config: ReturnType<typeof parseConfig>;
  configFile: string;
  factory: ReturnType<typeof driverFactoryWith>;
  logs: string[];
  logger: ReturnType<typeof createLogger>;
}

async function layout(fake: Omit<FakeVmmConfig, "document" | "version"> = {}): Promise<Layout> {
  const dir = await Deno.makeTempDir({ prefix: "volant-driver-factory-" });
  await Deno.mkdir(`${dir}/guest`);
  // The stand-in VMM only checks that the files exist; their bytes feed the verdict key.
  await Deno.writeFile(`${dir}/guest/vmlinux-generic`, new Uint8Array([0x7f, 0x45, 0x4c, 0x46]));
  await Deno.writeTextFile(`${dir}/guest/bzImage-volant`, "bzImage");
  await Deno.writeFile(`${dir}/guest/initramfs.cpio`, new Uint8Array(512));
  await Deno.writeFile(`${dir}/guest/runtime.erofs`, new Uint8Array(512));
  const trace = `${dir}/ch-trace.jsonl`;
  const ch = await writeFakeCh(dir, { document: DOCUMENT, version: "53.0.0", trace, ...fake });
  const raw = {
    state_dir: `${dir}/state`,
    runtime_dir: `${dir}/run`,
    log_dir: `${dir}/log`,
    guest: { dir: `${dir}/guest` },
    api: { socket_mode: 0o600 },
    hypervisor: {
      cloud_hypervisor_binary: ch.path,
      firecracker_binary: "/nonexistent/firecracker",
      boot_probe_timeout_ms: 1_500,
    },
  };
  const configFile = `${dir}/config.json`;
  await Deno.writeTextFile(configFile, JSON.stringify(raw));
  const logs: string[] = [];
  return {
    dir,
    trace,
    config: parseConfig(raw, () => undefined),
    configFile,
    factory: driverFactoryWith({ kvm: KVM, processExe: { "cloud-hypervisor": ch.processExe } }),
    logs,
    logger: createLogger({ sink: (l) => logs.push(l) }),
  };
}

/** The `vm.create` bodies the stand-in saw: the kernel and command line of each boot. */
async function creates(trace: string): Promise<Array<{ kernel: string; cmdline: string }>> {
  const entries = await readTrace(trace).catch(() => []);
  return entries.filter((e) => e.path === "/api/v1/vm.create").map((e) => {
    const payload = (e.body as { payload: { kernel: string; cmdline: string } }).payload;
    return { kernel: payload.kernel, cmdline: payload.cmdline };
  });
}

Deno.test("volantd proves KVM by booting vmlinux-generic through Cloud Hypervisor, then reuses the verdict until the kernel changes", async () => {
  const t = await layout();
  try {
    const first = await t.factory(t.config, t.logger);
    ok("acceleration" in first);
    equal(first.driver.name, "cloud-hypervisor", t.logs.join("\n"));
    equal(first.driver.kvm, true);
    equal(first.acceleration.accel, "kvm");
    equal(first.acceleration.probe?.cached, false);
    let boots = await creates(t.trace);
    equal(boots.length, 1, "one probe boot");
    equal(boots[0]!.kernel, `${t.dir}/guest/vmlinux-generic`, "auto hands CH vmlinux-generic");
    match(boots[0]!.cmdline, /volant\.probe=[0-9a-f]{16}/);
    equal((await Deno.stat(t.config.hypervisor.boot_verdicts)).mode! & 0o777, 0o600);
    equal(await Deno.stat(`${t.dir}/run/probe`).then(() => true, () => false), false);

    // Second start: the cached verdict, no boot.
    const second = await t.factory(t.config, t.logger);
    ok("acceleration" in second);
    equal(second.acceleration.accel, "kvm");
    equal(second.acceleration.probe?.cached, true);
    equal((await creates(t.trace)).length, 1, "no second probe boot");

    // A new guest kernel (another sha256): probed again.
    await Deno.writeFile(
      `${t.dir}/guest/vmlinux-generic`,
      new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 1]),
    );
    const third = await t.factory(t.config, t.logger);
    ok("acceleration" in third);
    equal(third.acceleration.probe?.cached, false);
    boots = await creates(t.trace);
    equal(boots.length, 2, "the kernel's change invalidated the verdict");

    // A corrupt cache is reported, probed past and replaced.
    await Deno.writeTextFile(t.config.hypervisor.boot_verdicts, "{not json");
    const fourth = await t.factory(t.config, t.logger);
    ok("acceleration" in fourth);
    equal(fourth.acceleration.probe?.cached, false);
    ok(t.logs.some((l) => /boot verdict cache unusable/.test(l) && /is not JSON/.test(l)));
    const file = JSON.parse(await Deno.readTextFile(t.config.hypervisor.boot_verdicts));
    equal(file.verdicts.length, 1);
  } finally {
    await Deno.remove(t.dir, { recursive: true });
  }
});

Deno.test({
  name: "volantd passes over a Cloud Hypervisor whose guest hangs within the probe deadline, " +
    "runs QEMU under TCG, and /healthz and volar doctor say why" +
    (qemu.available ? "" : ` (skipped: QEMU is unavailable here: ${qemu.reason})`),
  ignore: !qemu.available,
  fn: async () => {
    const t = await layout({ hangGuest: true });
    const registry = new FakeRegistry();
    const abort = new AbortController();
    const listening = Promise.withResolvers<string>();
    const started = Date.now();
    const code = main(["--config", t.configFile], {
      driverFactory: t.factory,
      networkFactory: () => new FakeHostNetwork({ agent: fakeGuestAgent(registry) }),
      env: () => undefined,
      signal: abort.signal,
      logger: t.logger,
      onListening: (info) => listening.resolve(info.socket),
    });
    try {
      const socket = await Promise.race([
        listening.promise,
        code.then((c) => {
          throw new Error(`volantd exited with ${c}:\n${t.logs.join("\n")}`);
        }),
      ]);
      // Cloud Hypervisor's probe hangs until its 1.5 s deadline; QEMU's KVM probe fails too
      // (the stand-in kernel file boots nothing), so QEMU runs under TCG.
      ok(Date.now() - started < 30_000, `volantd took ${Date.now() - started} ms to listen`);
      const health = Health.parse((await unixFetch(socket, "/healthz")).body);
      equal(health.hypervisor.name, "qemu");
      equal(health.hypervisor.kvm, false);
      equal(health.hypervisor.acceleration.accel, "tcg");
      match(
        health.hypervisor.acceleration.reason,
        /^\/dev\/kvm is present but the guest kernel does not boot under it \(nested PVM: .*\): using TCG$/,
      );
      const selected = t.logs.map((l) => JSON.parse(l)).find((l) =>
        l.msg === "hypervisor selected"
      );
      match(selected?.why ?? "", /passed over: cloud-hypervisor \(KVM only\): .*Probing EDD/);
      const ready = t.logs.map((l) => JSON.parse(l)).find((l) => l.msg === "volantd ready");
      equal(ready?.accel, "tcg");

      const r = await volar(["doctor", "--json", "--config", t.configFile, "--socket", socket]);
      const report = DoctorReport.parse(JSON.parse(r.stdout));
      equal(report.acceleration.source, "daemon");
      deepEqual(report.acceleration.verdict, health.hypervisor.acceleration);
      const check = report.checks.find((c) => c.id === "accel");
      equal(check?.status, "warn");
      match(check?.detail ?? "", /does not boot under it .*: using TCG \(volantd: /);
    } finally {
      abort.abort();
      await code;
      registry.dispose();
      await Deno.remove(t.dir, { recursive: true });
    }
  },
});
