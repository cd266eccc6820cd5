/**
 * OCI image layout directories (`oci-layout`, `index.json`, `blobs/sha256/…`) as an image
 * source: an image is chosen by its tag (`org.opencontainers.image.ref.name`, or the tag of an
 * `io.containerd.image.name`) or is the layout's only one; an index entry is narrowed to
 * linux/amd64.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { digestHex, sha256Digest } from "./digest.ts";
import { type Descriptor, ImageIndex } from "./manifest.ts";
import { type ImageSource, resolvePlatform } from "./_source.ts";

/** The OCI annotation naming an index entry (a tag, or a full reference). */
export const REF_NAME = "org.opencontainers.image.ref.name";
/** containerd's (and docker ≥25's) annotation with the full reference. */
export const CONTAINERD_NAME = "io.containerd.image.name";

/** An image chosen from a layout. */
export interface LayoutImage extends ImageSource {
  /** The full reference the layout gives it (containerd annotation, or a ref.name that is one). */
  name: string | null;
  /** The tag it was chosen by or carries (`ref.name` when that is a plain tag). */
  tag: string | null;
}

/** Options of {@linkcode openOciLayout}. */
export interface OpenLayoutOptions {
  /** The tag (or full reference) to choose; needed when the layout holds several images. */
  tag?: string;
}

function names(d: Descriptor): string[] {
  const a = d.annotations ?? {};
  return [a[REF_NAME], a[CONTAINERD_NAME]].filter((n): n is string => n !== undefined && n !== "");
}

function matches(d: Descriptor, tag: string): boolean {
  return names(d).some((n) => n === tag || n.endsWith(`:${tag}`));
}

/**
 * Opens the layout at `dir` and chooses an image. Errors (`invalid_argument` unless noted)
 * name the directory: not a layout, unsupported layout version, bad `index.json`, no image
 * with that tag (`not_found`, listing the tags there are), several images and no tag.
 *
 * @example
 * ```ts ignore
 * import { openOciLayout } from "./oci_layout.ts";
 * const image = await openOciLayout("./nginx-oci", { tag: "1.27" });
 * const { digest } = await image.resolve();
 * ```
 */
export async function openOciLayout(
  dir: string,
  options: OpenLayoutOptions = {},
): Promise<LayoutImage> {
  const where = `OCI layout ${dir}`;
  let layout: { imageLayoutVersion?: unknown };
  try {
    layout = JSON.parse(await Deno.readTextFile(`${dir}/oci-layout`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new VolantError(
        "invalid_argument",
        `${dir} is not an OCI image layout: it has no oci-layout file`,
        {
          path: dir,
        },
      );
    }
    throw new VolantError("invalid_argument", `${where}: oci-layout is not valid JSON`, {
      path: dir,
    });
  }
  if (layout.imageLayoutVersion !== "1.0.0") {
    throw new VolantError(
      "invalid_argument",
      `${where} has imageLayoutVersion ${
        JSON.stringify(layout.imageLayoutVersion)
      }; only 1.0.0 is supported`,
      { path: dir },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
  } catch (e) {
    throw new VolantError(
      "invalid_argument",
      `${where}: index.json is missing or not JSON (${e instanceof Error ? e.message : e})`,
      { path: dir },
    );
  }
  const parsed = ImageIndex.safeParse(json);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new VolantError(
      "invalid_argument",
      `${where}: index.json is not an image index: ${why}`,
      { path: dir },
    );
  }
  const entries = parsed.data.manifests;
  const listed = entries.map((d) => names(d)[0] ?? `(untagged ${d.digest})`).join(", ");
  let chosen: Descriptor | undefined;
  if (options.tag !== undefined) {
    chosen = entries.find((d) => matches(d, options.tag!));
    if (chosen === undefined) {
      throw new VolantError(
        "not_found",
        `${where} has no image tagged ${options.tag}; it has ${listed || "no images"}`,
        { path: dir, tag: options.tag },
      );
    }
  } else if (entries.length === 1) {
    chosen = entries[0]!;
  } else {
    throw new VolantError(
      "invalid_argument",
      entries.length === 0
        ? `${where} holds no images`
        : `${where} holds ${entries.length} images (${listed}); choose one with a tag`,
      { path: dir },
    );
  }
  const entry = chosen;
  const annotations = entry.annotations ?? {};
  const refName = annotations[REF_NAME] ?? null;
  const fullName = annotations[CONTAINERD_NAME] ?? (refName?.includes("/") ? refName : null);
  const tag = options.tag ?? (refName !== null && !refName.includes("/") ? refName : null);
  const describe = `${where}${tag === null ? "" : ` (${tag})`}`;
  const blobPath = (d: Descriptor) => `${dir}/blobs/sha256/${digestHex(d.digest)}`;
  const readManifest = async (d: Descriptor) => {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(blobPath(d));
    } catch (e) {
      throw missing(describe, d, e);
    }
    const digest = sha256Digest(bytes);
    if (digest !== d.digest) {
      throw new VolantError(
        "checksum_mismatch",
        `${describe}: blob ${d.digest} has digest ${digest}`,
        {
          expected: d.digest,
          actual: digest,
        },
      );
    }
    return { bytes, mediaType: d.mediaType, digest };
  };
  return {
    describe,
    name: fullName,
    tag,
    resolve: async () => await resolvePlatform(await readManifest(entry), describe, readManifest),
    async openBlob(d) {
      try {
        const size = (await Deno.stat(blobPath(d))).size;
        return { body: (await Deno.open(blobPath(d))).readable, size };
      } catch (e) {
        throw missing(describe, d, e);
      }
    },
  };
}

function missing(describe: string, d: Descriptor, e: unknown): unknown {
  if (!(e instanceof Deno.errors.NotFound)) return e;
  return new VolantError("not_found", `${describe} is missing blob ${d.digest} (${d.mediaType})`, {
    digest: d.digest,
  });
}
