/**
 * The guest-artifact seam: where the daemon finds the kernel, the stage-0 initramfs and the
 * shared runtime disk for a VM. The default reads fixed file names in the guest dir at each
 * create (so building the guest after volantd started works); `kernels/` may provide a
 * stricter implementation (checking `guest.json` hashes) behind the same interface.
 *
 * @module
 */
import { type KernelName, VolantError } from "../schema/mod.ts";
import type { KernelFormat } from "../hypervisor/driver.ts";

/** The files one VM boots from. Paths are absolute. */
export interface GuestImage {
  /** The kernel image: its name, path and format. */
  kernel: { name: KernelName; path: string; format: KernelFormat };
  /** Stage-0 initramfs (`initramfs.cpio`). */
  initramfs: string;
  /** Shared read-only runtime image (`runtime.erofs`), attached as the first disk. */
  runtimeDisk: string;
}

/** Resolves guest images; throws `kernel_not_found` (with the fix) when files are missing. */
export interface GuestArtifacts {
  /** The directory the files come from (for messages and health). */
  readonly dir: string;
  /** The files for `kernel`; `kernel_not_found` (with the fix) when any is missing. */
  resolve(kernel: KernelName): Promise<GuestImage>;
}

/** File name and format of each kernel in the guest dir. */
export const KERNEL_FILES: Readonly<Record<KernelName, { file: string; format: KernelFormat }>> = {
  "bzImage-volant": { file: "bzImage-volant", format: "bzImage" },
  "vmlinux-generic": { file: "vmlinux-generic", format: "vmlinux" },
};

/**
 * The kernel each hypervisor boots when the config says `guest.default_kernel: auto`: the ELF
 * `vmlinux-generic` (PVH) for Cloud Hypervisor and Firecracker, which boot nothing else, and
 * `bzImage-volant` for QEMU.
 */
export const AUTO_KERNEL: Readonly<Record<string, KernelName>> = {
  "cloud-hypervisor": "vmlinux-generic",
  firecracker: "vmlinux-generic",
  qemu: "bzImage-volant",
};

/**
 * The kernel VMs of `driver` boot unless they name one: `configured` when it is a kernel name,
 * else the hypervisor's own ({@linkcode AUTO_KERNEL}).
 *
 * @example
 * ```ts
 * import { defaultKernelFor } from "./guest.ts";
 * console.assert(defaultKernelFor("cloud-hypervisor", "auto") === "vmlinux-generic");
 * console.assert(defaultKernelFor("qemu", "auto") === "bzImage-volant");
 * console.assert(defaultKernelFor("qemu", "vmlinux-generic") === "vmlinux-generic");
 * ```
 */
export function defaultKernelFor(driver: string, configured: KernelName | "auto"): KernelName {
  if (configured !== "auto") return configured;
  return AUTO_KERNEL[driver] ?? "bzImage-volant";
}

/** Stage-0 initramfs file name in the guest dir. */
export const INITRAMFS_FILE = "initramfs.cpio";
/** Runtime disk file name in the guest dir. */
export const RUNTIME_DISK_FILE = "runtime.erofs";

/** The hint appended to every `kernel_not_found` message. */
export const GUEST_FIX =
  "build the guest with `sudo ./volant up` (or point guest.dir / VOLANT_GUEST_DIR at a built guest)";

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * Guest artifacts read from a directory laid out as `kernels/` builds it.
 *
 * @example
 * ```ts ignore
 * import { guestDirArtifacts } from "./guest.ts";
 * const image = await guestDirArtifacts("/var/lib/volant/guest").resolve("bzImage-volant");
 * console.log(image.kernel.path);
 * ```
 */
export function guestDirArtifacts(dir: string): GuestArtifacts {
  return {
    dir,
    async resolve(kernel: KernelName): Promise<GuestImage> {
      const entry = KERNEL_FILES[kernel];
      const image: GuestImage = {
        kernel: { name: kernel, path: `${dir}/${entry.file}`, format: entry.format },
        initramfs: `${dir}/${INITRAMFS_FILE}`,
        runtimeDisk: `${dir}/${RUNTIME_DISK_FILE}`,
      };
      const wanted: Array<[string, string]> = [
        [`guest kernel ${kernel}`, image.kernel.path],
        ["guest initramfs", image.initramfs],
        ["guest runtime disk", image.runtimeDisk],
      ];
      for (const [what, path] of wanted) {
        if (!(await isFile(path))) {
          throw new VolantError(
            "kernel_not_found",
            `The ${what} is missing (${path}); ${GUEST_FIX}`,
            { kernel, path, guest_dir: dir },
          );
        }
      }
      return image;
    },
  };
}
