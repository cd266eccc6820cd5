/**
 * What the Firecracker driver sends for one {@linkcode VmSpec}, as pure functions testable
 * without the VMM: the command line, the wrapper that sends the guest's serial console (the
 * VMM's stdout) to the serial log, the ordered pre-boot configuration requests, and the bodies
 * that save and restore a guest.
 *
 * @module
 */
import type { KernelFormat, VmSpec } from "../driver.ts";
import { VMLINUX_ONLY_FIX, type VmSpecRules } from "../spec_check.ts";

/** Files Firecracker keeps in the VM's runtime dir. */
export interface FcPaths {
  /** The REST API socket (`<runtimeDir>/fc.sock`). */
  apiSocket: string;
  /** The pid file the driver writes (`fc.pid`). */
  pidFile: string;
}

/**
 * Where Firecracker's socket and pid file live for a runtime dir.
 *
 * @example
 * ```ts
 * import { fcPaths } from "./config.ts";
 * console.assert(fcPaths("/run/volant/vms/web").apiSocket === "/run/volant/vms/web/fc.sock");
 * ```
 */
export function fcPaths(runtimeDir: string): FcPaths {
  const dir = runtimeDir.replace(/\/+$/, "");
  return { apiSocket: `${dir}/fc.sock`, pidFile: `${dir}/fc.pid` };
}

/** Firecracker boots an uncompressed ELF vmlinux only. */
export const FC_KERNEL_FORMATS: readonly KernelFormat[] = ["vmlinux"];

/** The limits `checkVmSpec` applies for Firecracker. */
export function fcSpecRules(spec: VmSpec): VmSpecRules {
  return {
    label: "Firecracker",
    kernelFormats: FC_KERNEL_FORMATS,
    kernelFormatFix: VMLINUX_ONLY_FIX,
    // Its block devices are raw files; it has no qcow2 (or any image format) support.
    diskFormats: ["raw"],
    // machine-config's documented vcpu_count range.
    maxCpus: 32,
    // Drive and interface ids: alphanumeric and '_', at most 64 characters.
    maxIdLength: 64,
    socket: fcPaths(spec.runtimeDir).apiSocket,
  };
}

/**
 * Firecracker's arguments (without the binary): the API socket, and its own log at `Warning`
 * with levels shown. Its log shares stdout with the guest's serial console, so only warnings
 * and errors (tagged with their level) land among the guest's lines; fatal start-up errors
 * also go to stderr, the VMM log.
 *
 * @example
 * ```ts
 * import { fcArgs } from "./config.ts";
 * console.assert(fcArgs("/run/web")[1] === "/run/web/fc.sock");
 * ```
 */
export function fcArgs(runtimeDir: string): string[] {
  return ["--api-sock", fcPaths(runtimeDir).apiSocket, "--level", "Warning", "--show-level"];
}

/**
 * Launch words that append the VMM's stdout (the guest's serial console) to `serialLog` and
 * exec the rest of the command line; stderr stays on the VMM log. (`PUT /serial` is no
 * substitute: it opens its path without `O_APPEND` and overwrites the log from its start.)
 *
 * @example
 * ```ts
 * import { fcSerialPrefix } from "./config.ts";
 * console.assert(fcSerialPrefix("/log/serial.log").at(-1) === "/log/serial.log");
 * ```
 */
export function fcSerialPrefix(serialLog: string): string[] {
  return ["/bin/sh", "-c", 'out=$1; shift; exec "$@" >>"$out"', "volant-fc-serial", serialLog];
}

/** `PUT /machine-config`'s body as this driver sends it. */
export interface FcMachineConfig {
  vcpu_count: number;
  mem_size_mib: number;
}

/** `PUT /boot-source`'s body. */
export interface FcBootSource {
  kernel_image_path: string;
  boot_args: string;
  initrd_path?: string;
}

/** `PUT /drives/{drive_id}`'s body. */
export interface FcDrive {
  drive_id: string;
  path_on_host: string;
  is_root_device: boolean;
  is_read_only: boolean;
  cache_type?: "Writeback";
}

/** `PUT /network-interfaces/{iface_id}`'s body. */
export interface FcNetworkInterface {
  iface_id: string;
  host_dev_name: string;
  guest_mac: string;
}

/** One pre-boot configuration request. */
export type FcConfigRequest =
  | { method: "PUT"; path: "/machine-config"; body: FcMachineConfig }
  | { method: "PUT"; path: "/boot-source"; body: FcBootSource }
  | { method: "PUT"; path: `/drives/${string}`; body: FcDrive }
  | { method: "PUT"; path: `/network-interfaces/${string}`; body: FcNetworkInterface };

/**
 * The pre-boot configuration of `spec`, in the order it is sent (all before `InstanceStart`):
 * machine (vCPUs, memory), boot source (kernel, command line, initramfs), drives in spec order
 * (the first is `/dev/vda`; none is marked root, so Firecracker leaves the command line's
 * `root=` alone; writable ones honour the guest's flushes with `Writeback`), then the network
 * interfaces on their pre-created taps with their MACs.
 *
 * @example
 * ```ts
 * import { fcConfigRequests } from "./config.ts";
 * const requests = fcConfigRequests({
 *   id: "web", cpus: 1, memoryMib: 256,
 *   kernel: { path: "/k/vmlinux", format: "vmlinux" },
 *   cmdline: "console=ttyS0", disks: [], nics: [],
 *   serialLog: "/log/serial.log", vmmLog: "/log/vmm.log", runtimeDir: "/run/web",
 * });
 * console.assert(requests.map((r) => r.path).join(" ") === "/machine-config /boot-source");
 * ```
 */
export function fcConfigRequests(spec: VmSpec): FcConfigRequest[] {
  const requests: FcConfigRequest[] = [
    {
      method: "PUT",
      path: "/machine-config",
      body: { vcpu_count: spec.cpus, mem_size_mib: spec.memoryMib },
    },
    {
      method: "PUT",
      path: "/boot-source",
      body: {
        kernel_image_path: spec.kernel.path,
        boot_args: spec.cmdline,
        ...(spec.initramfs === undefined ? {} : { initrd_path: spec.initramfs }),
      },
    },
  ];
  for (const disk of spec.disks) {
    requests.push({
      method: "PUT",
      path: `/drives/${disk.id}`,
      body: {
        drive_id: disk.id,
        path_on_host: disk.path,
        is_root_device: false,
        is_read_only: disk.readOnly,
        ...(disk.readOnly ? {} : { cache_type: "Writeback" as const }),
      },
    });
  }
  for (const nic of spec.nics) {
    requests.push({
      method: "PUT",
      path: `/network-interfaces/${nic.id}`,
      body: { iface_id: nic.id, host_dev_name: nic.tap, guest_mac: nic.mac.toLowerCase() },
    });
  }
  return requests;
}

/** The guest's device and vCPU state in a saved-state directory. */
export const FC_STATE_FILE = "vmstate";
/** The guest's memory in a saved-state directory (as large as its RAM). */
export const FC_MEMORY_FILE = "memory";

/** The files `/snapshot/create` writes (this driver's names); a restore reads both. */
export const FC_SNAPSHOT_FILES: readonly string[] = [FC_STATE_FILE, FC_MEMORY_FILE];

/** `PUT /snapshot/create`'s body (`SnapshotCreateParams`) as this driver sends it. */
export interface FcSnapshotCreate {
  snapshot_type: "Full";
  snapshot_path: string;
  mem_file_path: string;
}

/** `PUT /snapshot/load`'s body (the `SnapshotLoadParams` fields this driver sets). */
export interface FcSnapshotLoad {
  snapshot_path: string;
  /** The memory file, mapped privately (`mem_file_path` is its deprecated alternative). */
  mem_backend: { backend_type: "File"; backend_path: string };
  /** Never: the driver's `resume` runs the guest. */
  resume_vm: false;
  /** The spec's taps for the saved interfaces (by id), when it has NICs. */
  network_overrides?: Array<{ iface_id: string; host_dev_name: string }>;
}

/**
 * The body of `PUT /snapshot/create` that saves a full snapshot (state and all memory) into
 * `dir`.
 *
 * @example
 * ```ts
 * import { fcSnapshotCreate } from "./config.ts";
 * console.assert(fcSnapshotCreate("/srv/save").mem_file_path === "/srv/save/memory");
 * ```
 */
export function fcSnapshotCreate(dir: string): FcSnapshotCreate {
  return {
    snapshot_type: "Full",
    snapshot_path: `${dir}/${FC_STATE_FILE}`,
    mem_file_path: `${dir}/${FC_MEMORY_FILE}`,
  };
}

/**
 * The body of `PUT /snapshot/load` that restores the snapshot in `dir` for `spec`, paused: the
 * memory file as a `File` backend (Firecracker maps it privately for the guest's life: it must
 * not change while the guest runs; removing it is fine), and the spec's taps in place of the
 * saved ones (interfaces keep their ids).
 *
 * @example
 * ```ts
 * import { fcSnapshotLoad } from "./config.ts";
 * const body = fcSnapshotLoad("/srv/save", { nics: [{ id: "eth0", tap: "vt1", mac: "" }] });
 * console.assert(body.mem_backend.backend_path === "/srv/save/memory" && !body.resume_vm);
 * console.assert(body.network_overrides?.[0]?.host_dev_name === "vt1");
 * ```
 */
export function fcSnapshotLoad(dir: string, spec: Pick<VmSpec, "nics">): FcSnapshotLoad {
  return {
    snapshot_path: `${dir}/${FC_STATE_FILE}`,
    mem_backend: { backend_type: "File", backend_path: `${dir}/${FC_MEMORY_FILE}` },
    resume_vm: false,
    ...(spec.nics.length > 0
      ? {
        network_overrides: spec.nics.map((nic) => ({ iface_id: nic.id, host_dev_name: nic.tap })),
      }
      : {}),
  };
}
