/**
 * What the Cloud Hypervisor driver sends for one {@linkcode VmSpec}, as pure functions testable
 * without the VMM: the command line (an empty VMM with an API socket), the `VmConfig` body of
 * `PUT /api/v1/vm.create`, the bodies of `vm.snapshot` and `vm.restore`, and the configuration
 * a restore of the spec uses.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type { KernelFormat, VmSpec } from "../driver.ts";
import { VMLINUX_ONLY_FIX, type VmSpecRules } from "../spec_check.ts";

/** Files Cloud Hypervisor keeps in the VM's runtime dir. */
export interface ChPaths {
  /** The REST API socket (`<runtimeDir>/ch.sock`). */
  apiSocket: string;
  /** The lock Cloud Hypervisor takes beside its socket (`ch.sock.lock`). */
  lockFile: string;
  /** The pid file the driver writes (`ch.pid`). */
  pidFile: string;
}

/**
 * Where Cloud Hypervisor's socket, lock and pid file live for a runtime dir.
 *
 * @example
 * ```ts
 * import { chPaths } from "./config.ts";
 * console.assert(chPaths("/run/volant/vms/web/").apiSocket === "/run/volant/vms/web/ch.sock");
 * ```
 */
export function chPaths(runtimeDir: string): ChPaths {
  const dir = runtimeDir.replace(/\/+$/, "");
  return {
    apiSocket: `${dir}/ch.sock`,
    lockFile: `${dir}/ch.sock.lock`,
    pidFile: `${dir}/ch.pid`,
  };
}

/** Cloud Hypervisor boots an ELF vmlinux through its PVH entry (no bzImage). */
export const CH_KERNEL_FORMATS: readonly KernelFormat[] = ["vmlinux"];

/** The limits `checkVmSpec` applies for Cloud Hypervisor. */
export function chSpecRules(spec: VmSpec): VmSpecRules {
  return {
    label: "Cloud Hypervisor",
    kernelFormats: CH_KERNEL_FORMATS,
    kernelFormatFix: VMLINUX_ONLY_FIX,
    diskFormats: ["raw", "qcow2"],
    // KVM's vCPU limit on x86 is far above this; 254 keeps the APIC ids in range.
    maxCpus: 254,
    maxIdLength: 64,
    socket: chPaths(spec.runtimeDir).apiSocket,
    // Its option parser splits `--api-socket path=…` on commas.
    forbiddenPathChars: ",",
  };
}

/**
 * The arguments (without the binary) that start an empty Cloud Hypervisor waiting on its API
 * socket. Logs go to stderr (the VMM log); the VM comes from `vm.create`.
 *
 * @example
 * ```ts
 * import { chArgs } from "./config.ts";
 * console.assert(chArgs("/run/web").join(" ") === "--api-socket path=/run/web/ch.sock");
 * ```
 */
export function chArgs(runtimeDir: string): string[] {
  return ["--api-socket", `path=${chPaths(runtimeDir).apiSocket}`];
}

/** The `VmConfig` fields this driver sets (a subset of the API's schema). */
export interface ChVmConfig {
  cpus: { boot_vcpus: number; max_vcpus: number };
  memory: { size: number };
  payload: { kernel: string; cmdline: string; initramfs?: string };
  disks?: Array<{
    id: string;
    path: string;
    readonly: boolean;
    image_type: "Raw" | "Qcow2";
    serial?: string;
  }>;
  net?: Array<{ id: string; tap: string; mac: string }>;
  serial: { mode: "File"; file: string };
  console: { mode: "Off" };
}

/** The device id Cloud Hypervisor knows a spec disk by (also the key in `vm.counters`). */
export function chDiskId(id: string): string {
  return `disk-${id}`;
}

/** The device id Cloud Hypervisor knows a spec NIC by (also the key in `vm.counters`). */
export function chNetId(id: string): string {
  return `net-${id}`;
}

/**
 * The complete `VmConfig` for `spec`: kernel, initramfs and command line as the payload;
 * vCPUs; memory in bytes; disks in spec order (the first is `/dev/vda`) with an explicit
 * `image_type` (never the deprecated probing) and `readonly`; NICs on their pre-created taps
 * with their MACs (no `ip`/`mask`: the tap is the host's); the legacy serial port written to
 * `spec.serialLog`; the virtio console explicitly off (its default is the VMM's own terminal).
 *
 * @example
 * ```ts
 * import { chVmConfig } from "./config.ts";
 * const config = chVmConfig({
 *   id: "web", cpus: 2, memoryMib: 256,
 *   kernel: { path: "/k/vmlinux", format: "vmlinux" },
 *   cmdline: "console=ttyS0", disks: [], nics: [],
 *   serialLog: "/log/serial.log", vmmLog: "/log/vmm.log", runtimeDir: "/run/web",
 * });
 * console.assert(config.memory.size === 256 * 1024 * 1024 && config.console.mode === "Off");
 * ```
 */
export function chVmConfig(spec: VmSpec): ChVmConfig {
  const config: ChVmConfig = {
    cpus: { boot_vcpus: spec.cpus, max_vcpus: spec.cpus },
    memory: { size: spec.memoryMib * 1024 * 1024 },
    payload: {
      kernel: spec.kernel.path,
      cmdline: spec.cmdline,
      ...(spec.initramfs === undefined ? {} : { initramfs: spec.initramfs }),
    },
    serial: { mode: "File", file: spec.serialLog },
    console: { mode: "Off" },
  };
  if (spec.disks.length > 0) {
    config.disks = spec.disks.map((disk) => ({
      id: chDiskId(disk.id),
      path: disk.path,
      readonly: disk.readOnly,
      image_type: disk.format === "qcow2" ? "Qcow2" : "Raw",
      // virtio-blk serials are at most 20 bytes; longer ids are simply not exposed.
      ...(disk.id.length <= 20 ? { serial: disk.id } : {}),
    }));
  }
  if (spec.nics.length > 0) {
    config.net = spec.nics.map((nic) => ({
      id: chNetId(nic.id),
      tap: nic.tap,
      mac: nic.mac.toLowerCase(),
    }));
  }
  return config;
}

/**
 * The files `vm.snapshot` writes into its directory: the VM's configuration, its device and
 * vCPU state, and guest memory (as large as the guest's RAM). A restore reads all three.
 */
export const CH_SNAPSHOT_FILES: readonly string[] = ["config.json", "state.json", "memory-ranges"];

/** `PUT /vm.snapshot`'s body (`VmSnapshotConfig`). */
export interface ChSnapshotConfig {
  /** `file://` and the absolute path of an existing directory. */
  destination_url: string;
}

/** `PUT /vm.restore`'s body (the `RestoreConfig` fields this driver sets). */
export interface ChRestoreConfig {
  /** `file://` and the absolute path of a snapshot directory. */
  source_url: string;
  /** Whether the VM runs once restored: never here (the driver's `resume` runs it). */
  resume: boolean;
}

/**
 * The body of `PUT /vm.snapshot` that saves into `dir` (Cloud Hypervisor takes the path after
 * `file://` as it is: no percent-encoding).
 *
 * @example
 * ```ts
 * import { chSnapshotConfig } from "./config.ts";
 * console.assert(chSnapshotConfig("/srv/save").destination_url === "file:///srv/save");
 * ```
 */
export function chSnapshotConfig(dir: string): ChSnapshotConfig {
  return { destination_url: `file://${dir}` };
}

/**
 * The body of `PUT /vm.restore` that restores the snapshot in `dir`, paused (no `prefault`:
 * memory is copied in, Cloud Hypervisor's default `Copy` mode).
 *
 * @example
 * ```ts
 * import { chRestoreConfig } from "./config.ts";
 * const body = chRestoreConfig("/run/web/state.restore");
 * console.assert(body.source_url === "file:///run/web/state.restore" && body.resume === false);
 * ```
 */
export function chRestoreConfig(dir: string): ChRestoreConfig {
  return { source_url: `file://${dir}`, resume: false };
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * The `config.json` a restore of `spec` uses, from the one a snapshot saved (`saved`, read from
 * `where`): the guest (vCPUs, memory, devices) must be the spec's, and the host's side of it
 * becomes the spec's: the serial log file, each disk's image path and each NIC's tap (matched by
 * device id). Everything else stays as saved (the guest's MACs and kernel are in its memory).
 * `invalid_argument` naming `restoreFrom` when the saved VM is not the spec's.
 *
 * @example
 * ```ts
 * import { chRestoredVmConfig, chVmConfig } from "./config.ts";
 * const spec = {
 *   id: "web", cpus: 1, memoryMib: 256,
 *   kernel: { path: "/k/vmlinux", format: "vmlinux" as const },
 *   cmdline: "console=ttyS0", disks: [], nics: [],
 *   serialLog: "/log/serial.log", vmmLog: "/log/vmm.log", runtimeDir: "/run/web",
 * };
 * const saved = chVmConfig(spec);
 * const restored = chRestoredVmConfig(saved, { ...spec, serialLog: "/log/2.log" }, "/s/config.json");
 * console.assert((restored.serial as { file: string }).file === "/log/2.log");
 * ```
 */
export function chRestoredVmConfig(saved: unknown, spec: VmSpec, where: string): JsonObject {
  const refuse = (why: string) =>
    new VolantError("invalid_argument", `restoreFrom ${where}: ${why}`, {
      field: "restoreFrom",
      path: where,
    });
  if (!isObject(saved) || !isObject(saved.payload)) {
    throw refuse("not a saved Cloud Hypervisor VM configuration");
  }
  const want = chVmConfig(spec);
  const cpus = isObject(saved.cpus) ? saved.cpus.boot_vcpus : undefined;
  const memory = isObject(saved.memory) ? saved.memory.size : undefined;
  if (cpus !== want.cpus.boot_vcpus || memory !== want.memory.size) {
    throw refuse(
      `saved with ${String(cpus)} vCPUs and ${String(memory)} bytes of memory, the spec has ` +
        `${want.cpus.boot_vcpus} and ${want.memory.size}`,
    );
  }
  const restored: JsonObject = { ...saved };
  const devices = <T extends { id: string }>(
    key: "disks" | "net",
    wanted: readonly T[],
    host: (device: JsonObject, mine: T) => JsonObject,
  ) => {
    const list = Array.isArray(saved[key]) ? saved[key] as unknown[] : [];
    const ids = list.map((d) => isObject(d) ? String(d.id) : "?");
    if (ids.join("\n") !== wanted.map((d) => d.id).join("\n")) {
      throw refuse(
        `saved with ${key} [${ids.join(", ")}], the spec has [${
          wanted.map((d) => d.id).join(", ")
        }]`,
      );
    }
    if (list.length > 0) {
      restored[key] = list.map((d, i) => host(d as JsonObject, wanted[i]!));
    }
  };
  devices("disks", want.disks ?? [], (d, mine) => ({ ...d, path: mine.path }));
  devices("net", want.net ?? [], (n, mine) => ({ ...n, tap: mine.tap }));
  if (isObject(saved.serial) && saved.serial.mode === "File") {
    restored.serial = { ...saved.serial, file: spec.serialLog };
  }
  return restored;
}
