/**
 * The `oci_rootfs` strategy of `volar build`: an OCI image (pulled from a registry, or
 * imported from an OCI layout or a `docker save` archive) becomes a reusable plugin: its
 * read-only erofs root filesystem (`<name>.rootfs.erofs`) and a manifest that runs the image's
 * process as `docker run` would (`imageManifest`), with the config's overrides. Images go
 * through an {@linkcode ImageStore} in a cache directory, so a rebuild downloads nothing new;
 * the rootfs is reproducible, so the same image gives the same sha256 on any machine.
 *
 * @module
 */
import { resolve } from "node:path";
import { type BlobProgress, fileDigest, type ImageRecord, ImageStore } from "../images/mod.ts";
import { imageManifest, type ImageProcess, type Manifest, VolantError } from "../schema/mod.ts";
import type { OciRootfsBuildResult } from "./build.ts";
import { type OciRootfsConfig, ociSource } from "./oci_config.ts";
import { validManifest } from "./_manifest.ts";
import { bytesOutput, writeOutputs } from "./_output.ts";

/** The environment variable naming the image cache directory. */
export const IMAGE_CACHE_ENV = "VOLANT_IMAGE_CACHE";

/** The file name suffix of the rootfs artifact (`<name>.rootfs.erofs`). */
export const ROOTFS_EXTENSION = ".rootfs.erofs";

/**
 * Where `oci_rootfs` builds keep images: `$VOLANT_IMAGE_CACHE`, else
 * `$XDG_CACHE_HOME/volant/images`, else `~/.cache/volant/images`. `env` reads a variable
 * (default: the process environment).
 *
 * @example
 * ```ts
 * import { defaultImageCache } from "./oci_build.ts";
 * const env: Record<string, string> = { HOME: "/home/ada" };
 * console.assert(defaultImageCache((k) => env[k]) === "/home/ada/.cache/volant/images");
 * env.XDG_CACHE_HOME = "/var/cache/ada";
 * console.assert(defaultImageCache((k) => env[k]) === "/var/cache/ada/volant/images");
 * ```
 */
export function defaultImageCache(
  env: (key: string) => string | undefined = (key) => Deno.env.get(key),
): string {
  const explicit = env(IMAGE_CACHE_ENV);
  if (explicit) return resolve(explicit);
  const xdg = env("XDG_CACHE_HOME");
  // The XDG spec says to ignore a relative XDG_CACHE_HOME.
  if (xdg?.startsWith("/")) return `${xdg}/volant/images`;
  const home = env("HOME");
  if (home) return `${home}/.cache/volant/images`;
  throw new VolantError(
    "invalid_argument",
    `No directory for the image cache: set ${IMAGE_CACHE_ENV} (or HOME), or pass --image-cache <dir>`,
    { field: "image_cache" },
  );
}

/** The image fields the manifest is made from. */
export interface ImageForPlugin {
  /** The reference it is stored under. */
  ref: string;
  /** Its manifest digest. */
  digest: string;
  /** Its process (Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts). */
  config: ImageProcess;
}

function rewrap(err: VolantError, file: string, field: string, message = err.message) {
  return new VolantError(
    err.code,
    `${file}: ${field}: ${message}`,
    { ...err.details, file, field },
    { cause: err },
  );
}

/**
 * The manifest of a plugin made from `image`: `imageManifest` (the image's process with the
 * `[workload]` overrides, the TCP health check on its first exposed port, the rootfs artifact)
 * and then the rest of the config: `[plugin]` name, version and description (each defaulting
 * to the image's), `workload.base_url`/`workdir`/`user`, `[health_check]` (replacing the image's
 * TCP check), `[actions]`, `[restart]` and `[labels]` (the `volant.image*` labels stay the
 * image's). Errors name the config key (`file` names the config).
 *
 * @example
 * ```ts ignore
 * import { ociManifest } from "./oci_build.ts";
 * const m = ociManifest(record, config, { path: "/srv/web.rootfs.erofs", checksum }, "app.toml");
 * ```
 */
export function ociManifest(
  image: ImageForPlugin,
  config: OciRootfsConfig,
  rootfs: { path: string; checksum: string },
  file: string,
): Manifest {
  const { workload } = config;
  let base: Manifest;
  try {
    base = imageManifest(
      { ref: image.ref, digest: image.digest, config: image.config, rootfs },
      {
        env: workload.env,
        entrypoint: workload.entrypoint ?? null,
        cmd: workload.cmd ?? null,
      },
      config.resources,
    );
  } catch (err) {
    if (!(err instanceof VolantError)) throw err;
    if (err.details?.field === "entrypoint") {
      throw rewrap(
        err,
        file,
        "workload.entrypoint",
        `image ${image.ref} has no Entrypoint and no Cmd: set workload.entrypoint (or ` +
          "workload.cmd) to the program to run",
      );
    }
    if (err.details?.field === "user" && workload.user === undefined) {
      throw rewrap(err, file, "workload.user", `${err.message}: set workload.user`);
    }
    throw err;
  }
  return validManifest({
    ...base,
    name: config.plugin.name ?? base.name,
    version: config.plugin.version ?? base.version,
    description: config.plugin.description ?? base.description,
    workload: {
      ...base.workload,
      ...(workload.base_url === undefined ? {} : { base_url: workload.base_url }),
      ...(workload.workdir === undefined ? {} : { workdir: workload.workdir }),
      ...(workload.user === undefined ? {} : { user: workload.user }),
    },
    health_check: config.health_check ?? base.health_check,
    actions: config.actions,
    restart: config.restart ?? base.restart,
    labels: { ...config.labels, ...base.labels },
  });
}

function size(bytes: number): string {
  return bytes < 1024 * 1024
    ? `${(bytes / 1024).toFixed(1)} KiB`
    : `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * Turns per-layer blob events into progress steps: one when a layer starts (or is found in the
 * cache), and "unpacking" once every layer seen is in and no new one started for a moment.
 */
function layerSteps(progress: (step: string) => void, verb: string) {
  const layers = new Map<string, boolean>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const onProgress = (event: BlobProgress) => {
    stop();
    const short = event.digest.slice(0, 19);
    if (!layers.has(event.digest)) {
      progress(
        event.cached
          ? `Layer ${short} is in the cache`
          : `${verb} layer ${short}${event.total === null ? "" : ` (${size(event.total)})`}`,
      );
    }
    layers.set(event.digest, event.cached === true || event.done === event.total);
    if ([...layers.values()].every(Boolean)) {
      timer = setTimeout(() => {
        timer = undefined;
        progress("Unpacking the layers and building the erofs root filesystem");
      }, 250);
    }
  };
  return { onProgress, stop };
}

/** The inode count in an erofs image's superblock (at 1024: `inos`, a u64 at +16). */
async function erofsInodes(path: string): Promise<number> {
  using f = await Deno.open(path);
  const head = new Uint8Array(1024 + 24);
  let at = 0;
  while (at < head.length) {
    const n = await f.read(head.subarray(at));
    if (n === null) break;
    at += n;
  }
  const view = new DataView(head.buffer);
  if (at < head.length || view.getUint32(1024, true) !== 0xe0f5e1e2) {
    throw new VolantError("internal", `${path} is not an erofs image (no superblock)`, { path });
  }
  return Number(view.getBigUint64(1024 + 16, true));
}

/** Where {@linkcode buildOciRootfs} works. */
export interface OciBuildContext {
  /** The config file (named in errors). */
  file: string;
  /** The directory config paths are relative to. */
  baseDir: string;
  /** The output directory (absolute). */
  outDir: string;
  /** The key or flag that chose `outDir` (named in errors). */
  field: string;
  /** The image store directory. */
  imageCache: string;
  /** Called with a short label as each step starts. */
  onProgress: (step: string) => void;
}

async function fetchImage(
  store: ImageStore,
  config: OciRootfsConfig,
  ctx: OciBuildContext,
): Promise<ImageRecord> {
  const source = ociSource(config.source);
  const progress = ctx.onProgress;
  const steps = layerSteps(progress, source.kind === "image" ? "Downloading" : "Copying");
  try {
    if (source.kind === "image") {
      progress(`Pulling ${source.ref}${source.insecure ? " (plain HTTP)" : ""}`);
      return await store.pull(source.ref, {
        insecure: source.insecure,
        onProgress: steps.onProgress,
      });
    }
    const path = resolve(ctx.baseDir, source.path);
    const options = {
      onProgress: steps.onProgress,
      ...(source.tag === undefined ? {} : { tag: source.tag }),
    };
    progress(`Importing ${path}${source.tag === undefined ? "" : ` (tag ${source.tag})`}`);
    return source.kind === "oci_layout"
      ? await store.importLayout(path, options)
      : await store.importDockerArchive(path, options);
  } catch (err) {
    if (!(err instanceof VolantError)) throw err;
    const hint = source.kind === "image" && !source.insecure &&
        err.code === "artifact_unavailable"
      ? "; if the registry serves plain HTTP, set insecure_registry = true under [source]"
      : "";
    throw rewrap(err, ctx.file, source.field, err.message + hint);
  } finally {
    steps.stop();
  }
}

/**
 * Builds an `oci_rootfs` plugin: fetches the image into the cache (`ctx.imageCache`), then
 * writes `<outDir>/<name>.rootfs.erofs` (a copy of the image's rootfs) and
 * `<outDir>/<name>.manifest.json` whose `rootfs` names that file by absolute path and sha256.
 * Errors name the config key at fault; nothing is written unless everything succeeded.
 *
 * @example
 * ```ts ignore
 * import { buildOciRootfs } from "./oci_build.ts";
 * const r = await buildOciRootfs(config, {
 *   file: "web.toml", baseDir: ".", outDir: "/srv/out", field: "output.dir",
 *   imageCache: "/var/cache/volant/images", onProgress: console.error,
 * });
 * ```
 */
export async function buildOciRootfs(
  config: OciRootfsConfig,
  ctx: OciBuildContext,
): Promise<Omit<OciRootfsBuildResult, "ms">> {
  const store = new ImageStore(ctx.imageCache);
  const image = await fetchImage(store, config, ctx);
  // The name (needed for the file names) without the checksum, which needs the file.
  const draft = ociManifest(image, config, {
    path: image.rootfs.path,
    checksum: `sha256:${"0".repeat(64)}`,
  }, ctx.file);
  const name = draft.name;
  const rootfsPath = `${ctx.outDir}/${name}${ROOTFS_EXTENSION}`;
  const manifestPath = `${ctx.outDir}/${name}.manifest.json`;
  let written: { digest: string; size: number } | undefined;
  let manifest: Manifest | undefined;
  ctx.onProgress(`Copying the root filesystem (${size(image.rootfs.size_bytes)}) to ${rootfsPath}`);
  await writeOutputs(
    ctx.outDir,
    [
      {
        path: rootfsPath,
        write: async (temp) => {
          await Deno.copyFile(image.rootfs.path, temp);
          await Deno.chmod(temp, 0o644);
          written = await fileDigest(temp);
          manifest = ociManifest(image, config, {
            path: rootfsPath,
            checksum: written.digest,
          }, ctx.file);
        },
      },
      {
        path: manifestPath,
        write: (temp) =>
          bytesOutput(
            manifestPath,
            new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n"),
          ).write(temp),
      },
    ],
    ctx.field,
    ctx.file,
  );
  return {
    strategy: "oci_rootfs",
    name,
    archive: rootfsPath,
    manifest: manifestPath,
    size: written!.size,
    files: await erofsInodes(rootfsPath),
    sha256: written!.digest,
    image: { ref: image.ref, digest: image.digest, layers: image.layers.length },
    cache: ctx.imageCache,
  };
}
