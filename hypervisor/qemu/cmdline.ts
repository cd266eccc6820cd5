/**
 * The QEMU command line for one {@linkcode VmSpec} on `-M microvm`: pure functions, testable
 * without QEMU. The VMM starts paused (`-S`): `create` brings the process up configured,
 * `boot` sends QMP `cont`.
 *
 * @module
 */
import type { KernelFormat, VmSpec } from "../driver.ts";
import type { Accel } from "../kvm.ts";
import { checkVmSpec, type VmSpecRules } from "../spec_check.ts";

/** Files QEMU keeps in the VM's runtime dir. */
export interface QemuPaths {
  /** The QMP socket (`<runtimeDir>/qmp.sock`). */
  qmpSocket: string;
  /** QEMU's pid file (`<runtimeDir>/qemu.pid`). */
  pidFile: string;
  /**
   * The serial console as a unix socket (`<runtimeDir>/console.sock`): one client at a time
   * types into the guest's ttyS0 and reads what it prints; everything is also logged.
   */
  consoleSocket: string;
  /** Where a guest's saved state streams through (`<runtimeDir>/migrate.sock`, see migration.ts). */
  migrateSocket: string;
  /**
   * The guest control channel (`<runtimeDir>/control.sock`): the guest's second UART
   * ({@linkcode QEMU_CONTROL_DEVICE}), which kestrel holds open (`schema/guest_control.ts`);
   * one client.
   */
  controlSocket: string;
}

/** The guest device of QEMU's control channel: the second 16550 UART. */
export const QEMU_CONTROL_DEVICE = "/dev/ttyS1";

/**
 * Where QEMU's socket and pid file live for a runtime dir.
 *
 * @example
 * ```ts
 * import { qemuPaths } from "./cmdline.ts";
 * console.assert(qemuPaths("/run/volant/vms/web").qmpSocket === "/run/volant/vms/web/qmp.sock");
 * ```
 */
export function qemuPaths(runtimeDir: string): QemuPaths {
  const dir = runtimeDir.replace(/\/+$/, "");
  return {
    qmpSocket: `${dir}/qmp.sock`,
    pidFile: `${dir}/qemu.pid`,
    consoleSocket: `${dir}/console.sock`,
    migrateSocket: `${dir}/migrate.sock`,
    controlSocket: `${dir}/control.sock`,
  };
}

/** How QEMU runs, beyond the spec. */
export interface QemuArgsOptions {
  /** `kvm` (with `-cpu host`) or `tcg` (software emulation, `-cpu max`). */
  accel: Accel;
  /**
   * Turn off the legacy PIT and PIC (KVM only, and only when the host CPU has the TSC deadline
   * timer the guest then relies on). Default false.
   */
  noLegacyTimers?: boolean;
}

/**
 * QEMU's own seccomp filter, always on: no obsolete system calls, no setuid/setgid, no
 * fork/exec, no scheduler or CPU-affinity changes.
 */
export const QEMU_SANDBOX =
  "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/**
 * TCG's translated-code cache, MiB. QEMU's default is 1 GiB, filled as the guest runs new code
 * (150 MiB resident after one boot of the kestrel guest here, and growing); bounded, the VMM's
 * memory is too (see the jail's memory limit). Boot time was the same within noise.
 */
export const QEMU_TCG_TB_MIB = 64;

/**
 * Escapes a value inside a QEMU `key=value,…` option list (a literal comma is doubled).
 *
 * @example
 * ```ts
 * import { optionValue } from "./cmdline.ts";
 * console.assert(optionValue("/img/a,b.raw") === "/img/a,,b.raw");
 * ```
 */
export function optionValue(value: string): string {
  return value.replaceAll(",", ",,");
}

/** Most vCPUs QEMU's microvm is given. */
const QEMU_MAX_CPUS = 255;

/**
 * The limits {@linkcode checkVmSpec} applies for QEMU booting `kernelFormats`: a VM id without
 * the commas and `=` its option lists split on (paths may hold commas: they are escaped), at
 * most 255 vCPUs, any disk format, and the QMP socket's path length.
 *
 * @example
 * ```ts
 * import { qemuSpecRules } from "./cmdline.ts";
 * const rules = qemuSpecRules({
 *   id: "web", cpus: 1, memoryMib: 256,
 *   kernel: { path: "/k/bzImage", format: "bzImage" },
 *   cmdline: "console=ttyS0", disks: [], nics: [],
 *   serialLog: "/log/serial.log", vmmLog: "/log/vmm.log", runtimeDir: "/run/web",
 * }, ["bzImage"]);
 * console.assert(rules.socket === "/run/web/qmp.sock" && rules.maxCpus === 255);
 * ```
 */
export function qemuSpecRules(
  spec: VmSpec,
  kernelFormats: readonly KernelFormat[],
): VmSpecRules {
  return {
    label: "QEMU",
    kernelFormats,
    maxCpus: QEMU_MAX_CPUS,
    forbiddenIdChars: ",=",
    socket: qemuPaths(spec.runtimeDir).qmpSocket,
  };
}

/**
 * Checks what QEMU cannot be trusted to report clearly (see {@linkcode checkVmSpec} and
 * {@linkcode qemuSpecRules}). Throws `invalid_argument` naming the field.
 *
 * @example
 * ```ts ignore
 * import { validateSpec } from "./cmdline.ts";
 * validateSpec(spec, ["bzImage", "vmlinux"]);
 * ```
 */
export function validateSpec(spec: VmSpec, kernelFormats: readonly KernelFormat[]): void {
  checkVmSpec(spec, qemuSpecRules(spec, kernelFormats));
}

/**
 * The arguments (without the binary) that launch `spec` on a paused microvm: QMP on
 * `<runtimeDir>/qmp.sock`, the serial console on `<runtimeDir>/console.sock` and appended to
 * `spec.serialLog`, disks as
 * virtio-blk in spec order (the first is `/dev/vda`), NICs as virtio-net on existing taps
 * (no vhost, no scripts).
 *
 * @example
 * ```ts
 * import { qemuArgs } from "./cmdline.ts";
 * const args = qemuArgs({
 *   id: "web", cpus: 1, memoryMib: 256,
 *   kernel: { path: "/k/bzImage", format: "bzImage" },
 *   cmdline: "console=ttyS0", disks: [], nics: [],
 *   serialLog: "/log/serial.log", vmmLog: "/log/vmm.log", runtimeDir: "/run/web",
 * }, { accel: "tcg" });
 * console.assert(args.includes("-S") && args.includes("microvm,x-option-roms=off,acpi=on,rtc=on"));
 * console.assert(args[args.indexOf("-sandbox") + 1]!.startsWith("on,"));
 * ```
 */
export function qemuArgs(spec: VmSpec, options: QemuArgsOptions): string[] {
  const paths = qemuPaths(spec.runtimeDir);
  const machine = ["microvm", "x-option-roms=off", "acpi=on", "rtc=on"];
  if (options.accel === "kvm" && options.noLegacyTimers) machine.push("pit=off", "pic=off");
  const args = [
    ["-name", optionValue(spec.id)],
    ["-M", machine.join(",")],
    ["-accel", options.accel === "tcg" ? `tcg,tb-size=${QEMU_TCG_TB_MIB}` : options.accel],
    ["-cpu", options.accel === "kvm" ? "host" : "max"],
    ["-m", `${spec.memoryMib}M`],
    ["-smp", String(spec.cpus)],
    ["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"],
    ["-sandbox", QEMU_SANDBOX],
    ["-pidfile", paths.pidFile],
    ["-chardev", `socket,id=qmp,path=${optionValue(paths.qmpSocket)},server=on,wait=off`],
    ["-mon", "chardev=qmp,mode=control"],
    [
      "-chardev",
      `socket,id=serial0,path=${optionValue(paths.consoleSocket)},server=on,wait=off,` +
      `logfile=${optionValue(spec.serialLog)},logappend=on`,
    ],
    ["-serial", "chardev:serial0"],
    ["-kernel", spec.kernel.path],
    spec.initramfs === undefined ? [] : ["-initrd", spec.initramfs],
    ["-append", spec.cmdline],
  ].flat();
  for (const disk of spec.disks) {
    const id = `disk-${disk.id}`;
    args.push(
      "-drive",
      [
        "if=none",
        `id=${id}`,
        `file=${optionValue(disk.path)}`,
        `format=${disk.format}`,
        `readonly=${disk.readOnly ? "on" : "off"}`,
      ].join(","),
      "-device",
      // virtio-blk serials are at most 20 bytes; ids longer than that are simply not exposed.
      `virtio-blk-device,drive=${id}${disk.id.length <= 20 ? `,serial=${disk.id}` : ""}`,
    );
  }
  for (const nic of spec.nics) {
    const id = `net-${nic.id}`;
    args.push(
      "-netdev",
      `tap,id=${id},ifname=${nic.tap},script=no,downscript=no`,
      "-device",
      `virtio-net-device,netdev=${id},mac=${nic.mac.toLowerCase()}`,
    );
  }
  // The control channel: a second UART (the guest's ttyS1; see QEMU_CONTROL_DEVICE).
  args.push(
    "-chardev",
    `socket,id=control,path=${optionValue(paths.controlSocket)},server=on,wait=off`,
    "-device",
    "isa-serial,chardev=control,index=1",
  );
  // A restore: the guest's state arrives later over QMP `migrate-incoming` (see migration.ts).
  if (spec.restoreFrom !== undefined) args.push("-incoming", "defer");
  args.push("-S");
  return args;
}
