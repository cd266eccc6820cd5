import { equal, match, throws } from "node:assert/strict";
import { VolantError } from "../schema/mod.ts";
import { detectKvm, KVM_API_VERSION, type KvmStatus, kvmSuspect, resolveAccel } from "./kvm.ts";

const hasKvmDevice = await Deno.stat("/dev/kvm").then(() => true, () => false);
if (!hasKvmDevice) console.log("skipping the real-/dev/kvm test: this host has no /dev/kvm");

Deno.test("detectKvm() explains a missing KVM device and the fix", async () => {
  const kvm = await detectKvm({ path: "/nonexistent/kvm" });
  equal(kvm.available, false);
  equal(kvm.path, "/nonexistent/kvm");
  match(kvm.reason ?? "", /\/nonexistent\/kvm does not exist/);
  match(kvm.reason ?? "", /hypervisor\.accel: tcg/);
});

Deno.test("kvmSuspect() names nested PVM and nested virtualization, nothing otherwise", () => {
  match(
    kvmSuspect({ available: true, path: "/dev/kvm", modules: ["kvm", "kvm_pvm"] }),
    /^nested PVM/,
  );
  match(kvmSuspect({ available: true, path: "/dev/kvm", nested: true }), /^nested virtualization/);
  equal(kvmSuspect({ available: true, path: "/dev/kvm", modules: ["kvm_intel"] }), "");
});

Deno.test({
  name: "detectKvm() accepts a real /dev/kvm answering API version 12" +
    (hasKvmDevice ? "" : " (skipped: this host has no /dev/kvm)"),
  ignore: !hasKvmDevice,
  fn: async () => {
    const kvm = await detectKvm();
    if (kvm.available) equal(kvm.apiVersion ?? KVM_API_VERSION, KVM_API_VERSION);
    else match(kvm.reason ?? "", /permission denied|cannot be opened|not a KVM device/);
  },
});

Deno.test("detectKvm() rejects a device that is not KVM", async () => {
  for (const path of ["/dev/null", "/proc/self/stat"]) {
    const kvm = await detectKvm({ path });
    equal(kvm.available, false, path);
    match(kvm.reason ?? "", /not a KVM device|cannot be opened/);
  }
  const missing = await detectKvm({ path: "/nonexistent/kvm" });
  match(missing.reason ?? "", /does not exist/);
});

Deno.test("resolveAccel() maps auto, kvm and tcg", () => {
  const yes: KvmStatus = { available: true, path: "/dev/kvm", apiVersion: 12 };
  const no: KvmStatus = { available: false, path: "/dev/kvm", reason: "/dev/kvm does not exist" };
  equal(resolveAccel("auto", yes), "kvm");
  equal(resolveAccel("auto", no), "tcg");
  equal(resolveAccel("kvm", yes), "kvm");
  equal(resolveAccel("tcg", yes), "tcg");
  equal(resolveAccel("tcg", no), "tcg");
  throws(() => resolveAccel("kvm", no), (e: VolantError) => {
    equal(e.code, "hypervisor_unavailable");
    match(e.message, /accel is kvm but KVM is unavailable: \/dev\/kvm does not exist/);
    return true;
  });
});
