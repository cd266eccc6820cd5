/**
 * Guest kernel and images: build Volant's own kernel (tinyconfig + a fragment, everything built
 * in) or fetch Debian's cloud kernel and extract its ELF vmlinux, build the stage-0 initramfs
 * and the shared read-only runtime image, and record them in `guest.json`.
 *
 * ```ts ignore
 * import { buildGuest } from "./mod.ts";
 * const manifest = await buildGuest({ dir: "/var/lib/volant/guest", bundle: "dist/kestrel.js" });
 * console.log(manifest.kernel.flavor, manifest.build.rebuilt);
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
  GUEST_KERNELS,
  type GuestFile,
  type GuestKernel,
  type GuestKernelRecord,
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
export {
  assertVolantConfig,
  type ConfigProblem,
  configProblems,
  parseKconfig,
  REQUIRED_OPTIONS,
  type RequiredOption,
  VOLANT_CONFIG_FRAGMENT,
} from "./volant_config.ts";
export {
  buildVolantKernel,
  type BuildVolantKernelOptions,
  readVolantKernel,
  resolveVolantConfig,
  type ResolveVolantConfigOptions,
  VOLANT_KERNEL_BUILD_ENV,
  VOLANT_KERNEL_RECIPE,
  VOLANT_KERNEL_SOURCE,
  type VolantKernel,
  volantKernelKey,
  type VolantKernelKeyInputs,
  type VolantKernelResult,
} from "./volant_kernel.ts";
