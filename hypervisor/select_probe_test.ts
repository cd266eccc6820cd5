import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { DaemonConfig, VolantError } from "../schema/mod.ts";
import { CloudHypervisorDriver } from "./cloud_hypervisor/driver.ts";
import type { Driver } from "./driver.ts";
import type { KvmStatus } from "./kvm.ts";
import { QemuDriver } from "./qemu/driver.ts";
import { probeQemu } from "./qemu/probe.ts";
import { type BootVerdict, chooseDriver, type SelectLogger } from "./select.ts";
import { writeFakeCh } from "./testing/fake_ch_vmm.ts";
import { writeFakeFc } from "./testing/fake_fc_vmm.ts";

// The selection logic on a host whose /dev/kvm answers but cannot run the guest, without
// needing such a host: KVM is "available" by fiat and the prover is a stand-in.
const defaults = DaemonConfig.parse({}).hypervisor;
const qemu = await probeQemu(defaults.qemu_binary);
const PVM: KvmStatus = {
  available: true,
  path: "/dev/kvm",
  apiVersion: 12,
  modules: ["kvm_pvm"],
  nested: true,
};
const skip = qemu.available ? "" : ` (skipped: QEMU is unavailable here: ${qemu.reason})`;

function recorder(): SelectLogger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, info: (msg, fields) => lines.push({ msg, ...fields }) };
}

/** A prover answering from `verdicts` by driver name, recording whom it was asked about. */
function stubProver(verdicts: Record<string, BootVerdict>) {
  const asked: Array<{ name: string; kvm: boolean }> = [];
  const prove = (driver: Driver): Promise<BootVerdict> => {
    asked.push({ name: driver.name, kvm: driver.kvm });
    return Promise.resolve(verdicts[driver.name] ?? { ok: true, cached: false, ms: 5 });
  };
  return { asked, prove };
}

const HUNG: BootVerdict = {
  ok: false,
  cached: false,
  ms: 15_000,
  reason: "the guest kernel did not reach its init within 15000 ms (last console line: " +
    "Probing EDD (edd=off to disable)... ok)",
};

async function withFakes(fn: (config: DaemonConfig["hypervisor"]) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "volant-select-probe-" });
  try {
    const ch = await writeFakeCh(dir, { document: "", version: "53.0.0" });
    const fc = await writeFakeFc(dir, { document: "", version: "1.16.1" });
    await fn({ ...defaults, cloud_hypervisor_binary: ch.path, firecracker_binary: fc.path });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "chooseDriver() passes over every VMM whose KVM probe hangs and runs QEMU under TCG" + skip,
  ignore: !qemu.available,
  fn: () =>
    withFakes(async (config) => {
      const { asked, prove } = stubProver({
        "cloud-hypervisor": HUNG,
        firecracker: HUNG,
        qemu: HUNG,
      });
      const log = recorder();
      const chosen = await chooseDriver(config, log, { kvm: PVM, prove });
      ok(chosen.driver instanceof QemuDriver);
      equal(chosen.driver.kvm, false, "QEMU fell back to TCG");
      deepEqual(asked, [
        { name: "cloud-hypervisor", kvm: true },
        { name: "firecracker", kvm: true },
        { name: "qemu", kvm: true },
      ]);
      equal(chosen.acceleration.accel, "tcg");
      match(
        chosen.acceleration.reason,
        /^\/dev\/kvm is present but the guest kernel does not boot under it \(nested PVM: .*\): using TCG$/,
      );
      equal(chosen.acceleration.probe?.ok, false);
      match(chosen.acceleration.probe?.reason ?? "", /Probing EDD/);
      // One log line, naming the fallback and why each VMM was passed over.
      equal(log.lines.length, 1);
      equal(log.lines[0]?.accel, "tcg");
      match(String(log.lines[0]?.why), /passed over: cloud-hypervisor \(KVM only\): .*Probing EDD/);
      match(String(log.lines[0]?.why), /firecracker \(KVM only\)/);
    }),
});

Deno.test("chooseDriver() takes Cloud Hypervisor once its probe boot passes", () =>
  withFakes(async (config) => {
    const { asked, prove } = stubProver({
      "cloud-hypervisor": { ok: true, cached: true, ms: 812, checkedAt: "2026-12-07T10:00:00Z" },
    });
    const chosen = await chooseDriver(config, undefined, { kvm: PVM, prove });
    ok(chosen.driver instanceof CloudHypervisorDriver);
    equal(chosen.driver.kvm, true);
    deepEqual(asked.map((a) => a.name), ["cloud-hypervisor"]);
    equal(chosen.acceleration.accel, "kvm");
    match(chosen.acceleration.reason, /boots under cloud-hypervisor .*cached verdict/);
    deepEqual(chosen.acceleration.probe, {
      ok: true,
      ms: 812,
      cached: true,
      checked_at: "2026-12-07T10:00:00Z",
      reason: null,
    });
  }));

Deno.test("chooseDriver() with Cloud Hypervisor hung falls through to Firecracker when it boots", () =>
  withFakes(async (config) => {
    const { prove } = stubProver({ "cloud-hypervisor": HUNG });
    const log = recorder();
    const chosen = await chooseDriver(config, log, { kvm: PVM, prove });
    equal(chosen.driver.name, "firecracker");
    equal(chosen.acceleration.accel, "kvm");
    match(chosen.summary, /passed over: cloud-hypervisor \(KVM only\)/);
  }));

Deno.test({
  name: "chooseDriver() with accel kvm refuses a KVM that fails its probe, naming the setting" +
    skip,
  ignore: !qemu.available,
  fn: () =>
    withFakes(async (config) => {
      const { prove } = stubProver({ "cloud-hypervisor": HUNG, firecracker: HUNG, qemu: HUNG });
      await rejects(
        () => chooseDriver({ ...config, accel: "kvm" }, undefined, { kvm: PVM, prove }),
        (e: VolantError) => {
          equal(e.code, "hypervisor_unavailable");
          match(e.message, /hypervisor\.accel: kvm/);
          match(e.message, /qemu: \/dev\/kvm is present but the guest kernel does not boot/);
          return true;
        },
      );
      await rejects(
        () =>
          chooseDriver({ ...config, name: "qemu", accel: "kvm" }, undefined, { kvm: PVM, prove }),
        (e: VolantError) => {
          match(e.message, /^hypervisor\.accel is kvm, but \/dev\/kvm is present but the guest/);
          match(e.message, /set hypervisor\.accel: auto \(QEMU then falls back to TCG\) or tcg$/);
          return true;
        },
      );
      // A named KVM-only VMM that fails its probe: the error names the way out.
      await rejects(
        () => chooseDriver({ ...config, name: "cloud-hypervisor" }, undefined, { kvm: PVM, prove }),
        (e: VolantError) => {
          match(e.message, /cloud-hypervisor, which runs on KVM only/);
          match(e.message, /set hypervisor\.name: auto/);
          return true;
        },
      );
    }),
});

Deno.test({
  name: "chooseDriver() with accel tcg never probes" + skip,
  ignore: !qemu.available,
  fn: async () => {
    const { asked, prove } = stubProver({});
    const chosen = await chooseDriver({ ...defaults, name: "qemu", accel: "tcg" }, undefined, {
      kvm: PVM,
      prove,
    });
    equal(chosen.driver.kvm, false);
    deepEqual(asked, []);
    equal(chosen.acceleration.accel, "tcg");
    match(chosen.acceleration.reason, /hypervisor\.accel is tcg/);
    equal(chosen.acceleration.probe, null);
  },
});

Deno.test({
  name: "chooseDriver() without KVM never probes and says why it runs TCG" + skip,
  ignore: !qemu.available,
  fn: async () => {
    const { asked, prove } = stubProver({});
    const noKvm: KvmStatus = {
      available: false,
      path: "/dev/kvm",
      reason: "no /dev/kvm; load kvm",
    };
    const chosen = await chooseDriver({ ...defaults, name: "qemu" }, undefined, {
      kvm: noKvm,
      prove,
    });
    deepEqual(asked, []);
    equal(chosen.acceleration.accel, "tcg");
    match(chosen.acceleration.reason, /^no usable KVM: no \/dev\/kvm/);
  },
});
