/**
 * OCI and Docker v2 image documents: manifests, image indexes / manifest lists and image
 * configs, parsed with zod; the linux/amd64 choice from an index; and the config fields a
 * microVM needs (entrypoint, cmd, env, workdir, user, exposed ports).
 *
 * @module
 */
import * as z from "zod/mini";
import { VolantError } from "../schema/error.ts";
import { layerCompression } from "./decompress.ts";

/** OCI image index. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image config. */
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** Docker v2 manifest list. */
export const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Docker v2 image manifest. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** The `Accept` list for manifest requests, most preferred first. */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];
/** The only platform Volant runs. */
export const PLATFORM = "linux/amd64";

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const Digest = z.string().check(z.regex(DIGEST_RE, "must be sha256:<64 lowercase hex digits>"));

/** An OCI platform. */
export const Platform = z.object({
  architecture: z.string(),
  os: z.string(),
  variant: z.optional(z.string()),
});
/** An OCI platform. */
export type Platform = z.infer<typeof Platform>;

/** An OCI content descriptor. */
export const Descriptor = z.object({
  mediaType: z.string(),
  digest: Digest,
  size: z.int().check(z.gte(0)),
  platform: z.optional(Platform),
  annotations: z.optional(z.nullable(z.record(z.string(), z.string()))),
  urls: z.optional(z.nullable(z.array(z.string()))),
});
/** An OCI content descriptor. */
export type Descriptor = z.infer<typeof Descriptor>;

/** An image manifest (OCI or Docker v2 schema 2). */
export const ImageManifest = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.optional(z.string()),
  config: Descriptor,
  layers: z.array(Descriptor),
});
/** An image manifest. */
export type ImageManifest = z.infer<typeof ImageManifest>;

/** An image index (OCI) or manifest list (Docker). */
export const ImageIndex = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.optional(z.string()),
  manifests: z.array(Descriptor),
});
/** An image index. */
export type ImageIndex = z.infer<typeof ImageIndex>;

const Strings = z.optional(z.nullable(z.array(z.string())));

/** The parts of an image config Volant reads. */
export const ImageConfigDocument = z.object({
  architecture: z.optional(z.string()),
  os: z.optional(z.string()),
  variant: z.optional(z.string()),
  config: z.optional(z.nullable(z.object({
    Entrypoint: Strings,
    Cmd: Strings,
    Env: Strings,
    WorkingDir: z.optional(z.nullable(z.string())),
    User: z.optional(z.nullable(z.string())),
    ExposedPorts: z.optional(z.nullable(z.record(z.string(), z.unknown()))),
  }))),
  rootfs: z.object({ type: z.literal("layers"), diff_ids: z.array(Digest) }),
});
/** The parts of an image config Volant reads. */
export type ImageConfigDocument = z.infer<typeof ImageConfigDocument>;

/** How a microVM runs the image: its config's process fields, normalised. */
export interface ImageConfig {
  /** `Entrypoint`, or null when unset. */
  entrypoint: string[] | null;
  /** `Cmd`, or null when unset. */
  cmd: string[] | null;
  /** `Env` as `KEY=value` strings. */
  env: string[];
  /** `WorkingDir`, or null when unset or empty. */
  workdir: string | null;
  /** `User` (`name`, `uid`, `uid:gid`, …), or null when unset or empty. */
  user: string | null;
  /** `ExposedPorts` keys (`80/tcp`), sorted. */
  exposed_ports: string[];
}

/** A parsed manifest document: an index to choose from, or an image manifest. */
export type ManifestDocument =
  | { kind: "index"; mediaType: string; index: ImageIndex }
  | { kind: "manifest"; mediaType: string; manifest: ImageManifest };

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new VolantError(
      "invalid_argument",
      `${what} is not valid JSON: ${e instanceof Error ? e.message : e}`,
    );
  }
}

function invalid(what: string, error: z.core.$ZodError): VolantError {
  const text = error.issues.map((i) =>
    `${i.path.map(String).join(".") || "(document)"}: ${i.message}`
  )
    .join("; ");
  return new VolantError("invalid_argument", `${what} is not a valid image document: ${text}`);
}

/**
 * Parses a manifest or index. Its kind comes from its `mediaType` field, else from
 * `contentType` (the registry's `Content-Type`), else from its shape. Docker schema 1 and
 * unknown media types are `invalid_argument` errors naming `what`; every layer's media type
 * must be a filesystem layer.
 *
 * @example
 * ```ts
 * import { parseManifestDocument } from "./manifest.ts";
 * const doc = parseManifestDocument(
 *   new TextEncoder().encode('{"schemaVersion":2,"manifests":[]}'),
 *   "application/vnd.oci.image.index.v1+json",
 *   "example",
 * );
 * console.assert(doc.kind === "index");
 * ```
 */
export function parseManifestDocument(
  bytes: Uint8Array,
  contentType: string | null,
  what: string,
): ManifestDocument {
  const json = parseJson(bytes, what);
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new VolantError("invalid_argument", `${what} is not a JSON object`);
  }
  const doc = json as Record<string, unknown>;
  if (doc.schemaVersion === 1) {
    throw new VolantError(
      "invalid_argument",
      `${what} uses Docker image manifest schema 1, which is deprecated and not supported; ` +
        "push the image again with a current Docker or skopeo",
    );
  }
  const header = contentType?.split(";")[0]?.trim();
  const mediaType = typeof doc.mediaType === "string"
    ? doc.mediaType
    : header !== undefined && header !== "" && header !== "application/json" &&
        header !== "application/octet-stream"
    ? header
    : Array.isArray(doc.manifests)
    ? OCI_INDEX
    : OCI_MANIFEST;
  if (mediaType === OCI_INDEX || mediaType === DOCKER_LIST) {
    const r = ImageIndex.safeParse(doc);
    if (!r.success) throw invalid(what, r.error);
    return { kind: "index", mediaType, index: r.data };
  }
  if (mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST) {
    const r = ImageManifest.safeParse(doc);
    if (!r.success) throw invalid(what, r.error);
    r.data.layers.forEach((l, i) =>
      layerCompression(l.mediaType, `${what} layer ${i} (${l.digest})`)
    );
    return { kind: "manifest", mediaType, manifest: r.data };
  }
  throw new VolantError(
    "invalid_argument",
    `${what} has media type ${
      JSON.stringify(mediaType)
    }, which is not an image manifest or index ` +
      `(expected one of ${MANIFEST_ACCEPT.join(", ")})`,
    { media_type: mediaType },
  );
}

/**
 * `os/architecture[/variant]`.
 *
 * @example
 * ```ts
 * import { formatPlatform } from "./manifest.ts";
 * console.assert(formatPlatform({ os: "linux", architecture: "arm", variant: "v7" }) === "linux/arm/v7");
 * ```
 */
export function formatPlatform(p: Platform): string {
  return p.variant === undefined || p.variant === ""
    ? `${p.os}/${p.architecture}`
    : `${p.os}/${p.architecture}/${p.variant}`;
}

/**
 * The index entry for linux/amd64 (one without a variant or with `v1` preferred). An index
 * without one is an `invalid_argument` error listing the platforms it has; attestation
 * entries (`unknown/unknown`) are not listed.
 *
 * @example
 * ```ts
 * import { selectPlatform } from "./manifest.ts";
 * const amd64 = { mediaType: "m", digest: "sha256:" + "a".repeat(64), size: 1, platform: { os: "linux", architecture: "amd64" } };
 * console.assert(selectPlatform({ schemaVersion: 2, manifests: [amd64] }, "img") === amd64);
 * ```
 */
export function selectPlatform(index: ImageIndex, what: string): Descriptor {
  const matches = index.manifests.filter((m) =>
    m.platform?.os === "linux" && m.platform.architecture === "amd64"
  );
  const plain = matches.find((m) => (m.platform?.variant ?? "v1") === "v1");
  const chosen = plain ?? matches[0];
  if (chosen !== undefined) return chosen;
  const have = [
    ...new Set(
      index.manifests.flatMap((m) =>
        m.platform === undefined || m.platform.os === "unknown" ? [] : [formatPlatform(m.platform)]
      ),
    ),
  ];
  throw new VolantError(
    "invalid_argument",
    `${what} has no ${PLATFORM} image; it has ${
      have.length === 0 ? "no platform-tagged images" : have.join(", ")
    } (Volant runs ${PLATFORM} microVMs)`,
    { platforms: have },
  );
}

/**
 * Parses an image config and checks that it is for linux/amd64 (a config that names no
 * platform is accepted); other platforms are an `invalid_argument` error.
 *
 * @example
 * ```ts
 * import { parseImageConfig } from "./manifest.ts";
 * const doc = parseImageConfig(new TextEncoder().encode(
 *   '{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}',
 * ), "config");
 * console.assert(doc.rootfs.diff_ids.length === 0);
 * ```
 */
export function parseImageConfig(bytes: Uint8Array, what: string): ImageConfigDocument {
  const r = ImageConfigDocument.safeParse(parseJson(bytes, what));
  if (!r.success) throw invalid(what, r.error);
  const { os, architecture } = r.data;
  if (
    (os !== undefined && os !== "linux") || (architecture !== undefined && architecture !== "amd64")
  ) {
    const platform = formatPlatform({
      os: os ?? "?",
      architecture: architecture ?? "?",
      variant: r.data.variant,
    });
    throw new VolantError(
      "invalid_argument",
      `${what} is for ${platform}; Volant runs ${PLATFORM} microVMs`,
      { platform },
    );
  }
  return r.data;
}

/**
 * The process fields of an image config, normalised (nulls for unset, sorted ports).
 *
 * @example
 * ```ts
 * import { imageConfig } from "./manifest.ts";
 * const c = imageConfig({ rootfs: { type: "layers", diff_ids: [] }, config: { Cmd: ["sh"] } });
 * console.assert(c.cmd?.[0] === "sh" && c.entrypoint === null);
 * ```
 */
export function imageConfig(doc: ImageConfigDocument): ImageConfig {
  const c = doc.config ?? {};
  return {
    entrypoint: c.Entrypoint ?? null,
    cmd: c.Cmd ?? null,
    env: c.Env ?? [],
    workdir: c.WorkingDir ? c.WorkingDir : null,
    user: c.User ? c.User : null,
    exposed_ports: Object.keys(c.ExposedPorts ?? {}).sort(),
  };
}
