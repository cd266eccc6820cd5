/**
 * `volar build`'s engine: a build config in, a plugin artifact and its manifest out. The
 * `initramfs` strategy packs mapped files into a deterministic cpio newc (sorted members,
 * uid/gid 0, mtime 0, no host paths) compressed deterministically; the `oci_rootfs` strategy
 * (`oci_build.ts`) takes an OCI image's reproducible erofs root filesystem. Either way the same
 * inputs give the same sha256, and the outputs are written to temporary files in the output
 * directory and renamed into place at the end: a failed build leaves nothing behind.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { writeCpio } from "../kernels/mod.ts";
import type { Manifest, ManifestInput } from "../schema/mod.ts";
import { ARCHIVE_EXTENSIONS, compressArchive } from "./compress.ts";
import { type InitramfsConfig, loadBuildConfig } from "./config.ts";
import { buildOciRootfs, defaultImageCache } from "./oci_build.ts";
import { stageAppliance } from "./stage.ts";
import { validManifest } from "./_manifest.ts";
import { bytesOutput, sha256, writeOutputs } from "./_output.ts";

/** Options of {@linkcode buildPlugin}. */
export interface BuildOptions {
  /** Path of the build config (`app.toml`). */
  config: string;
  /** Overrides `output.dir` (relative to the working directory). */
  outputDir?: string;
  /** Called with a short label as each step starts. */
  onProgress?: (step: string) => void;
  /** The busybox binary for `source.busybox` (`initramfs`); default `/bin/busybox`. */
  busybox?: string;
  /**
   * The image cache of `oci_rootfs` builds (an image store: blobs, rootfs images, index);
   * default {@linkcode defaultImageCache} of `env`.
   */
  imageCache?: string;
  /** Reads an environment variable (for the default image cache); default the process's. */
  env?: (key: string) => string | undefined;
}

/** What every build produced (`volar build --json` prints it). */
export interface BuildResultBase {
  /** The plugin's name. */
  name: string;
  /** Absolute path of the artifact: the archive (`initramfs`) or the rootfs (`oci_rootfs`). */
  archive: string;
  /** Absolute path of the manifest. */
  manifest: string;
  /** Size of the artifact in bytes. */
  size: number;
  /** Files, directories and symlinks in the artifact (archive members, rootfs inodes). */
  files: number;
  /** `sha256:<hex>` of the artifact (the manifest's `initramfs` or `rootfs` checksum). */
  sha256: string;
  /** Wall-clock time of the build in milliseconds. */
  ms: number;
}

/** What an `initramfs` build produced. */
export interface InitramfsBuildResult extends BuildResultBase {
  /** The strategy. */
  strategy: "initramfs";
}

/** What an `oci_rootfs` build produced. */
export interface OciRootfsBuildResult extends BuildResultBase {
  /** The strategy. */
  strategy: "oci_rootfs";
  /** The image it was made from: its reference, manifest digest and number of layers. */
  image: { ref: string; digest: string; layers: number };
  /** The image cache used. */
  cache: string;
}

/** What a build produced. */
export type BuildResult = InitramfsBuildResult | OciRootfsBuildResult;

/**
 * The manifest for an appliance: the config's plugin, resources, workload, init, restart,
 * actions, health check and labels, with `initramfs` pointing at the archive. Parsed with the
 * manifest schema (defaults applied) before it is returned.
 *
 * @example
 * ```ts ignore
 * import { applianceManifest } from "./build.ts";
 * const manifest = applianceManifest(config, "/srv/hello.cpio.gz", "sha256:…");
 * ```
 */
export function applianceManifest(
  config: InitramfsConfig,
  archive: string,
  checksum: string,
): Manifest {
  const input: ManifestInput = {
    schema_version: "1",
    name: config.plugin.name,
    version: config.plugin.version,
    description: config.plugin.description,
    initramfs: { url: archive, checksum },
    resources: config.resources,
    workload: config.workload,
    init: config.init,
    restart: config.restart,
    actions: config.actions,
    health_check: config.health_check,
    labels: config.labels,
  };
  return validManifest(input);
}

/**
 * Builds the plugin a config describes (either strategy) and writes its artifact and
 * `<dir>/<name>.manifest.json`. Errors are VolantErrors naming the config key at fault (and
 * the config file); nothing is written unless everything succeeded.
 *
 * @example
 * ```ts ignore
 * import { buildPlugin } from "./build.ts";
 * const result = await buildPlugin({ config: "app.toml", onProgress: console.error });
 * console.log(result.strategy, result.archive, result.sha256);
 * ```
 */
export async function buildPlugin(options: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  const progress = options.onProgress ?? (() => {});
  const file = options.config;
  progress(`Reading ${file}`);
  const config = await loadBuildConfig(file);
  const baseDir = dirname(resolve(file));
  const outDir = options.outputDir !== undefined
    ? resolve(options.outputDir)
    : resolve(baseDir, config.output.dir);
  const field = options.outputDir !== undefined ? "--output-dir" : "output.dir";
  if (config.strategy === "oci_rootfs") {
    const built = await buildOciRootfs(config, {
      file,
      baseDir,
      outDir,
      field,
      imageCache: options.imageCache ?? defaultImageCache(options.env),
      onProgress: progress,
    });
    return { ...built, ms: Math.round(performance.now() - started) };
  }
  const name = config.plugin.name;
  const archive = `${outDir}/${name}${ARCHIVE_EXTENSIONS[config.output.compression]}`;
  const manifestPath = `${outDir}/${name}.manifest.json`;

  const staged = await stageAppliance({
    config,
    file,
    baseDir,
    exclude: [archive, manifestPath],
    busybox: options.busybox,
    onProgress: progress,
  });
  progress(`Writing the cpio archive (${staged.entries.length} members)`);
  const cpio = writeCpio(staged.entries);
  progress(
    config.output.compression === "none"
      ? "Hashing the archive"
      : `Compressing the archive (${config.output.compression})`,
  );
  const packed = await compressArchive(cpio, config.output.compression);
  const checksum = sha256(packed);
  const manifest = applianceManifest(config, archive, checksum);
  progress(`Writing ${archive}`);
  await writeOutputs(
    outDir,
    [
      bytesOutput(archive, packed),
      bytesOutput(
        manifestPath,
        new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n"),
      ),
    ],
    field,
    file,
  );
  return {
    strategy: "initramfs",
    name,
    archive,
    manifest: manifestPath,
    size: packed.length,
    files: staged.entries.length,
    sha256: checksum,
    ms: Math.round(performance.now() - started),
  };
}
