import { equal, throws } from "node:assert/strict";
import { VolantError } from "../schema/mod.ts";
import { chSpecRules } from "./cloud_hypervisor/config.ts";
import type { VmSpec } from "./driver.ts";
import { fcSpecRules } from "./firecracker/config.ts";
import { qemuSpecRules } from "./qemu/cmdline.ts";
import { checkVmSpec, type VmSpecRules } from "./spec_check.ts";

const spec: VmSpec = {
  id: "web",
  cpus: 2,
  memoryMib: 256,
  kernel: { path: "/k/vmlinux", format: "vmlinux" },
  initramfs: "/k/initramfs.cpio",
  cmdline: "console=ttyS0",
  disks: [{ id: "root", path: "/v/root.img", readOnly: false, format: "raw" }],
  nics: [{ id: "eth0", tap: "vtap-web", mac: "52:54:00:ab:cd:ef" }],
  serialLog: "/log/web/serial.log",
  vmmLog: "/log/web/vmm.log",
  runtimeDir: "/run/volant/vms/web",
};

const RULES: Record<string, (spec: VmSpec) => VmSpecRules> = {
  qemu: (s) => qemuSpecRules(s, ["bzImage", "vmlinux"]),
  "cloud-hypervisor": chSpecRules,
  firecracker: fcSpecRules,
};

/** The message `checkVmSpec` throws for `spec` changed by `patch` under `rules`. */
function messageOf(rules: (spec: VmSpec) => VmSpecRules, patch: Partial<VmSpec>): string {
  const changed = { ...spec, ...patch };
  let message = "";
  throws(() => checkVmSpec(changed, rules(changed)), (e: VolantError) => {
    equal(e.code, "invalid_argument");
    message = e.message;
    return true;
  });
  return message;
}

Deno.test("checkVmSpec() accepts a spec every driver can run", () => {
  for (const rules of Object.values(RULES)) checkVmSpec(spec, rules(spec));
});

Deno.test("checkVmSpec() words the checks every driver shares alike", () => {
  const cases: Array<[Partial<VmSpec>, string]> = [
    [{ id: "" }, "VmSpec.id: must be non-empty without spaces"],
    [{ memoryMib: 8 }, "VmSpec.memoryMib: must be an integer of at least 16"],
    [{ vmmLog: "vmm.log" }, "VmSpec.vmmLog: must be an absolute path"],
    [{ disks: [spec.disks[0]!, spec.disks[0]!] }, "VmSpec.disks[1].id: must be unique and match"],
    [{ nics: [{ ...spec.nics[0]!, mac: "52:54:00" }] }, "VmSpec.nics[0].mac: must look like"],
    [
      { nics: [{ ...spec.nics[0]!, tap: "a-very-long-tap-name" }] },
      "VmSpec.nics[0].tap: must be an interface name of 1-15 characters",
    ],
    [{ runtimeDir: `/${"x".repeat(120)}` }, "VmSpec.runtimeDir: is too long for a unix socket"],
  ];
  for (const [name, rules] of Object.entries(RULES)) {
    for (const [patch, message] of cases) {
      equal(messageOf(rules, patch).startsWith(message), true, `${name}: ${message}`);
    }
  }
});

Deno.test("checkVmSpec() applies and names each driver's own limits", () => {
  const qemu = RULES.qemu!;
  const ch = RULES["cloud-hypervisor"]!;
  const fc = RULES.firecracker!;
  const passes = (rules: (spec: VmSpec) => VmSpecRules, patch: Partial<VmSpec>) =>
    checkVmSpec({ ...spec, ...patch }, rules({ ...spec, ...patch }));
  // VM ids: QEMU splits its options on commas and '='.
  equal(
    messageOf(qemu, { id: "a,b" }),
    "VmSpec.id: must be non-empty without spaces, commas or '='",
  );
  equal(messageOf(fc, { id: "a b" }), "VmSpec.id: must be non-empty without spaces");
  passes(fc, { id: "a,b" });
  // vCPUs.
  equal(messageOf(qemu, { cpus: 256 }), "VmSpec.cpus: QEMU takes an integer from 1 to 255");
  equal(
    messageOf(ch, { cpus: 255 }),
    "VmSpec.cpus: Cloud Hypervisor takes an integer from 1 to 254",
  );
  equal(messageOf(fc, { cpus: 33 }), "VmSpec.cpus: Firecracker takes an integer from 1 to 32");
  passes(qemu, { cpus: 255 });
  // Kernel formats: the vmlinux-only VMMs name the fix.
  const bzImage = { kernel: { path: "/k/bzImage", format: "bzImage" as const } };
  passes(qemu, bzImage);
  equal(
    messageOf(ch, bzImage),
    "VmSpec.kernel.format: Cloud Hypervisor boots vmlinux, not bzImage (use the vmlinux-generic " +
      "kernel, or the qemu driver)",
  );
  equal(
    messageOf((s) => qemuSpecRules(s, ["bzImage"]), {}),
    "VmSpec.kernel.format: QEMU boots bzImage, not vmlinux",
  );
  // Paths: Cloud Hypervisor splits `--api-socket path=…` on commas; QEMU escapes them.
  equal(
    messageOf(ch, { runtimeDir: "/run/a,b" }),
    "VmSpec.runtimeDir: Cloud Hypervisor cannot take a path containing ','",
  );
  passes(qemu, { runtimeDir: "/run/a,b" });
  // Disk and NIC ids: at most 64 characters for the REST VMMs.
  const longId = [{ ...spec.disks[0]!, id: "x".repeat(65) }];
  equal(
    messageOf(fc, { disks: longId }),
    `VmSpec.disks[0].id: must be unique and match [a-z0-9_]{1,64}`,
  );
  passes(qemu, { disks: longId });
  equal(
    messageOf(qemu, { nics: [{ ...spec.nics[0]!, id: "Bad-Id" }] }),
    "VmSpec.nics[0].id: must be unique and match [a-z0-9_]+",
  );
  // Disk formats: Firecracker has raw files only.
  const qcow2 = [{ ...spec.disks[0]!, format: "qcow2" as const }];
  equal(
    messageOf(fc, { disks: qcow2 }),
    "VmSpec.disks[0].format: Firecracker takes raw images, not qcow2",
  );
  passes(ch, { disks: qcow2 });
  passes(qemu, { disks: qcow2 });
});
