/** Per-VM paths and the {@linkcode VmSpec} a driver receives. @module */
import { encodeBootConfig } from "../../schema/mod.ts";
import type { VmSpec } from "../../hypervisor/driver.ts";
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
}

/** The paths of VM `name` under the daemon's runtime and log dirs. */
export function vmPaths(dirs: { runtimeDir: string; logDir: string }, name: string): VmPaths {
  const logDir = `${dirs.logDir}/vms/${name}`;
  return {
    runtimeDir: `${dirs.runtimeDir}/vms/${name}`,
    logDir,
    serialLog: `${logDir}/serial.log`,
    vmmLog: `${logDir}/vmm.log`,
  };
}

/**
 * The guest kernel command line: base words, host words (e.g. `tsc_early_khz=…`), the boot
 * config (with the guest's address when it has a NIC), then the user's own words.
 */
export function buildCmdline(
  name: string,
  hostWords: string,
  user: string | null,
  nic?: GuestNic,
): string {
  const network = nic === undefined
    ? undefined
    : { ip: nic.ip, prefix: nic.prefix, gateway: nic.gateway, mac: nic.mac };
  const boot = encodeBootConfig({ v: 1, name, hostname: name, ...(network ? { network } : {}) });
  return [BASE_CMDLINE, hostWords.trim(), boot, (user ?? "").trim()].filter((w) => w !== "")
    .join(" ");
}

/** The driver's spec for `row` booting `image`, with `nic` as `eth0` when given. */
export function buildSpec(
  row: VmRow,
  image: GuestImage,
  paths: VmPaths,
  hostWords: string,
  nic?: GuestNic,
): VmSpec {
  return {
    id: row.name,
    cpus: row.cpu_cores,
    memoryMib: row.memory_mb,
    kernel: { path: image.kernel.path, format: image.kernel.format },
    initramfs: image.initramfs,
    cmdline: buildCmdline(row.name, hostWords, row.kernel_cmdline, nic),
    disks: [{ id: "runtime", path: image.runtimeDisk, readOnly: true, format: "raw" }],
    nics: nic === undefined ? [] : [{ id: "eth0", tap: nic.tap, mac: nic.mac }],
    serialLog: paths.serialLog,
    vmmLog: paths.vmmLog,
    runtimeDir: paths.runtimeDir,
  };
}
