import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import type { KvmStatus } from "../kvm.ts";
import { writeFakeFc } from "../testing/fake_fc_vmm.ts";
import { openFirecrackerDriver } from "./open.ts";
import { probeFirecracker } from "./probe.ts";

const KVM: KvmStatus = { available: true, path: "/dev/kvm", apiVersion: 12 };

async function withBin(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-fc-probe-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("probeFirecracker() accepts 1.16 on a KVM host and refuses 1.15", async () => {
  await withBin(async (dir) => {
    const good = await writeFakeFc(dir, { document: "", version: "1.16.1" });
    deepEqual(await probeFirecracker(good.path, { kvm: KVM }), {
      available: true,
      binary: good.path,
      version: "1.16.1",
      kvm: true,
    });
    const driver = await openFirecrackerDriver({ binary: good.path, kvm: KVM });
    equal(driver.name, "firecracker");
    deepEqual(driver.kernelFormats, ["vmlinux"]);
    equal((await driver.probe()).version, "1.16.1");
    const old = await writeFakeFc(dir, { document: "", version: "1.15.9" });
    const probe = await probeFirecracker(old.path, { kvm: KVM });
    equal(probe.available, false);
    match(probe.reason ?? "", /Firecracker 1\.15\.9 is too old: this driver needs 1\.16\.0/);
    await rejects(() => openFirecrackerDriver({ binary: old.path, kvm: KVM }), (e) => {
      ok(e instanceof VolantError);
      equal(e.code, "hypervisor_unavailable");
      match(e.message, /^Firecracker is unavailable: Firecracker 1\.15\.9 is too old/);
      return true;
    });
  });
});

Deno.test("probeFirecracker() needs hardware KVM and a binary", async () => {
  await withBin(async (dir) => {
    const fake = await writeFakeFc(dir, { document: "", version: "1.16.1" });
    const noKvm = await probeFirecracker(fake.path, {
      kvm: { available: false, path: "/dev/kvm", reason: "/dev/kvm cannot be opened read-write" },
    });
    equal(noKvm.available, false);
    match(noKvm.reason ?? "", /Firecracker needs hardware KVM.*cannot be opened read-write/);
    await rejects(
      () => openFirecrackerDriver({ binary: fake.path, kvm: { available: false, path: "/x" } }),
      (e: VolantError) => e.code === "hypervisor_unavailable" && /\/x is unusable/.test(e.message),
    );
  });
  const missing = await probeFirecracker("/nonexistent/firecracker", { kvm: KVM });
  match(
    missing.reason ?? "",
    /not found \(install the firecracker static binary.*firecracker_binary\)/,
  );
});
