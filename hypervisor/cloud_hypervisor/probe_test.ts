import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import { detectKvm, type KvmStatus } from "../kvm.ts";
import { writeFakeCh } from "../testing/fake_ch_vmm.ts";
import { openCloudHypervisorDriver } from "./open.ts";
import { CH_MIN_VERSION, probeCloudHypervisor } from "./probe.ts";

const KVM: KvmStatus = { available: true, path: "/dev/kvm", apiVersion: 12 };
const NO_KVM: KvmStatus = {
  available: false,
  path: "/dev/kvm",
  reason: "/dev/kvm does not exist; load the module, or set hypervisor.accel: tcg to run " +
    "guests in software emulation",
};

async function withBin(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-ch-probe-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("probeCloudHypervisor() accepts v53.0 on a KVM host", async () => {
  await withBin(async (dir) => {
    const fake = await writeFakeCh(dir, { document: "", version: "53.0.0" });
    const probe = await probeCloudHypervisor(fake.path, { kvm: KVM });
    deepEqual(probe, { available: true, binary: fake.path, version: "53.0.0", kvm: true });
    const driver = await openCloudHypervisorDriver({ binary: fake.path, kvm: KVM });
    equal(driver.name, "cloud-hypervisor");
    equal(driver.kvm, true);
    deepEqual(driver.kernelFormats, ["vmlinux"]);
    deepEqual(await driver.probe(), { name: "cloud-hypervisor", ...probe });
  });
});

Deno.test("probeCloudHypervisor() refuses a release older than the minimum", async () => {
  await withBin(async (dir) => {
    const fake = await writeFakeCh(dir, { document: "", version: "52.0.0" });
    const probe = await probeCloudHypervisor(fake.path, { kvm: KVM });
    equal(probe.available, false);
    equal(probe.version, "52.0.0");
    match(probe.reason ?? "", /Cloud Hypervisor 52\.0\.0 is too old: this driver needs 53\.0\.0/);
    match(probe.reason ?? "", /install the cloud-hypervisor static binary/);
    await rejects(() => openCloudHypervisorDriver({ binary: fake.path, kvm: KVM }), (e) => {
      ok(e instanceof VolantError);
      equal(e.code, "hypervisor_unavailable");
      match(e.message, /^Cloud Hypervisor is unavailable: .*too old/);
      equal(e.details?.version, "52.0.0");
      return true;
    });
    equal(CH_MIN_VERSION.major, 53);
  });
});

Deno.test("probeCloudHypervisor() names the fix for a missing or wrong binary", async () => {
  const missing = await probeCloudHypervisor("/nonexistent/cloud-hypervisor", { kvm: KVM });
  equal(missing.available, false);
  match(missing.reason ?? "", /binary \/nonexistent\/cloud-hypervisor not found \(/);
  match(missing.reason ?? "", /set hypervisor\.cloud_hypervisor_binary/);
  const onPath = await probeCloudHypervisor("no-such-cloud-hypervisor-volant", { kvm: KVM });
  match(onPath.reason ?? "", /not found on PATH/);
  await withBin(async (dir) => {
    await Deno.writeTextFile(`${dir}/impostor`, "#!/bin/sh\necho 'QEMU emulator version 8.2.0'\n", {
      mode: 0o755,
    });
    const wrong = await probeCloudHypervisor(`${dir}/impostor`, { kvm: KVM });
    match(wrong.reason ?? "", /did not print a Cloud Hypervisor version/);
    await Deno.writeTextFile(`${dir}/broken`, "#!/bin/sh\necho 'bad flag' >&2\nexit 2\n", {
      mode: 0o755,
    });
    const broken = await probeCloudHypervisor(`${dir}/broken`, { kvm: KVM });
    match(broken.reason ?? "", /--version failed: exited with code 2: bad flag/);
  });
});

Deno.test("probeCloudHypervisor() needs hardware KVM and says why", async () => {
  await withBin(async (dir) => {
    const fake = await writeFakeCh(dir, { document: "", version: "53.0.0" });
    const probe = await probeCloudHypervisor(fake.path, { kvm: NO_KVM });
    equal(probe.available, false);
    equal(probe.kvm, false);
    match(
      probe.reason ?? "",
      /needs hardware KVM, which is unusable here: \/dev\/kvm does not exist/,
    );
    match(probe.reason ?? "", /use hypervisor\.name: qemu/);
    ok(!/accel: tcg/.test(probe.reason ?? ""), "no advice that only suits QEMU");
    // This host, as it is.
    const host = await detectKvm();
    const real = await probeCloudHypervisor(fake.path);
    equal(real.kvm, host.available);
    equal(real.available, host.available);
    if (!host.available) match(real.reason ?? "", /needs hardware KVM/);
  });
});
