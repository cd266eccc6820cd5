import { equal, match, rejects } from "node:assert/strict";
import { DaemonConfig, VolantError } from "../schema/mod.ts";
import { detectKvm } from "./kvm.ts";
import { probeQemu } from "./qemu/probe.ts";
import { selectDriver } from "./select.ts";

const defaults = DaemonConfig.parse({}).hypervisor;
const qemu = await probeQemu(defaults.qemu_binary);
const kvm = await detectKvm();
if (!qemu.available) console.log(`skipping the QEMU selection tests: ${qemu.reason}`);
if (kvm.available) console.log("skipping the accel-kvm failure test: this host has KVM");

Deno.test("selectDriver() refuses drivers this build does not have yet", async () => {
  for (const name of ["cloud-hypervisor", "firecracker"] as const) {
    await rejects(() => selectDriver({ ...defaults, name }), (e: VolantError) => {
      equal(e.code, "hypervisor_unavailable");
      match(e.message, new RegExp(`${name} is not supported by this build yet`));
      return true;
    });
  }
});

Deno.test({
  name: "selectDriver() auto picks qemu when it is installed, and says why",
  ignore: !qemu.available,
  fn: async () => {
    const lines: Array<[string, Record<string, unknown> | undefined]> = [];
    const driver = await selectDriver(defaults, { info: (msg, f) => lines.push([msg, f]) });
    equal(driver.name, "qemu");
    equal(driver.kvm, kvm.available);
    equal(lines.length, 1);
    equal(lines[0]?.[1]?.driver, "qemu");
    match(String(lines[0]?.[1]?.why), /cloud-hypervisor and firecracker are not in this build/);
    equal((await selectDriver({ ...defaults, name: "qemu", accel: "tcg" })).kvm, false);
  },
});

Deno.test("selectDriver() names the fix when QEMU is missing", async () => {
  const missing = { ...defaults, qemu_binary: "/nonexistent/qemu-system-x86_64" };
  await rejects(() => selectDriver({ ...missing, name: "qemu" }), (e: VolantError) => {
    equal(e.code, "hypervisor_unavailable");
    match(e.message, /not found.*apt-get install --no-install-recommends qemu-system-x86/);
    return true;
  });
  await rejects(() => selectDriver(missing), (e: VolantError) => {
    equal(e.code, "hypervisor_unavailable");
    match(e.message, /^No usable hypervisor \(hypervisor\.name: auto\)/);
    match(e.message, /apt-get install/);
    return true;
  });
});

Deno.test({
  name: "selectDriver() with accel kvm fails without KVM, with the reason",
  ignore: kvm.available || !qemu.available,
  fn: async () => {
    await rejects(() => selectDriver({ ...defaults, accel: "kvm" }), (e: VolantError) => {
      equal(e.code, "hypervisor_unavailable");
      match(e.message, /KVM is unavailable: \/dev\/kvm/);
      return true;
    });
  },
});
