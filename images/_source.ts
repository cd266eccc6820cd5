/**
 * Where an image's documents and blobs come from: a registry, an OCI layout directory or a
 * `docker save` archive. The store ingests every kind the same way.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import type { BlobSource } from "./blob_store.ts";
import {
  type Descriptor,
  type ImageManifest,
  parseManifestDocument,
  selectPlatform,
} from "./manifest.ts";
import type { ImageReference } from "./reference.ts";
import type { RegistryClient } from "./registry_client.ts";

/** The linux/amd64 manifest an image source resolved to. */
export interface ResolvedManifest {
  /** The manifest's digest. */
  digest: string;
  /** Its exact bytes. */
  bytes: Uint8Array;
  /** Parsed. */
  manifest: ImageManifest;
}

/** A source of one image. */
export interface ImageSource {
  /** Names the image in messages. */
  readonly describe: string;
  /** Fetches and parses the linux/amd64 manifest (choosing from an index when needed). */
  resolve(signal?: AbortSignal): Promise<ResolvedManifest>;
  /** Opens a blob the manifest names. */
  openBlob(descriptor: Descriptor, signal?: AbortSignal): Promise<BlobSource>;
}

/**
 * Resolves a manifest document to the linux/amd64 image manifest: an index is narrowed with
 * {@linkcode selectPlatform} and the chosen manifest fetched with `fetchManifest`.
 */
export async function resolvePlatform(
  first: { bytes: Uint8Array; mediaType: string | null; digest: string },
  describe: string,
  fetchManifest: (
    descriptor: Descriptor,
  ) => Promise<{ bytes: Uint8Array; mediaType: string | null; digest: string }>,
): Promise<ResolvedManifest> {
  const doc = parseManifestDocument(first.bytes, first.mediaType, describe);
  if (doc.kind === "manifest") {
    return { digest: first.digest, bytes: first.bytes, manifest: doc.manifest };
  }
  const chosen = selectPlatform(doc.index, describe);
  const next = await fetchManifest(chosen);
  if (next.digest !== chosen.digest) {
    throw new VolantError(
      "checksum_mismatch",
      `${describe}: the linux/amd64 manifest has digest ${next.digest}, not ${chosen.digest} as its index says`,
      { expected: chosen.digest, actual: next.digest },
    );
  }
  const inner = parseManifestDocument(
    next.bytes,
    next.mediaType ?? chosen.mediaType,
    `${describe} (linux/amd64)`,
  );
  if (inner.kind !== "manifest") {
    throw new VolantError(
      "invalid_argument",
      `${describe}: the linux/amd64 entry of its index is another index`,
    );
  }
  return { digest: next.digest, bytes: next.bytes, manifest: inner.manifest };
}

/**
 * A registry image: `ref`'s tag or digest, blobs from the same repository.
 *
 * @example
 * ```ts ignore
 * import { registrySource } from "./_source.ts";
 * const src = registrySource(parseImageRef("127.0.0.1:5000/demo/x:1"), client);
 * const { digest } = await src.resolve();
 * ```
 */
export function registrySource(ref: ImageReference, client: RegistryClient): ImageSource {
  const reference = ref.digest ?? ref.tag ?? "latest";
  return {
    describe: ref.canonical,
    async resolve(signal) {
      const first = await client.getManifest(ref.repository, reference, { signal });
      return await resolvePlatform(
        first,
        ref.canonical,
        (d) => client.getManifest(ref.repository, d.digest, { signal }),
      );
    },
    openBlob: (d, signal) => client.getBlob(ref.repository, d.digest, { signal }),
  };
}
