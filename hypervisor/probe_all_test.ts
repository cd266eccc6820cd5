import { deepEqual, equal, match, ok } from "node:assert/strict";
import { DaemonConfig } from "../schema/mod.ts";
import type { KvmStatus } from "./kvm.ts";
import { AUTO_ORDER, probeAllHypervisors } from "./probe_all.ts";
import { probeQemu } from "./qemu/probe.ts";
import { writeFakeCh } from "./testing/fake_ch_vmm.ts";
import { writeFakeFc } from "./testing/fake_fc_vmm.ts";

const KVM: KvmStatus = { available: true, path: "/dev/kvm", apiVersion: 12 };
const NO_KVM: KvmStatus = { available: false, path: "/dev/kvm", reason: "/dev/kvm does not exist" };
const defaults = DaemonConfig.parse({}).hypervisor;
const qemu = await probeQemu(defaults.qemu_binary);
if (!qemu.available) console.log(`skipping the QEMU fallback checks: ${qemu.reason}`);

/** A config whose Cloud Hypervisor and Firecracker are the fakes (versions given). */
async function withFakes(
  versions: { ch: string; fc: string },
  fn: (config: DaemonConfig["hypervisor"]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-probe-all-" });
  try {
    const ch = await writeFakeCh(dir, { document: "", version: versions.ch });
    const fc = await writeFakeFc(dir, { document: "", version: versions.fc });
    await fn({ ...defaults, cloud_hypervisor_binary: ch.path, firecracker_binary: fc.path });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("probeAllHypervisors() reports all three and auto prefers Cloud Hypervisor", async () => {
  await withFakes({ ch: "53.0.0", fc: "1.16.1" }, async (config) => {
    const survey = await probeAllHypervisors(config, { kvm: KVM, kernelFormat: "vmlinux" });
    deepEqual(survey.hypervisors.map((h) => h.name), [...AUTO_ORDER]);
    const [ch, fc, q] = survey.hypervisors;
    deepEqual([ch?.usable, ch?.version, ch?.kvm], [true, "53.0.0", true]);
    deepEqual([fc?.usable, fc?.version, fc?.binary], [true, "1.16.1", config.firecracker_binary]);
    equal(q?.available, qemu.available);
    equal(survey.selected, "cloud-hypervisor");
    match(survey.summary, /^auto selects cloud-hypervisor 53\.0\.0 with KVM$/);
    const forced = await probeAllHypervisors({ ...config, name: "firecracker" }, { kvm: KVM });
    equal(forced.selected, "firecracker");
    match(forced.summary, /hypervisor\.name: firecracker selects firecracker 1\.16\.1 with KVM/);
  });
});

Deno.test("probeAllHypervisors() skips what is too old, lacks KVM or cannot boot the kernel", async () => {
  await withFakes({ ch: "52.0.0", fc: "1.16.1" }, async (config) => {
    const old = await probeAllHypervisors(config, { kvm: KVM });
    equal(old.selected, "firecracker");
    match(old.summary, /skipped cloud-hypervisor: Cloud Hypervisor 52\.0\.0 is too old/);

    const bzImage = await probeAllHypervisors(config, { kvm: KVM, kernelFormat: "bzImage" });
    equal(bzImage.hypervisors[1]?.usable, false);
    match(bzImage.hypervisors[1]?.reason ?? "", /boots vmlinux, and the guest kernel is a bzImage/);
    equal(bzImage.selected, qemu.available ? "qemu" : null);

    const tcg = await probeAllHypervisors({ ...config, accel: "tcg" }, { kvm: KVM });
    match(tcg.hypervisors[1]?.reason ?? "", /accel is tcg, but Firecracker runs on hardware KVM/);
    equal(tcg.selected, qemu.available ? "qemu" : null);
    if (qemu.available) equal(tcg.hypervisors[2]?.kvm, false);

    const noKvm = await probeAllHypervisors(config, { kvm: NO_KVM });
    equal(noKvm.kvm.available, false);
    equal(noKvm.hypervisors[1]?.available, false);
    match(noKvm.hypervisors[1]?.reason ?? "", /Firecracker needs hardware KVM/);
    equal(noKvm.selected, qemu.available ? "qemu" : null);
    if (qemu.available) {
      match(noKvm.summary, /^auto selects qemu .* with TCG/);
      const strict = await probeAllHypervisors({ ...config, accel: "kvm" }, { kvm: NO_KVM });
      equal(strict.selected, null);
      match(
        strict.summary,
        /^No usable hypervisor .*qemu: hypervisor\.accel is kvm but KVM is unavailable/,
      );
    }
  });
});

Deno.test("probeAllHypervisors() explains a forced hypervisor that cannot be used", async () => {
  const config = {
    ...defaults,
    name: "cloud-hypervisor" as const,
    cloud_hypervisor_binary: "/nonexistent/cloud-hypervisor",
    qemu_binary: "/nonexistent/qemu-system-x86_64",
  };
  const survey = await probeAllHypervisors(config, { kvm: KVM });
  equal(survey.selected, null);
  match(survey.summary, /^hypervisor\.name is cloud-hypervisor, which cannot be used: .*not found/);
  const auto = await probeAllHypervisors(
    { ...config, name: "auto", firecracker_binary: "/no/fc" },
    {
      kvm: KVM,
    },
  );
  equal(auto.selected, null);
  for (const name of AUTO_ORDER) ok(auto.summary.includes(`${name}: `), name);
});
