/**
 * The plugin builder behind `volar build`: a build config (`app.toml`) in, an initramfs
 * appliance (a deterministic cpio newc, gzip/zstd/uncompressed) and its plugin manifest out.
 * The appliance holds the mapped files, the loader and libraries of dynamic programs (found by
 * reading their ELF headers), optionally busybox with its applet links, the usual directories
 * and a minimal `/etc`; never `/init`, which is Volant's stage 0 (the daemon boots stage 0 with
 * the appliance appended, and stage 0 hands over according to the manifest's `init.mode`).
 *
 * ```ts ignore
 * import { buildAppliance, writeStarterConfig } from "./mod.ts";
 * await writeStarterConfig("app.toml");
 * const result = await buildAppliance({ config: "app.toml", onProgress: console.error });
 * console.log(result.archive, result.manifest, result.sha256);
 * ```
 *
 * @module
 */
export { applianceManifest, buildAppliance, type BuildOptions, type BuildResult } from "./build.ts";
export {
  BuildConfig,
  type BuildConfigInput,
  configError,
  formatKeyPath,
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
  APPLIANCE_DIRS,
  HOST_BUSYBOX,
  stageAppliance,
  type StagedAppliance,
  type StageOptions,
  WORKLOAD_UID,
} from "./stage.ts";
export { STARTER_CONFIG, writeStarterConfig } from "./starter.ts";
