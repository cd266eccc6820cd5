/**
 * File checks before a VMM starts, so a missing kernel or disk is reported by name instead of
 * as a VMM failure; claiming a runtime dir (refusing one whose API socket still answers,
 * removing a dead VMM's leftover files); and removal of the VMM's files. Shared by every
 * driver.
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

/** Options of {@linkcode claimRuntimeDir}. */
export interface ClaimOptions {
  /** Name in messages, e.g. `QEMU`. */
  label: string;
  runtimeDir: string;
  /** The VMM's API socket in `runtimeDir`. */
  socket: string;
  /** Files the VMM leaves behind (removed when stale), besides the socket. */
  files: readonly string[];
  /** True when a VMM answers on the socket. */
  answers: () => Promise<boolean>;
}

/**
 * Refuses (`invalid_state`) a runtime dir whose API socket still answers; otherwise removes the
 * stale socket and files so a new VMM can bind.
 *
 * @example
 * ```ts
 * import { claimRuntimeDir } from "./spec_files.ts";
 * const runtimeDir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${runtimeDir}/fc.pid`, "4242\n");
 * await claimRuntimeDir({
 *   label: "Firecracker", runtimeDir, socket: `${runtimeDir}/fc.sock`,
 *   files: [`${runtimeDir}/fc.pid`], answers: () => Promise.resolve(false),
 * });
 * console.assert([...Deno.readDirSync(runtimeDir)].length === 0, "the stale pid file is gone");
 * await Deno.remove(runtimeDir);
 * ```
 */
export async function claimRuntimeDir(options: ClaimOptions): Promise<void> {
  let present = true;
  try {
    await Deno.lstat(options.socket);
  } catch {
    present = false;
  }
  if (present && await options.answers().catch(() => false)) {
    throw new VolantError(
      "invalid_state",
      `Runtime directory ${options.runtimeDir} belongs to a ${options.label} that is still ` +
        `running (${options.socket} answers); stop it first`,
      { runtimeDir: options.runtimeDir },
    );
  }
  for (const file of [options.socket, ...options.files]) await removeIfPresent(file);
}
