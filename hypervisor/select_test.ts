import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { DaemonConfig, VolantError } from "../schema/mod.ts";
import { CloudHypervisorDriver } from "./cloud_hypervisor/driver.ts";
import { FirecrackerDriver } from "./firecracker/driver.ts";
import { detectKvm, type KvmStatus } from "./kvm.ts";
import { QemuDriver } from "./qemu/driver.ts";
import { probeQemu } from "./qemu/probe.ts";
import { selectDriver, type SelectLogger } from "./select.ts";
import { writeFakeCh } from "./testing/fake_ch_vmm.ts";
import { writeFakeFc } from "./testing/fake_fc_vmm.ts";

const defaults = DaemonConfig.parse({}).hypervisor;
const qemu = await probeQemu(defaults.qemu_binary);
const kvm = await detectKvm();
const KVM: KvmStatus = { available: true, path: "/dev/kvm", apiVersion: 12 };
const NO_KVM: KvmStatus = {
  available: false,
  path: "/dev/kvm",
  reason: "/dev/kvm does not exist (no KVM module loaded, or no hardware support); load kvm",
};
if (!qemu.available) console.log(`skipping the QEMU selection tests: ${qemu.reason}`);

/** A logger keeping its lines. */
function recorder(): SelectLogger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, info: (msg, fields) => lines.push({ msg, ...fields }) };
}

/** Runs `fn` with a config whose Cloud Hypervisor and Firecracker are fakes in a temp dir. */
async function withFakes(
  fn: (config: DaemonConfig["hypervisor"], dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-select-" });
  try {
    const ch = await writeFakeCh(dir, { document: "", version: "53.0.0" });
    const fc = await writeFakeFc(dir, { document: "", version: "1.16.1" });
    await fn({ ...defaults, cloud_hypervisor_binary: ch.path, firecracker_binary: fc.path }, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("selectDriver() names the binary and the fix when a forced VMM is not installed", async () => {
  const cases = [
    ["cloud-hypervisor", "cloud_hypervisor_binary", /Cloud Hypervisor binary \/nonexistent\/ch/],
    ["firecracker", "firecracker_binary", /Firecracker binary \/nonexistent\/fc/],
  ] as const;
  for (const [name, key, binary] of cases) {
    const config = {
      ...defaults,
      name,
      [key]: name === "firecracker" ? "/nonexistent/fc" : "/nonexistent/ch",
    };
    await rejects(() => selectDriver(config, undefined, { kvm: KVM }), (e: VolantError) => {
      equal(e.code, "hypervisor_unavailable");
      match(e.message, new RegExp(`^hypervisor\\.name is ${name}, which cannot be used: `));
      match(e.message, binary);
      match(
        e.message,
        /not found \(install the [\w-]+ static binary .* or set hypervisor\.\w+_binary\)/,
      );
      ok(String((e.details?.reasons as Record<string, string>)[name]).includes("not found"));
      if (qemu.available) {
        match(e.message, /; or set hypervisor\.name: auto, which selects qemu here$/);
      }
      return true;
    });
  }
});

Deno.test("selectDriver() auto opens Cloud Hypervisor first when it and KVM are usable", async () => {
  await withFakes(async (config) => {
    const log = recorder();
    const driver = await selectDriver(config, log, { kvm: KVM, kernelFormat: "vmlinux" });
    ok(driver instanceof CloudHypervisorDriver);
    equal(driver.name, "cloud-hypervisor");
    equal(driver.kvm, true);
    equal(log.lines.length, 1);
    equal(log.lines[0]?.driver, "cloud-hypervisor");
    equal(log.lines[0]?.version, "53.0.0");
    match(String(log.lines[0]?.why), /^auto selects cloud-hypervisor 53\.0\.0 with KVM$/);

    const forced = await selectDriver({ ...config, name: "firecracker" }, log, { kvm: KVM });
    ok(forced instanceof FirecrackerDriver);
    equal(log.lines[1]?.driver, "firecracker");
    match(String(log.lines[1]?.why), /hypervisor\.name: firecracker selects firecracker 1\.16\.1/);

    // Cloud Hypervisor gone: auto takes the next one and says why it passed over the first.
    const second = recorder();
    const fc = await selectDriver(
      { ...config, cloud_hypervisor_binary: "/nonexistent/cloud-hypervisor" },
      second,
      { kvm: KVM },
    );
    ok(fc instanceof FirecrackerDriver);
    match(String(second.lines[0]?.why), /skipped cloud-hypervisor: .*not found/);
  });
});

Deno.test({
  name: "selectDriver() auto falls back to QEMU without KVM or a vmlinux kernel, and says why" +
    (qemu.available ? "" : ` (skipped: QEMU is unavailable here: ${qemu.reason})`),
  ignore: !qemu.available,
  fn: async () => {
    await withFakes(async (config) => {
      const log = recorder();
      const driver = await selectDriver(config, log, { kvm: NO_KVM });
      ok(driver instanceof QemuDriver);
      equal(driver.kvm, false);
      const why = String(log.lines[0]?.why);
      match(why, /^auto selects qemu \S+ with TCG \(software emulation\) \(skipped /);
      match(why, /cloud-hypervisor: Cloud Hypervisor needs hardware KVM, which is unusable here/);
      match(why, /firecracker: Firecracker needs hardware KVM/);

      const bz = recorder();
      const withKvm = await selectDriver(config, bz, { kvm: KVM, kernelFormat: "bzImage" });
      equal(withKvm.name, "qemu");
      equal(withKvm.kvm, true, "QEMU with accel auto uses the KVM it is told about");
      match(
        String(bz.lines[0]?.why),
        /cloud-hypervisor: Cloud Hypervisor boots vmlinux, and the guest kernel is a bzImage/,
      );

      // A forced VMM that cannot boot the kernel is refused, naming the config key to change.
      await rejects(
        () =>
          selectDriver({ ...config, name: "cloud-hypervisor" }, undefined, {
            kvm: KVM,
            kernelFormat: "bzImage",
          }),
        (e: VolantError) => {
          equal(e.code, "hypervisor_unavailable");
          match(e.message, /set guest\.default_kernel: auto, which boots vmlinux-generic/);
          return true;
        },
      );
      // Forced without KVM: the KVM reason, and where to turn for software emulation.
      await rejects(
        () => selectDriver({ ...config, name: "firecracker" }, undefined, { kvm: NO_KVM }),
        (e: VolantError) => {
          match(e.message, /Firecracker needs hardware KVM.*use hypervisor\.name: qemu/);
          return true;
        },
      );
    });
  },
});

Deno.test({
  name: "selectDriver() auto on this host: the real KVM and PATH decide, and the log says why" +
    (qemu.available ? "" : ` (skipped: QEMU is unavailable here: ${qemu.reason})`),
  ignore: !qemu.available,
  fn: async () => {
    const log = recorder();
    const driver = await selectDriver(defaults, log);
    const why = String(log.lines[0]?.why);
    equal(log.lines.length, 1);
    equal(log.lines[0]?.driver, driver.name);
    if (driver.name === "qemu") {
      equal(driver.kvm, kvm.available);
      // Both KVM-only VMMs were passed over, each with its reason.
      match(why, /skipped cloud-hypervisor: .+; firecracker: .+\)$/);
    }
    if (!kvm.available) {
      equal(driver.name, "qemu", "without KVM only QEMU can run guests");
      ok(!/with KVM/.test(why));
    }
    equal((await selectDriver({ ...defaults, name: "qemu", accel: "tcg" })).kvm, false);
  },
});

Deno.test({
  name: "selectDriver() passes the launch prefix to QEMU" +
    (qemu.available ? "" : ` (skipped: QEMU is unavailable here: ${qemu.reason})`),
  ignore: !qemu.available,
  fn: async () => {
    // The prefix stands in for `ip netns exec NS`; this one reports and exits at once, so QEMU
    // itself never starts.
    const dir = await Deno.makeTempDir({ prefix: "volant-select-prefix-" });
    try {
      await Deno.writeTextFile(`${dir}/vmlinux`, "not a kernel");
      const driver = await selectDriver({ ...defaults, name: "qemu" }, undefined, {
        launchPrefix: ["/bin/sh", "-c", "echo launched-through-prefix; exit 7", "sh"],
        kvm: NO_KVM,
      });
      ok(driver instanceof QemuDriver);
      await rejects(
        () =>
          driver.create({
            id: "prefix",
            cpus: 1,
            memoryMib: 64,
            kernel: { path: `${dir}/vmlinux`, format: "vmlinux" },
            cmdline: "console=ttyS0",
            disks: [],
            nics: [],
            serialLog: `${dir}/serial.log`,
            vmmLog: `${dir}/vmm.log`,
            runtimeDir: dir,
          }),
        (e: VolantError) => {
          equal(e.code, "vmm_failed");
          match(e.message, /exited with code 7 at once: launched-through-prefix/);
          return true;
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("selectDriver() names the fix when QEMU is missing", async () => {
  const missing = {
    ...defaults,
    qemu_binary: "/nonexistent/qemu-system-x86_64",
    cloud_hypervisor_binary: "/nonexistent/cloud-hypervisor",
    firecracker_binary: "/nonexistent/firecracker",
  };
  await rejects(() => selectDriver({ ...missing, name: "qemu" }), (e: VolantError) => {
    equal(e.code, "hypervisor_unavailable");
    match(e.message, /not found.*apt-get install --no-install-recommends qemu-system-x86/);
    return true;
  });
  await rejects(() => selectDriver(missing, undefined, { kvm: KVM }), (e: VolantError) => {
    equal(e.code, "hypervisor_unavailable");
    match(e.message, /^No usable hypervisor \(hypervisor\.name: auto\)/);
    match(e.message, /apt-get install/);
    deepEqual(Object.keys(e.details?.reasons as object), [
      "cloud-hypervisor",
      "firecracker",
      "qemu",
    ]);
    return true;
  });
});

Deno.test({
  name: "selectDriver() with accel kvm fails without KVM, with the reason" +
    (qemu.available ? "" : ` (skipped: QEMU is unavailable here: ${qemu.reason})`),
  ignore: !qemu.available,
  fn: async () => {
    const config = { ...defaults, accel: "kvm" as const };
    await rejects(() => selectDriver(config, undefined, { kvm: NO_KVM }), (e: VolantError) => {
      equal(e.code, "hypervisor_unavailable");
      match(e.message, /KVM is unavailable: \/dev\/kvm/);
      return true;
    });
  },
});
