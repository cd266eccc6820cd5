/** Per-VM paths and the {@linkcode VmSpec} a driver receives. @module */
import { type BootConfig, encodeBootConfig, type Manifest } from "../../schema/mod.ts";
import type { DiskSpec, VmSpec } from "../../hypervisor/driver.ts";
import type { GuestImage } from "../guest.ts";
import type { VmRow } from "../store/mod.ts";
import type { GuestNic } from "./_network.ts";

/** Kernel command-line words every guest gets first. */
export const BASE_CMDLINE = "console=ttyS0 quiet reboot=t panic=-1";

/** Where one VM's files live. */
export interface VmPaths {
  /** `<runtime_dir>/vms/<name>`: sockets and pid files (removed on delete). */
  runtimeDir: string;
  /** `<log_dir>/vms/<name>`: serial and VMM logs (removed on delete). */
  logDir: string;
  /** `<logDir>/serial.log`: the guest console. */
  serialLog: string;
  /** `<logDir>/vmm.log`: the VMM's own output. */
  vmmLog: string;
  /** `<runtimeDir>/initramfs.cpio`: stage 0 + the plugin's archive + the boot config. */
  initramfs: string;
  /** `<stateDir>/vms/<name>`: the VM's writable disks (kept across restarts, removed on delete). */
  diskDir: string;
}

/** The paths of VM `name` under the daemon's runtime and log dirs. */
export function vmPaths(
  dirs: { runtimeDir: string; logDir: string; stateDir?: string },
  name: string,
): VmPaths {
  const logDir = `${dirs.logDir}/vms/${name}`;
  const runtimeDir = `${dirs.runtimeDir}/vms/${name}`;
  return {
    runtimeDir,
    logDir,
    serialLog: `${logDir}/serial.log`,
    vmmLog: `${logDir}/vmm.log`,
    initramfs: `${runtimeDir}/initramfs.cpio`,
    diskDir: `${dirs.stateDir ?? `${dirs.runtimeDir}/state`}/vms/${name}`,
  };
}

/**
 * The boot config kestrel reads: identity, address, the plugin's manifest, and a root shell on
 * the serial console (reached only through the daemon's console route).
 */
export function bootConfigFor(name: string, nic?: GuestNic, manifest?: Manifest): BootConfig {
  const network = nic === undefined
    ? undefined
    : { ip: nic.ip, prefix: nic.prefix, gateway: nic.gateway, mac: nic.mac };
  return {
    v: 1,
    name,
    hostname: name,
    ...(network ? { network } : {}),
    ...(manifest ? { manifest } : {}),
    console_shell: true,
  };
}

/**
 * The guest kernel command line: base words, host words (e.g. `tsc_early_khz=…`), the VM's
 * identity and address (`volant.boot=`; the full boot config with the manifest travels in the
 * initramfs), then the user's own words.
 */
export function buildCmdline(
  name: string,
  hostWords: string,
  user: string | null,
  nic?: GuestNic,
): string {
  const boot = encodeBootConfig(bootConfigFor(name, nic));
  return [BASE_CMDLINE, hostWords.trim(), boot, (user ?? "").trim()].filter((w) => w !== "")
    .join(" ");
}

/** What a VM boots besides the shared guest image. */
export interface BootExtras {
  /** The per-VM initramfs (see `_boot_media.ts`). */
  initramfs: string;
  /** Whether the shared runtime disk is attached first (kestrel mode). */
  runtimeDisk: boolean;
  /** The plugin's disks, after the runtime disk. */
  disks: DiskSpec[];
}

/** The driver's spec for `row` booting `image`, with `nic` as `eth0` when given. */
export function buildSpec(
  row: VmRow,
  image: GuestImage,
  paths: VmPaths,
  hostWords: string,
  nic: GuestNic | undefined,
  extras: BootExtras,
): VmSpec {
  const runtime: DiskSpec[] = extras.runtimeDisk
    ? [{ id: "runtime", path: image.runtimeDisk, readOnly: true, format: "raw" }]
    : [];
  return {
    id: row.name,
    cpus: row.cpu_cores,
    memoryMib: row.memory_mb,
    kernel: { path: image.kernel.path, format: image.kernel.format },
    initramfs: extras.initramfs,
    cmdline: buildCmdline(row.name, hostWords, row.kernel_cmdline, nic),
    disks: [...runtime, ...extras.disks],
    nics: nic === undefined ? [] : [{ id: "eth0", tap: nic.tap, mac: nic.mac }],
    serialLog: paths.serialLog,
    vmmLog: paths.vmmLog,
    runtimeDir: paths.runtimeDir,
  };
}
