/**
 * File checks before a VMM starts, so a missing kernel or disk is reported by name instead of
 * as a VMM failure; and removal of the VMM's leftover files.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { VmSpec } from "./driver.ts";

/** Removes `path`; a missing file is fine. */
export async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

async function mustExist(
  path: string,
  code: "kernel_not_found" | "invalid_argument",
  what: string,
  kind: "file" | "dir",
): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new VolantError(code, `${what} ${path} does not exist`, { path });
  }
  if (kind === "file" ? !info.isFile : !info.isDirectory) {
    const expected = kind === "file" ? "file" : "directory";
    throw new VolantError(code, `${what} ${path} is not a ${expected}`, { path });
  }
}

function parentDir(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/**
 * Checks that the spec's files and directories exist: kernel and initramfs
 * (`kernel_not_found`), disks, runtime and log directories (`invalid_argument`).
 */
export async function checkSpecFiles(spec: VmSpec): Promise<void> {
  await mustExist(spec.kernel.path, "kernel_not_found", "Kernel image", "file");
  if (spec.initramfs !== undefined) {
    await mustExist(spec.initramfs, "kernel_not_found", "Initramfs", "file");
  }
  for (const [i, disk] of spec.disks.entries()) {
    await mustExist(disk.path, "invalid_argument", `Disk ${i} (${disk.id}) image`, "file");
  }
  await mustExist(spec.runtimeDir, "invalid_argument", "Runtime directory", "dir");
  await mustExist(parentDir(spec.serialLog), "invalid_argument", "Serial log directory", "dir");
  await mustExist(parentDir(spec.vmmLog), "invalid_argument", "VMM log directory", "dir");
}
