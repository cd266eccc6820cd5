/**
 * The plugin builder behind `volar build`: a build config (`app.toml`) in, a plugin artifact
 * and its manifest out. Two strategies: `oci_rootfs` makes a plugin from an OCI image (its
 * reproducible erofs root filesystem, pulled or imported through an image cache), and
 * `initramfs` makes an appliance (a deterministic cpio newc, gzip/zstd/uncompressed) from host
 * files. The appliance holds the mapped files, the loader and libraries of dynamic programs
 * (found by reading their ELF headers), optionally busybox with its applet links, the usual
 * directories and a minimal `/etc`; never `/init`, which is Volant's stage 0 (the daemon boots
 * stage 0 with the appliance appended, and stage 0 hands over according to the manifest's
 * `init.mode`).
 *
 * ```ts ignore
 * import { buildPlugin, writeStarterConfig } from "./mod.ts";
 * await writeStarterConfig("app.toml");
 * const result = await buildPlugin({ config: "app.toml", onProgress: console.error });
 * console.log(result.archive, result.manifest, result.sha256);
 * ```
 *
 * @module
 */
export {
  applianceManifest,
  type BuildOptions,
  buildPlugin,
  type BuildResult,
  type BuildResultBase,
  type InitramfsBuildResult,
  type OciRootfsBuildResult,
} from "./build.ts";
export {
  type BuildConfig,
  type BuildConfigInput,
  configError,
  formatKeyPath,
  InitramfsConfig,
  loadBuildConfig,
  OutputSection,
  parseBuildConfig,
  PluginSection,
  ResourcesSection,
  SourceSection,
} from "./config.ts";
export { ARCHIVE_EXTENSIONS, compressArchive, type Compression, ZSTD_LEVEL } from "./compress.ts";
export { type ElfInfo, EM_X86_64, inspectElf, isElf } from "./elf.ts";
export { LIBRARY_DIRS } from "./libraries.ts";
export {
  buildOciRootfs,
  defaultImageCache,
  IMAGE_CACHE_ENV,
  type ImageForPlugin,
  type OciBuildContext,
  ociManifest,
  ROOTFS_EXTENSION,
} from "./oci_build.ts";
export {
  type KeyIssue,
  OCI_SOURCE_KINDS,
  type OciRootfsConfig,
  OciRootfsConfigSchema,
  type OciSource,
  ociSource,
  ociSourceIssues,
  OciSourceSection,
  OciWorkloadSection,
} from "./oci_config.ts";
export { DEFAULT_RESOURCES, PluginVersion, STRATEGIES, type Strategy } from "./sections.ts";
export {
  APPLIANCE_DIRS,
  HOST_BUSYBOX,
  stageAppliance,
  type StagedAppliance,
  type StageOptions,
  WORKLOAD_UID,
} from "./stage.ts";
export {
  OCI_STARTER_CONFIG,
  STARTER_CONFIG,
  STARTER_CONFIGS,
  writeStarterConfig,
} from "./starter.ts";
