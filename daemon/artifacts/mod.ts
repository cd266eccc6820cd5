/**
 * The daemon's content-addressed artifact cache: plugin artifacts are fetched from
 * `http(s)://`, `file:///` or absolute-path sources, checked against their sha256 while they
 * stream, stored read-only under `<state_dir>/artifacts/sha256/<hex>`, verified cheaply before
 * each boot, and given to VMs through copy-on-write qcow2 overlays.
 *
 * ```ts ignore
 * import { ArtifactCache, createOverlay } from "./mod.ts";
 * const cache = new ArtifactCache("/var/lib/volant");
 * const rootfs = await cache.fetchArtifact("https://example.com/rootfs.img", "sha256:…");
 * await cache.verifyArtifact(rootfs.checksum);
 * await createOverlay(rootfs.path, "/var/lib/volant/vms/web/rootfs.qcow2", "raw");
 * ```
 *
 * @module
 */
export {
  ArtifactCache,
  type ArtifactInfo,
  type ArtifactProgress,
  type FetchArtifactOptions,
  type FetchedArtifact,
  type GcOptions,
  type GcResult,
  type VerifiedArtifact,
} from "./cache.ts";
export {
  createOverlay,
  type DiskFormat,
  type OverlayInfo,
  overlayInfo,
  type OverlayOptions,
} from "./overlay.ts";
