/**
 * What a driver does to launch its VMM in a jail: gather the files the VMM may open from its
 * {@linkcode VmSpec} (kernel, initramfs, disks and the base of a writable qcow2 overlay
 * read-only; runtime dir, writable disks and serial log writable), plus its program files,
 * and build the launch prefix.
 *
 * @module
 */
import type { VmSpec } from "../driver.ts";
import { parseQcow2Header } from "../disk_image.ts";
import { cgroupProcsFiles } from "./cgroup.ts";
import { jailLaunch } from "./launch.ts";
import { planJail } from "./plan.ts";
import { programFiles } from "./program_files.ts";
import type { VmmJail } from "./types.ts";

/** How to launch a VMM in its jail. */
export interface VmmJailFiles {
  /** Words to run the VMM through (after any other launch prefix). */
  prefix: string[];
  /** What `/proc/<pid>/exe` shows once the VMM runs. */
  exe: string;
  /** `cgroup.procs` files the launch wrapper writes its pid to before anything else. */
  cgroupProcs: string[];
}

async function backingFile(path: string): Promise<string | null> {
  let head: Uint8Array;
  try {
    using file = await Deno.open(path, { read: true });
    const buf = new Uint8Array(64 * 1024);
    let at = 0;
    while (at < buf.length) {
      const n = await file.read(buf.subarray(at));
      if (n === null || n === 0) break;
      at += n;
    }
    head = buf.subarray(0, at);
  } catch {
    return null;
  }
  const backing = parseQcow2Header(head)?.backingFile ?? null;
  if (backing === null || backing.startsWith("(")) return null;
  return backing.startsWith("/") ? backing : `${path.slice(0, path.lastIndexOf("/"))}/${backing}`;
}

/**
 * The launch of `spec`'s VMM (`binary`, symlink-free) in `spec.jail`; `dataPaths` are more
 * read-only program files the VMM needs (QEMU's firmware directory).
 *
 * @example
 * ```ts ignore
 * import { prepareVmmJail } from "./prepare.ts";
 * const launch = await prepareVmmJail(spec, "/usr/bin/qemu-system-x86_64", ["/usr/share/qemu"]);
 * await spawnDetached({ argv, log, prefix: launch.prefix, exe: launch.exe,
 *   cgroupProcs: launch.cgroupProcs, clearEnv: true });
 * ```
 */
export async function prepareVmmJail(
  spec: VmSpec & { jail: VmmJail },
  binary: string,
  dataPaths: readonly string[] = [],
): Promise<VmmJailFiles> {
  const jail = spec.jail;
  const readOnly = [spec.kernel.path];
  if (spec.initramfs !== undefined) readOnly.push(spec.initramfs);
  const readWrite = [spec.runtimeDir, spec.serialLog];
  for (const disk of spec.disks) {
    if (disk.readOnly) {
      readOnly.push(disk.path);
      continue;
    }
    readWrite.push(disk.path);
    if (disk.format === "qcow2") {
      // The overlay's base: checked by the daemon to be its own cached artifact.
      const base = await backingFile(disk.path);
      if (base !== null) readOnly.push(base);
    }
  }
  const ops = await planJail({
    exec: [...await programFiles(binary), ...dataPaths, ...(jail.readOnly ?? [])],
    readOnly,
    readWrite,
  }, jail.devices);
  const launch = jailLaunch(jail, ops, binary);
  return { ...launch, cgroupProcs: cgroupProcsFiles(jail.cgroup) };
}
