/**
 * The named points of an image pull or import, for a test seam: the image store calls its
 * `onStep` option (see `ImageStoreOptions`) when it reaches each one. volantd passes its fault
 * points (`daemon/fault.ts`), so a test can kill it there and prove that the next start leaves
 * nothing behind. Without `onStep`, nothing happens.
 *
 * @module
 */

/**
 * Each point, in the order a pull reaches it:
 *
 * - `blob_chunk` — the first chunk of a layer blob is written to its temp file;
 * - `blob_committed` — a layer blob is renamed into place (the image is not indexed yet);
 * - `layer_unpacked` — a layer is unpacked into the inert unpack tree (fires once per layer);
 * - `rootfs_built` — `mkfs.erofs` wrote the temp root filesystem, before its rename;
 * - `rootfs_placed` — the root filesystem is in place, before the image index is written.
 */
export const IMAGE_STEPS = [
  "blob_chunk",
  "blob_committed",
  "layer_unpacked",
  "rootfs_built",
  "rootfs_placed",
] as const;

/** One of {@linkcode IMAGE_STEPS}. */
export type ImageStep = typeof IMAGE_STEPS[number];

/**
 * Called at each step a pull reaches.
 *
 * @example
 * ```ts
 * import type { OnImageStep } from "./steps.ts";
 * const seen: string[] = [];
 * const onStep: OnImageStep = (step) => void seen.push(step);
 * onStep("blob_chunk");
 * console.assert(seen[0] === "blob_chunk");
 * ```
 */
export type OnImageStep = (step: ImageStep) => void;
