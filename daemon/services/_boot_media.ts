/**
 * A VM's initramfs: the shared stage-0 archive, then the plugin's archive (its payload merges
 * into the guest's root), then a small per-VM archive with the boot config
 * (`/volant/boot.json` for kestrel, `/volant/boot.env` for stage 0). The kernel unpacks
 * concatenated archives in order, later files winning, so the daemon's config cannot be
 * overridden by a plugin, and nothing travels on the kernel command line (no size limit).
 *
 * @module
 */
import {
  type AgentAccess,
  type BootConfig,
  earlyWorkloadFor,
  type Manifest,
  VolantError,
} from "../../schema/mod.ts";
import type { DiskSpec } from "../../hypervisor/driver.ts";
import { createOverlay } from "../artifacts/mod.ts";
import type { GuestImage } from "../guest.ts";
import type { PluginBootFiles } from "./plugins.ts";
import type { VmRuntime } from "./_runtime.ts";
import type { GuestNic } from "./_network.ts";
import { bootConfigFor, type BootExtras, type VmPaths } from "./spec.ts";
import { type BootEnv, writeBootInitramfs } from "../../kernels/boot_archive.ts";
import { createWritableDisk } from "../../images/mod.ts";
import { checkOverlay } from "../../hypervisor/disk_image.ts";

/** Size of an image VM's writable disk (sparse: it occupies what the guest writes). */
export const WRITABLE_DISK_MIB = 1024;

/** Where kestrel assembles an image VM's root (overlay of the image and the writable disk). */
export const IMAGE_ROOT_DIR = "/run/volant/image";

/** What an image VM boots: the manifest made from the image, and its shared root filesystem. */
export interface ImageBootFiles {
  manifest: Manifest;
  /** The image's read-only erofs root filesystem (shared by every VM of the image). */
  rootfs: string;
}

/** A plugin's verified files for one boot; `invalid_state` when the daemon has no registry. */
export async function pluginFiles(rt: VmRuntime, plugin: string): Promise<PluginBootFiles> {
  if (!rt.plugins) {
    throw new VolantError("invalid_state", `plugin ${plugin}: this daemon has no plugin registry`);
  }
  return await rt.plugins.bootFiles(plugin);
}

/**
 * What stage 0 runs. Under kestrel, a workload stage 0 can start exactly as kestrel would
 * (`earlyWorkloadFor`) starts right after the network, before Deno; kestrel adopts it.
 */
function stageZeroEnv(manifest: Manifest | undefined, image: boolean): BootEnv {
  const mode = manifest?.init.mode ?? "kestrel";
  if (mode === "custom") return { init: mode, exec: [manifest!.init.path!] };
  if (mode === "none") return { init: mode, exec: manifest!.workload.entrypoint };
  const early = manifest === undefined ? undefined : earlyWorkloadFor(manifest, { image });
  return { init: "kestrel", ...(early ? { early } : {}) };
}

/**
 * Writes the VM's initramfs (with `agent`, kestrel's port and the VM's secret, and
 * `controlDevice`, the control channel's guest device, in its boot config) and prepares its disks. A root filesystem (an image's, or a plugin's
 * rootfs artifact) is attached read-only straight from its cache, with the VM's own sparse ext4
 * disk for the writes (created once, kept across restarts); extra read-only disks come straight
 * from the cache, writable ones as qcow2 overlays on it. Nothing is copied.
 */
export async function prepareBootMedia(
  paths: VmPaths,
  image: GuestImage,
  name: string,
  nic: GuestNic | undefined,
  plugin: PluginBootFiles | undefined,
  fromImage?: ImageBootFiles,
  agent?: AgentAccess,
  controlDevice?: string,
): Promise<BootExtras> {
  const manifest = fromImage?.manifest ?? plugin?.manifest;
  const env = stageZeroEnv(manifest, fromImage !== undefined);
  // A root filesystem (an image's, or a plugin's rootfs artifact) becomes the workload's root:
  // read-only on /dev/vdb, the VM's own writable disk on /dev/vdc, overlayfs in kestrel.
  const lower = fromImage
    ? { path: fromImage.rootfs, format: "raw" as const, fstype: "erofs" }
    : manifest?.rootfs && plugin
    ? { path: plugin.paths.get("rootfs")!, format: manifest.rootfs.format, fstype: undefined }
    : undefined;
  if (lower && env.init !== "kestrel") {
    throw new VolantError(
      "invalid_argument",
      `plugin ${manifest!.name}: a rootfs needs init.mode kestrel (it assembles the root); ` +
        `init.mode ${env.init} runs from the initramfs only`,
      { plugin: manifest!.name },
    );
  }
  const config: BootConfig = {
    ...bootConfigFor(name, nic, manifest),
    // kestrel's port and secret: in this archive only (never on the command line), and only
    // for kestrel (a custom init or a `none` workload as PID 1 has no use for them).
    ...(agent && env.init === "kestrel" ? { agent } : {}),
    // The control channel's guest device, when the VMM wires one (a clone's new identity).
    ...(controlDevice && env.init === "kestrel" ? { control_device: controlDevice } : {}),
    ...(lower
      ? {
        image_root: {
          lower: "/dev/vdb",
          ...(lower.fstype ? { lower_fstype: lower.fstype } : {}),
          upper: "/dev/vdc",
        },
        workload_root: IMAGE_ROOT_DIR,
      }
      : {}),
  };
  await writeBootInitramfs(paths.initramfs, {
    shared: image.initramfs,
    plugin: plugin?.paths.get("initramfs"),
    config,
    env,
  });
  const disks: DiskSpec[] = [];
  if (lower) {
    disks.push(
      { id: "image", path: lower.path, readOnly: true, format: lower.format },
      { id: "writable", path: await writableDisk(paths), readOnly: false, format: "raw" },
    );
  }
  if (manifest && plugin) {
    for (const d of manifest.disks) {
      const base = plugin.paths.get(`disk:${d.name}`)!;
      disks.push(
        d.readonly ? { id: `disk_${d.name}`, path: base, readOnly: true, format: d.format } : {
          id: `disk_${d.name}`,
          path: await overlay(paths, `disk_${d.name}`, base, d.format),
          readOnly: false,
          format: "qcow2",
        },
      );
    }
  }
  return { initramfs: paths.initramfs, runtimeDisk: env.init === "kestrel", disks };
}

/** A writable disk as a qcow2 overlay on its cached base (created once, kept across restarts). */
async function overlay(
  paths: VmPaths,
  id: string,
  base: string,
  format: "raw" | "qcow2",
): Promise<string> {
  const path = `${paths.diskDir}/${id}.qcow2`;
  await Deno.mkdir(paths.diskDir, { recursive: true });
  const exists = await Deno.stat(path).then(() => true, () => false);
  if (!exists) await createOverlay(base, path, format);
  // Before every boot: the overlay still backs onto the cached blob and nothing else.
  await checkOverlay(path, base);
  return path;
}

/** The VM's sparse ext4 disk for the root's upper layer (created once, kept across restarts). */
async function writableDisk(paths: VmPaths): Promise<string> {
  const writable = `${paths.diskDir}/writable.ext4`;
  await Deno.mkdir(paths.diskDir, { recursive: true });
  if (!(await Deno.stat(writable).then(() => true, () => false))) {
    await createWritableDisk(writable, WRITABLE_DISK_MIB);
  }
  return writable;
}
