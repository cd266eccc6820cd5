/**
 * The root of a workload that runs an OCI image: the image's read-only filesystem (shared by
 * every VM of that image) as the lower layer, the VM's own ext4 disk as the upper one, joined by
 * overlayfs — so the image's files never change and a second VM copies nothing. kestrel keeps
 * its own root and runs the workload inside this one.
 *
 * @module
 */
import type { ImageRoot } from "../schema/boot_config.ts";
import { VolantError } from "../schema/error.ts";
import { MS_NODEV, MS_NOSUID, MS_RDONLY } from "./libc.ts";
import type { MountSpec } from "./mounts.ts";
import type { System } from "./system.ts";

/** Where the layers are mounted, beside the overlay. */
export const IMAGE_LAYER_DIR = "/run/volant/layers";

/** Options of {@linkcode assembleImageRoot}. */
export interface ImageRootOptions {
  /** How long to wait for a disk to appear (default 5000 ms). */
  deviceTimeoutMs?: number;
}

async function waitForDevice(
  device: string,
  timeoutMs: number,
  exists: (path: string) => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await exists(device)) return;
    if (Date.now() >= deadline) {
      throw new VolantError(
        "invalid_state",
        `image root: disk ${device} did not appear within ${timeoutMs} ms`,
        { device },
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The mounts that build the root, in order: the image read-only, the writable disk, then the
 * overlay of both at `target`.
 *
 * @example
 * ```ts
 * import { imageRootMounts } from "./image_root.ts";
 * const mounts = imageRootMounts({ lower: "/dev/vdb", upper: "/dev/vdc" }, "/run/volant/image");
 * console.assert(mounts.at(-1)!.fstype === "overlay");
 * ```
 */
export function imageRootMounts(spec: ImageRoot, target: string): MountSpec[] {
  const lower = `${IMAGE_LAYER_DIR}/image`;
  const upper = `${IMAGE_LAYER_DIR}/writable`;
  return [
    { source: spec.lower, target: lower, fstype: spec.lower_fstype ?? "erofs", flags: MS_RDONLY },
    // noinit_itable: the disk was made with lazy inode tables; zeroing them would un-sparse it.
    {
      source: spec.upper,
      target: upper,
      fstype: "ext4",
      flags: MS_NOSUID | MS_NODEV,
      data: "noinit_itable",
    },
    {
      source: "overlay",
      target,
      fstype: "overlay",
      flags: 0,
      data: `lowerdir=${lower},upperdir=${upper}/data,workdir=${upper}/work`,
    },
  ];
}

/** Filesystems a lower layer of unknown type is tried as, in order. */
export const LOWER_FSTYPES = ["erofs", "ext4", "squashfs"] as const;

/** Mounts the lower layer; with `probe`, tries each of {@linkcode LOWER_FSTYPES} in turn. */
function mountLower(system: System, lower: MountSpec, probe: boolean): void {
  if (!probe) return system.mount(lower);
  const errors: string[] = [];
  for (const fstype of LOWER_FSTYPES) {
    try {
      system.mount({ ...lower, fstype });
      return;
    } catch (err) {
      errors.push(`${fstype}: ${(err as Error).message}`);
    }
  }
  throw new VolantError(
    "invalid_state",
    `image root: ${lower.source} is none of ${LOWER_FSTYPES.join(", ")} (${errors.join("; ")})`,
    { device: lower.source },
  );
}

/**
 * Mounts the image root at `target` (waiting for the disks to appear) and writes the guest's
 * `/etc/hostname` and `/etc/hosts` into its writable layer, as container runtimes do.
 * Throws a `VolantError` naming the step that failed.
 *
 * @example
 * ```ts ignore
 * import { assembleImageRoot } from "./image_root.ts";
 * await assembleImageRoot(system, { lower: "/dev/vdb", upper: "/dev/vdc" }, "/run/volant/image", {
 *   hostname: "web", ip: "192.168.127.2",
 * });
 * ```
 */
export async function assembleImageRoot(
  system: System,
  spec: ImageRoot,
  target: string,
  identity: { hostname: string; ip?: string | undefined },
  options: ImageRootOptions = {},
): Promise<void> {
  const exists = (path: string) => system.exists(path);
  const timeoutMs = options.deviceTimeoutMs ?? 5000;
  const [lower, upper, overlay] = imageRootMounts(spec, target);
  for (const device of [spec.lower, spec.upper]) await waitForDevice(device, timeoutMs, exists);
  await system.mkdirp(lower!.target);
  mountLower(system, lower!, spec.lower_fstype === undefined);
  await system.mkdirp(upper!.target);
  system.mount(upper!);
  await system.mkdirp(`${upper!.target}/data`);
  await system.mkdirp(`${upper!.target}/work`);
  await system.mkdirp(target);
  system.mount(overlay!);
  if (system.dryRun) return;
  try {
    await Deno.mkdir(`${target}/etc`, { recursive: true });
    await Deno.writeTextFile(`${target}/etc/hostname`, `${identity.hostname}\n`);
    const hosts = [
      "127.0.0.1\tlocalhost",
      "::1\tlocalhost ip6-localhost ip6-loopback",
      `${identity.ip ?? "127.0.1.1"}\t${identity.hostname}`,
    ];
    await Deno.writeTextFile(`${target}/etc/hosts`, `${hosts.join("\n")}\n`);
  } catch (err) {
    system.log(`image root: cannot write /etc/hostname and /etc/hosts: ${(err as Error).message}`);
  }
}
