/**
 * `docker save` tarballs as an image source. The archive is extracted (regular files only,
 * names checked) into a temp directory; then docker ≥25's flavour, which is an OCI layout
 * with a `manifest.json` beside it, is read as that layout (keeping the registry's manifest
 * digest), and the legacy flavour (`manifest.json` naming a config file and `layer.tar`s,
 * duplicates as symlinks) gets an OCI manifest written for it, the layers' media types taken
 * from their magic bytes.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { fileCompression, OCI_LAYER_TYPE } from "./decompress.ts";
import { fileDigest, sha256Digest } from "./digest.ts";
import { type Descriptor, type ImageManifest, OCI_CONFIG, OCI_MANIFEST } from "./manifest.ts";
import { CONTAINERD_NAME, type LayoutImage, openOciLayout } from "./oci_layout.ts";
import { parseImageRef } from "./reference.ts";
import { cleanPath } from "./_paths.ts";
import { readTar } from "./tar.ts";

/** An image chosen from a `docker save` archive. */
export interface ArchiveImage extends LayoutImage {
  /** Which flavour the archive is. */
  flavour: "oci" | "legacy";
}

/** Options of {@linkcode openDockerArchive}. */
export interface OpenArchiveOptions {
  /** A `RepoTags` entry (`nginx:1.27`) to choose; needed when the archive holds several images. */
  tag?: string;
}

interface SaveEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

const MAX_LINKS = 16;

/**
 * Extracts the archive at `path` into `workDir` (which must exist and be empty; the caller
 * removes it afterwards) and chooses an image. Errors name the archive: not a tar, no or bad
 * `manifest.json`, a member escaping the archive, a missing file, no image with that tag
 * (`not_found`, listing the tags there are), several images and no tag.
 *
 * @example
 * ```ts ignore
 * import { openDockerArchive } from "./docker_archive.ts";
 * const image = await openDockerArchive("busybox.tar", "/var/lib/volant/images/tmp/x");
 * const { digest } = await image.resolve();
 * ```
 */
export async function openDockerArchive(
  path: string,
  workDir: string,
  options: OpenArchiveOptions = {},
): Promise<ArchiveImage> {
  const where = `docker archive ${path}`;
  const links = await extract(path, workDir, where);
  const resolve = (name: string): string => {
    let rel = cleanPath(name);
    for (let hops = 0; rel !== null && hops <= MAX_LINKS; hops++) {
      const target = links.get(rel.join("/"));
      if (target === undefined) return `${workDir}/${rel.join("/")}`;
      rel = target.startsWith("/")
        ? cleanPath(target)
        : cleanPath(`${rel.slice(0, -1).join("/")}/${target}`);
    }
    throw new VolantError(
      "invalid_argument",
      `${where}: ${name} is not a file inside the archive`,
      { name },
    );
  };
  let entries: SaveEntry[];
  try {
    entries = JSON.parse(await Deno.readTextFile(resolve("manifest.json")));
  } catch (e) {
    throw new VolantError(
      "invalid_argument",
      `${where} is not a docker save archive: manifest.json is missing or not JSON (${
        e instanceof Error ? e.message : e
      })`,
      { path },
    );
  }
  if (
    !Array.isArray(entries) ||
    entries.some((e) => typeof e?.Config !== "string" || !Array.isArray(e.Layers))
  ) {
    throw new VolantError(
      "invalid_argument",
      `${where}: manifest.json is not a list of {Config, RepoTags, Layers}`,
    );
  }
  const tags = entries.flatMap((e) => e.RepoTags ?? []);
  let entry: SaveEntry | undefined;
  if (options.tag !== undefined) {
    const wanted = parseImageRef(options.tag).canonical;
    entry = entries.find((e) =>
      (e.RepoTags ?? []).some((t) => parseImageRef(t).canonical === wanted)
    );
    if (entry === undefined) {
      throw new VolantError(
        "not_found",
        `${where} has no image tagged ${options.tag}; it has ${tags.join(", ") || "no tags"}`,
        { path, tag: options.tag },
      );
    }
  } else if (entries.length === 1) {
    entry = entries[0]!;
  } else {
    throw new VolantError(
      "invalid_argument",
      entries.length === 0
        ? `${where} holds no images`
        : `${where} holds ${entries.length} images (${tags.join(", ")}); choose one with a tag`,
      { path },
    );
  }
  const repoTag = options.tag ?? entry.RepoTags?.[0] ?? null;
  const name = repoTag === null ? null : parseImageRef(repoTag).canonical;
  const layout = await ociFlavour(workDir, name);
  if (layout !== null) {
    return { ...layout, describe: where, name: name ?? layout.name, flavour: "oci" };
  }
  return await legacyFlavour(entry, resolve, where, name);
}

/** The docker ≥25 flavour: an OCI layout whose index names the image (or holds only it). */
async function ociFlavour(dir: string, name: string | null): Promise<LayoutImage | null> {
  try {
    await Deno.stat(`${dir}/oci-layout`);
  } catch {
    return null;
  }
  let manifests: Descriptor[];
  try {
    const text = await Deno.readTextFile(`${dir}/index.json`);
    const index = JSON.parse(text) as { manifests?: Descriptor[] };
    manifests = Array.isArray(index.manifests) ? index.manifests : [];
  } catch {
    return null; // Not a usable layout: read it as the legacy flavour.
  }
  const named = name === null ? undefined : manifests.find((m) => {
    const n = m.annotations?.[CONTAINERD_NAME];
    return n !== undefined && parseImageRef(n).canonical === name;
  });
  if (named !== undefined) {
    return await openOciLayout(dir, { tag: named.annotations![CONTAINERD_NAME]! });
  }
  if (manifests.length === 1) return await openOciLayout(dir);
  return null;
}

/** The legacy flavour: an OCI manifest written for the config file and layer tars. */
async function legacyFlavour(
  entry: SaveEntry,
  resolve: (name: string) => string,
  where: string,
  name: string | null,
): Promise<ArchiveImage> {
  const files = new Map<string, string>();
  const describeFile = async (
    archiveName: string,
    mediaType: (file: string) => Promise<string>,
  ) => {
    const file = resolve(archiveName);
    let info: { digest: string; size: number };
    try {
      info = await fileDigest(file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw new VolantError(
        "invalid_argument",
        `${where}: ${archiveName} named by manifest.json is not in the archive`,
      );
    }
    files.set(info.digest, file);
    return { mediaType: await mediaType(file), digest: info.digest, size: info.size };
  };
  const config = await describeFile(entry.Config, () => Promise.resolve(OCI_CONFIG));
  const layers = [];
  for (const layer of entry.Layers) {
    layers.push(await describeFile(layer, async (f) => OCI_LAYER_TYPE[await fileCompression(f)]));
  }
  const manifest: ImageManifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers };
  const bytes = new TextEncoder().encode(JSON.stringify(manifest));
  const digest = sha256Digest(bytes);
  return {
    describe: where,
    name,
    tag: name === null ? null : parseImageRef(name).tag ?? null,
    flavour: "legacy",
    resolve: () => Promise.resolve({ digest, bytes, manifest }),
    async openBlob(d) {
      const file = files.get(d.digest);
      if (file === undefined) {
        throw new VolantError("not_found", `${where} has no blob ${d.digest}`, {
          digest: d.digest,
        });
      }
      const size = (await Deno.stat(file)).size;
      return { body: (await Deno.open(file)).readable, size };
    },
  };
}

/**
 * Writes the archive's regular files under `dir` and returns its symlinks and hard links
 * (member name → target). Members whose names climb out are refused; other types are ignored.
 */
async function extract(path: string, dir: string, where: string): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new VolantError("not_found", `${path} does not exist`, { path });
    }
    throw e;
  }
  for await (const entry of readTar(file.readable, where)) {
    const rel = cleanPath(entry.path);
    if (rel === null) {
      throw new VolantError(
        "invalid_argument",
        `${where}: member ${JSON.stringify(entry.path)} climbs out of the archive`,
        {
          entry: entry.path,
        },
      );
    }
    if (rel.length === 0) continue;
    const key = rel.join("/");
    if (entry.type === "symlink") links.set(key, entry.linkname);
    else if (entry.type === "hardlink") links.set(key, `/${entry.linkname}`);
    else if (entry.type === "directory") await Deno.mkdir(`${dir}/${key}`, { recursive: true });
    else if (entry.type === "file") {
      // Only directories and regular files are created under dir, so no symlink is on the way.
      await Deno.mkdir(`${dir}/${rel.slice(0, -1).join("/")}`, { recursive: true });
      using out = await Deno.open(`${dir}/${key}`, {
        write: true,
        create: true,
        truncate: true,
        mode: 0o600,
      });
      for await (const piece of entry.body()) {
        let at = 0;
        while (at < piece.length) at += await out.write(piece.subarray(at));
      }
    }
  }
  return links;
}
