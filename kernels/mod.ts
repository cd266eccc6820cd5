/**
 * Guest kernel and images: fetch Debian's cloud kernel, extract its ELF vmlinux, build the
 * stage-0 initramfs and the shared read-only runtime image, and record them in `guest.json`.
 *
 * ```ts ignore
 * import { buildGuest } from "./mod.ts";
 * const manifest = await buildGuest({ dir: "/var/lib/volant/guest", bundle: "dist/kestrel.js" });
 * console.log(manifest.build.rebuilt);
 * ```
 *
 * @module
 */
export { bootArchive, type BootEnv, bootEnvText, writeBootInitramfs } from "./boot_archive.ts";
export { type CpioEntry, type CpioMember, type CpioOptions, readCpio, writeCpio } from "./cpio.ts";
export { fetchDebianKernel, type KernelInfo, readKernelInfo } from "./debian_kernel.ts";
export {
  buildGuest,
  type BuildGuestOptions,
  GUEST_FILES,
  type GuestFile,
  type GuestManifest,
  readGuestManifest,
} from "./guest.ts";
export {
  buildInitramfs,
  INIT_SCRIPT_VERSION,
  initramfsEntries,
  type InitramfsModule,
  type InitramfsOptions,
  initScript,
  type InitScriptOptions,
  KESTREL_COMMAND,
  STAGE0_APPLETS,
  STAGE0_ERROR_MARKER,
} from "./initramfs.ts";
export {
  moduleLoadOrder,
  moduleName,
  type ModulesDep,
  type ModuleToLoad,
  parseModulesDep,
  readModulesDep,
  STAGE0_MODULES,
  type WantedModule,
} from "./modules.ts";
export {
  buildRuntimeImage,
  busyboxApplets,
  kestrelLauncher,
  RUNTIME_EMPTY_DIRS,
  RUNTIME_LAYOUT_VERSION,
  type RuntimeImageOptions,
  type RuntimeInputs,
  sharedLibraries,
  stageRuntime,
  uuidFromDigest,
} from "./runtime_image.ts";
export {
  type BzImagePayload,
  decodeLz4Legacy,
  extractVmlinux,
  findBzImagePayload,
  inspectVmlinux,
  type VmlinuxInfo,
} from "./vmlinux.ts";
