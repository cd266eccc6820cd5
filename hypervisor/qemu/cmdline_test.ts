import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import type { VmSpec } from "../driver.ts";
import { optionValue, qemuArgs, qemuPaths, validateSpec } from "./cmdline.ts";

const spec: VmSpec = {
  id: "web",
  cpus: 2,
  memoryMib: 384,
  kernel: { path: "/g/bzImage", format: "bzImage" },
  initramfs: "/g/initramfs.cpio",
  cmdline: "console=ttyS0 quiet volant.boot=abc",
  disks: [
    { id: "runtime", path: "/g/runtime.erofs", readOnly: true, format: "raw" },
    { id: "data", path: "/v/data,1.qcow2", readOnly: false, format: "qcow2" },
  ],
  nics: [{ id: "eth0", tap: "vtap-web", mac: "52:54:00:AB:CD:EF" }],
  serialLog: "/log/web/serial.log",
  vmmLog: "/log/web/vmm.log",
  runtimeDir: "/run/volant/vms/web/",
};

/** The values following each occurrence of `flag`. */
function values(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1] ?? ""] : []));
}

Deno.test("qemuArgs() builds a paused TCG microvm with QMP, serial file, disks and NICs", () => {
  const args = qemuArgs(spec, { accel: "tcg" });
  deepEqual(values(args, "-M"), ["microvm,x-option-roms=off,acpi=on,rtc=on"]);
  deepEqual(values(args, "-accel"), ["tcg,tb-size=64"], "a bounded translation cache");
  deepEqual(values(args, "-cpu"), ["max"]);
  deepEqual(values(args, "-sandbox"), [
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
  ]);
  deepEqual(values(args, "-m"), ["384M"]);
  deepEqual(values(args, "-smp"), ["2"]);
  deepEqual(values(args, "-name"), ["web"]);
  for (const flag of ["-nodefaults", "-no-user-config", "-no-reboot"]) {
    ok(args.includes(flag), flag);
  }
  deepEqual(values(args, "-display"), ["none"]);
  equal(args.at(-1), "-S", "starts paused");
  deepEqual(values(args, "-pidfile"), ["/run/volant/vms/web/qemu.pid"]);
  deepEqual(values(args, "-chardev"), [
    "socket,id=qmp,path=/run/volant/vms/web/qmp.sock,server=on,wait=off",
    "socket,id=serial0,path=/run/volant/vms/web/console.sock,server=on,wait=off," +
    "logfile=/log/web/serial.log,logappend=on",
    "socket,id=control,path=/run/volant/vms/web/control.sock,server=on,wait=off",
  ]);
  deepEqual(values(args, "-mon"), ["chardev=qmp,mode=control"]);
  deepEqual(values(args, "-serial"), ["chardev:serial0"]);
  deepEqual(values(args, "-kernel"), ["/g/bzImage"]);
  deepEqual(values(args, "-initrd"), ["/g/initramfs.cpio"]);
  deepEqual(values(args, "-append"), ["console=ttyS0 quiet volant.boot=abc"]);
  deepEqual(values(args, "-drive"), [
    "if=none,id=disk-runtime,file=/g/runtime.erofs,format=raw,readonly=on",
    "if=none,id=disk-data,file=/v/data,,1.qcow2,format=qcow2,readonly=off",
  ]);
  deepEqual(values(args, "-netdev"), [
    "tap,id=net-eth0,ifname=vtap-web,script=no,downscript=no",
  ]);
  deepEqual(values(args, "-device"), [
    "virtio-blk-device,drive=disk-runtime,serial=runtime",
    "virtio-blk-device,drive=disk-data,serial=data",
    "virtio-net-device,netdev=net-eth0,mac=52:54:00:ab:cd:ef",
    "isa-serial,chardev=control,index=1",
  ]);
  ok(!args.some((a) => /vhost/.test(a)), "no vhost");
});

Deno.test("qemuArgs() uses the host CPU under KVM and drops PIT/PIC only when asked", () => {
  const kvm = qemuArgs(spec, { accel: "kvm" });
  deepEqual(values(kvm, "-accel"), ["kvm"]);
  deepEqual(values(kvm, "-cpu"), ["host"]);
  deepEqual(values(kvm, "-M"), ["microvm,x-option-roms=off,acpi=on,rtc=on"]);
  const lean = qemuArgs(spec, { accel: "kvm", noLegacyTimers: true });
  deepEqual(values(lean, "-M"), ["microvm,x-option-roms=off,acpi=on,rtc=on,pit=off,pic=off"]);
  const tcg = qemuArgs(spec, { accel: "tcg", noLegacyTimers: true });
  deepEqual(values(tcg, "-M"), ["microvm,x-option-roms=off,acpi=on,rtc=on"], "TCG keeps them");
});

Deno.test("qemuArgs() leaves out -initrd without an initramfs", () => {
  const { initramfs: _, ...bare } = spec;
  const args = qemuArgs({ ...bare, disks: [], nics: [] }, { accel: "tcg" });
  equal(args.includes("-initrd"), false);
  equal(args.includes("-drive"), false);
  equal(args.includes("-netdev"), false);
});

Deno.test("optionValue() doubles commas and qemuPaths() trims trailing slashes", () => {
  equal(optionValue("a,b,,c"), "a,,b,,,,c");
  deepEqual(qemuPaths("/r/x//"), {
    qmpSocket: "/r/x/qmp.sock",
    pidFile: "/r/x/qemu.pid",
    consoleSocket: "/r/x/console.sock",
    migrateSocket: "/r/x/migrate.sock",
    controlSocket: "/r/x/control.sock",
  });
});

Deno.test("qemuArgs(): a restore waits for its state (-incoming defer), still paused (-S)", () => {
  const restoring = qemuArgs({ ...spec, restoreFrom: "/s/state" }, { accel: "tcg" });
  const at = restoring.indexOf("-incoming");
  ok(at > 0, "restore adds -incoming");
  equal(restoring[at + 1], "defer");
  ok(restoring.includes("-S"));
  equal(qemuArgs(spec, { accel: "tcg" }).includes("-incoming"), false);
});

Deno.test("validateSpec() names the bad field", () => {
  validateSpec(spec, ["bzImage", "vmlinux"]);
  const cases: Array<[Partial<VmSpec>, RegExp]> = [
    [{ cpus: 0 }, /VmSpec\.cpus/],
    [{ cpus: 1.5 }, /VmSpec\.cpus/],
    [{ memoryMib: 8 }, /VmSpec\.memoryMib/],
    [{ id: "a,b" }, /VmSpec\.id/],
    [{ kernel: { path: "/k", format: "vmlinux" } }, /VmSpec\.kernel\.format.*bzImage/],
    [{ kernel: { path: "relative/k", format: "bzImage" } }, /VmSpec\.kernel\.path.*absolute/],
    [{ disks: [{ ...spec.disks[0]!, id: "Bad-Id" }] }, /VmSpec\.disks\[0\]\.id/],
    [{ disks: [spec.disks[0]!, spec.disks[0]!] }, /VmSpec\.disks\[1\]\.id.*unique/],
    [{ nics: [{ ...spec.nics[0]!, mac: "52:54:00" }] }, /VmSpec\.nics\[0\]\.mac/],
    [{ nics: [{ ...spec.nics[0]!, tap: "a-very-long-tap-name" }] }, /VmSpec\.nics\[0\]\.tap/],
    [{ runtimeDir: `/${"x".repeat(120)}` }, /VmSpec\.runtimeDir.*too long/],
  ];
  for (const [patch, message] of cases) {
    throws(
      () => validateSpec({ ...spec, ...patch }, ["bzImage"]),
      (e: VolantError) => {
        equal(e.code, "invalid_argument");
        match(e.message, message);
        return true;
      },
    );
  }
});
