/**
 * OCI images for Volant: parse references, pull from registries (OCI distribution API,
 * bearer/Basic auth from Docker's config), import OCI layouts and `docker save` archives,
 * store blobs by digest, unpack layers safely (whiteouts, links, never through symlinks out of
 * the root) and build one shared read-only erofs root filesystem per image, plus a small sparse
 * ext4 disk per VM for its writable layer. Knows nothing of VMs, the daemon or the CLI.
 *
 * ```ts ignore
 * import { createWritableDisk, ImageStore } from "./mod.ts";
 * const store = new ImageStore("/var/lib/volant/images");
 * const image = await store.pull("127.0.0.1:5000/demo/nginx:1.0", { insecure: true });
 * const upper = await createWritableDisk("/var/lib/volant/vms/web/upper.ext4", 1024);
 * console.log(image.rootfs.path, image.config.entrypoint, image.config.cmd, upper.path);
 * ```
 *
 * @module
 */
export {
  type BlobProgress,
  type BlobSource,
  BlobStore,
  type EnsureOptions,
  isTempBlob,
  type StoredBlob,
} from "./blob_store.ts";
export {
  type Compression,
  fileCompression,
  layerCompression,
  OCI_LAYER_TYPE,
  openLayer,
  sniffCompression,
} from "./decompress.ts";
export { digestHex, fileDigest, isDigest, sha256Digest } from "./digest.ts";
export { type ArchiveImage, type OpenArchiveOptions, openDockerArchive } from "./docker_archive.ts";
export { dockerConfigDir, loadCredentials, type RegistryCredentials } from "./docker_config.ts";
export { ImageIndexFile, ImageRecord, ImageSourceKind, recordBlobs } from "./image_index.ts";
export {
  type GcResult,
  ImageStore,
  type ImageStoreOptions,
  type ImportOptions,
  type PullOptions,
} from "./image_store.ts";
export {
  Descriptor,
  DOCKER_LIST,
  DOCKER_MANIFEST,
  formatPlatform,
  type ImageConfig,
  imageConfig,
  ImageConfigDocument,
  ImageIndex,
  ImageManifest,
  MANIFEST_ACCEPT,
  type ManifestDocument,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_MANIFEST,
  parseImageConfig,
  parseManifestDocument,
  PLATFORM,
  Platform,
  selectPlatform,
} from "./manifest.ts";
export {
  CONTAINERD_NAME,
  type LayoutImage,
  type OpenLayoutOptions,
  openOciLayout,
  REF_NAME,
} from "./oci_layout.ts";
export {
  absoluteImageSource,
  DOCKER_HUB,
  DOCKER_HUB_REGISTRY,
  type ImageReference,
  type ImageSourceRef,
  parseImageRef,
  parseImageSource,
  repositoryName,
} from "./reference.ts";
export {
  type FetchedManifest,
  RegistryClient,
  type RegistryClientOptions,
  type RequestOptions,
} from "./registry_client.ts";
export {
  buildRootfs,
  type BuildRootfsOptions,
  type BuiltRootfs,
  createWritableDisk,
  MOUNT_POINTS,
  rootfsPath,
  type WritableDisk,
} from "./rootfs.ts";
export { readTar, type TarEntry, type TarEntryType, type TarHeader } from "./tar.ts";
export { IMAGE_STEPS, type ImageStep, type OnImageStep } from "./steps.ts";
export { type UnpackLayer, unpackLayers, type UnpackOptions, type UnpackResult } from "./unpack.ts";
