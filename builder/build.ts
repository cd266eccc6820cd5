/**
 * `volar build`'s engine: a build config in, an initramfs appliance and its plugin manifest
 * out. The archive is a deterministic cpio newc (sorted members, uid/gid 0, mtime 0, no host
 * paths) compressed deterministically, so the same inputs give the same sha256. Both outputs
 * are written to temporary files in the output directory and renamed into place at the end;
 * a failed build leaves nothing behind.
 *
 * @module
 */
import { basename, dirname, resolve } from "node:path";
import { writeCpio } from "../kernels/mod.ts";
import { fromZodError, Manifest, type ManifestInput, VolantError } from "../schema/mod.ts";
import { ARCHIVE_EXTENSIONS, compressArchive } from "./compress.ts";
import { type BuildConfig, loadBuildConfig } from "./config.ts";
import { stageAppliance } from "./stage.ts";

/** Options of {@linkcode buildAppliance}. */
export interface BuildOptions {
  /** Path of the build config (`app.toml`). */
  config: string;
  /** Overrides `output.dir` (relative to the working directory). */
  outputDir?: string;
  /** Called with a short label as each step starts. */
  onProgress?: (step: string) => void;
  /** The busybox binary for `source.busybox`; default `/bin/busybox`. */
  busybox?: string;
}

/** What a build produced (`volar build --json` prints it). */
export interface BuildResult {
  /** The plugin's name. */
  name: string;
  /** Absolute path of the archive. */
  archive: string;
  /** Absolute path of the manifest. */
  manifest: string;
  /** Size of the archive in bytes. */
  size: number;
  /** Members in the archive (files, directories and symlinks). */
  files: number;
  /** `sha256:<hex>` of the archive (the manifest's `initramfs.checksum`). */
  sha256: string;
  /** Wall-clock time of the build in milliseconds. */
  ms: number;
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return "sha256:" + Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

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
  config: BuildConfig,
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
  const parsed = Manifest.safeParse(input);
  if (!parsed.success) {
    const err = fromZodError(parsed.error, "manifest");
    throw new VolantError(
      "internal",
      `The manifest built from the config is invalid: ${err.message}`,
      err.details,
    );
  }
  return parsed.data;
}

/** The first ancestor of `dir` (or `dir`) that does not exist yet; `undefined` if it exists. */
async function firstMissing(dir: string): Promise<string | undefined> {
  let missing: string | undefined;
  for (let at = dir;; at = dirname(at)) {
    try {
      await Deno.stat(at);
      return missing;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) return missing;
      missing = at;
      if (dirname(at) === at) return missing;
    }
  }
}

async function removeQuietly(path: string, recursive = false): Promise<void> {
  try {
    await Deno.remove(path, { recursive });
  } catch {
    // already gone, or never written
  }
}

/**
 * Writes `outputs` into `dir` atomically as a set: temporary files (`.<name>.<random>.tmp`)
 * first, then renames; on any failure the temporaries, the renamed files and a directory this
 * call created are removed. Errors name `field`.
 */
async function writeOutputs(
  dir: string,
  outputs: readonly { path: string; data: Uint8Array }[],
  field: string,
  file: string,
): Promise<void> {
  const fail = (message: string, cause?: unknown) =>
    new VolantError("invalid_argument", `${file}: ${field}: ${message}`, { file, field, dir }, {
      cause,
    });
  let created: string | undefined;
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) throw fail(`${dir} exists and is not a directory`);
  } catch (err) {
    if (err instanceof VolantError) throw err;
    if (!(err instanceof Deno.errors.NotFound)) {
      throw fail(`cannot use ${dir}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    created = await firstMissing(dir);
  }
  const suffix = crypto.randomUUID().slice(0, 8);
  const temps = outputs.map((o) => `${dirname(o.path)}/.${basename(o.path)}.${suffix}.tmp`);
  const renamed: string[] = [];
  try {
    if (created !== undefined) await Deno.mkdir(dir, { recursive: true });
    for (const [i, output] of outputs.entries()) {
      await Deno.writeFile(temps[i]!, output.data, { createNew: true, mode: 0o644 });
    }
    for (const [i, output] of outputs.entries()) {
      await Deno.rename(temps[i]!, output.path);
      renamed.push(output.path);
    }
  } catch (err) {
    for (const path of [...temps, ...renamed]) await removeQuietly(path);
    if (created !== undefined) await removeQuietly(created, true);
    const reason = err instanceof Error ? err.message : String(err);
    throw fail(`cannot write the outputs to ${dir}: ${reason}`, err);
  }
}

/**
 * Builds the appliance a config describes and writes `<dir>/<name>.cpio.gz` (or `.cpio.zst`,
 * `.cpio`) and `<dir>/<name>.manifest.json`. Errors are `invalid_argument` naming the config
 * key at fault (and the config file); nothing is written unless everything succeeded.
 *
 * @example
 * ```ts ignore
 * import { buildAppliance } from "./build.ts";
 * const result = await buildAppliance({ config: "app.toml", onProgress: console.error });
 * console.log(result.archive, result.sha256);
 * ```
 */
export async function buildAppliance(options: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  const progress = options.onProgress ?? (() => {});
  const file = options.config;
  progress(`Reading ${file}`);
  const config = await loadBuildConfig(file);
  const baseDir = dirname(resolve(file));
  const outDir = options.outputDir !== undefined
    ? resolve(options.outputDir)
    : resolve(baseDir, config.output.dir);
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
  const checksum = await sha256(packed);
  const manifest = applianceManifest(config, archive, checksum);
  progress(`Writing ${archive}`);
  await writeOutputs(
    outDir,
    [
      { path: archive, data: packed },
      {
        path: manifestPath,
        data: new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n"),
      },
    ],
    options.outputDir !== undefined ? "--output-dir" : "output.dir",
    file,
  );
  return {
    name,
    archive,
    manifest: manifestPath,
    size: packed.length,
    files: staged.entries.length,
    sha256: checksum,
    ms: Math.round(performance.now() - started),
  };
}
