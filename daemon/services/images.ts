/**
 * The daemon's OCI images: pulls through the image store (`images/`) with progress, lists what
 * is cached with the VMs using each image, refuses to remove an image a VM uses, and hands a VM
 * its image's shared root filesystem and process description.
 *
 * Pulls and removals are recorded as `image.pulled` / `image.removed` events. The image store is
 * files and a JSON index, not SQLite, so the event cannot share the change's transaction: it is
 * recorded right after the change is complete (a daemon killed in between has the image, or has
 * removed it, without the event).
 *
 * @module
 */
import { ImagePullRequest, type ImageRecord } from "../../schema/image.ts";
import { fromZodError, VolantError } from "../../schema/mod.ts";
import {
  fileDigest,
  type ImageRecord as StoredImage,
  type ImageStore,
  parseImageSource,
  type RegistryCredentials,
} from "../../images/mod.ts";
import type { Logger } from "../log.ts";
import type { EventStore, VmStore } from "../store/mod.ts";
import type { ImageEventType } from "../../schema/event.ts";
import type { ImageForManifest } from "../../schema/image_manifest.ts";

/** One progress event of a pull (sent to clients as NDJSON). */
export interface PullProgress {
  phase: "download" | "unpack" | "rootfs";
  layer?: string;
  received?: number;
  total?: number | null;
  message?: string;
}

/** Options of {@linkcode ImageService}. */
export interface ImageServiceOptions {
  store: ImageStore;
  vms: VmStore;
  /** The event log `image.*` events are recorded in. */
  events: EventStore;
  /** Registries (host[:port]) that are always talked to over plain HTTP. */
  insecureRegistries: readonly string[];
  /**
   * Registry credentials kept by the daemon (`volar registry login`), asked before the daemon's
   * own `~/.docker/config.json`.
   */
  credentials?: (registry: string) => Promise<RegistryCredentials | null>;
  logger: Logger;
}

/** Images for the API and for VMs. */
export class ImageService {
  #store: ImageStore;
  #vms: VmStore;
  #events: EventStore;
  #insecure: Set<string>;
  #credentials: ((registry: string) => Promise<RegistryCredentials | null>) | undefined;
  #logger: Logger;
  /** Rootfs checksums computed in this process, by path and size. */
  #checksums = new Map<string, { size: number; checksum: string }>();

  /** An image service over `options.store`. */
  constructor(options: ImageServiceOptions) {
    this.#store = options.store;
    this.#vms = options.vms;
    this.#events = options.events;
    this.#insecure = new Set(options.insecureRegistries);
    this.#credentials = options.credentials;
    this.#logger = options.logger;
  }

  #usedBy(digest: string): string[] {
    return this.#vms.list().filter((vm) => vm.image_digest === digest).map((vm) => vm.name);
  }

  #record(image: StoredImage): ImageRecord {
    return { ...image, used_by: this.#usedBy(image.digest) };
  }

  /** Records an `image.*` event right after the change (see the module's note). */
  #recordEvent(type: ImageEventType, image: ImageRecord): void {
    this.#events.append({ type, name: image.ref, at: new Date().toISOString(), image });
  }

  /** Every cached image. */
  async list(): Promise<ImageRecord[]> {
    return (await this.#store.list()).map((i) => this.#record(i));
  }

  /** One cached image by reference or digest; `not_found` when it is not cached. */
  async get(ref: string): Promise<ImageRecord> {
    const image = await this.#store.find(ref);
    if (!image) {
      throw new VolantError(
        "not_found",
        `image ${ref} is not cached; pull it first (volar images pull ${ref})`,
        { image: ref },
      );
    }
    return this.#record(image);
  }

  /**
   * Pulls an image from an unvalidated request body, reporting progress; the cached image when
   * nothing changed upstream.
   */
  async pull(input: unknown, onProgress?: (p: PullProgress) => void): Promise<ImageRecord> {
    const parsed = ImagePullRequest.safeParse(input);
    if (!parsed.success) throw fromZodError(parsed.error);
    const req = parsed.data;
    const started = performance.now();
    const image = await this.#fetch(req.ref, req.insecure, onProgress);
    this.#logger.info("image pulled", {
      image: req.ref,
      digest: image.digest,
      ms: Math.round(performance.now() - started),
    });
    const record = this.#record(image);
    this.#recordEvent("image.pulled", record);
    return record;
  }

  /**
   * From a registry, or a local source: `oci:<dir>[:<tag>]` (an OCI image layout) or
   * `docker-archive:<file>[:<tag>]` (what `docker save` writes), as skopeo names them.
   */
  #fetch(
    ref: string,
    insecure: boolean,
    onProgress?: (p: PullProgress) => void,
  ): Promise<StoredImage> {
    const progress = onProgress
      ? {
        onProgress: (e: { digest: string; done: number; total: number | null; cached?: boolean }) =>
          onProgress({
            phase: "download",
            layer: e.digest,
            received: e.done,
            total: e.total,
            ...(e.cached ? { message: "cached" } : {}),
          }),
      }
      : {};
    const source = parseImageSource(ref);
    if (source.kind === "registry") {
      // Plain HTTP when asked for, or configured for this registry.
      const plain = insecure || this.#insecure.has(source.ref.registry);
      const credentials = this.#credentials ? { credentials: this.#credentials } : {};
      return this.#store.pull(ref, { insecure: plain, ...progress, ...credentials });
    }
    const options = { ...(source.tag === undefined ? {} : { tag: source.tag }), ...progress };
    return source.kind === "oci-layout"
      ? this.#store.importLayout(source.path, options)
      : this.#store.importDockerArchive(source.path, options);
  }

  /**
   * The image a VM is created from (`vms create --image`): a registry image from the cache, else
   * pulled; a local source imported (again: the file may have changed, and an unchanged image is
   * found stored by its digest without being unpacked again).
   */
  async ensure(ref: string, insecure: boolean): Promise<StoredImage> {
    if (parseImageSource(ref).kind === "registry") {
      const cached = await this.#store.find(ref);
      if (cached) return cached;
    }
    const image = await this.#fetch(ref, insecure);
    this.#recordEvent("image.pulled", this.#record(image));
    return image;
  }

  /** Removes an image; `invalid_state` while a VM uses it. */
  async remove(ref: string): Promise<ImageRecord> {
    const image = await this.get(ref);
    if (image.used_by.length > 0) {
      throw new VolantError(
        "invalid_state",
        `image ${image.ref} is used by VM ${image.used_by.join(", ")}; delete ${
          image.used_by.length > 1 ? "them" : "it"
        } first`,
        { image: image.ref, used_by: image.used_by },
      );
    }
    await this.#store.remove(image.ref);
    this.#logger.info("image removed", { image: image.ref, digest: image.digest });
    this.#recordEvent("image.removed", image);
    return image;
  }

  /**
   * What a VM created from the image with this digest boots: its process and its shared root
   * filesystem (checked to still be there, with its checksum).
   */
  async bootImage(ref: string, digest: string): Promise<ImageForManifest> {
    const image = await this.#store.find(digest);
    if (!image) {
      throw new VolantError(
        "not_found",
        `image ${ref} (${digest}) is no longer cached; pull it again (volar images pull ${ref})`,
        { image: ref, digest },
      );
    }
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(image.rootfs.path);
    } catch {
      throw new VolantError(
        "artifact_unavailable",
        `the root filesystem of image ${ref} (${image.rootfs.path}) is missing; ` +
          `remove and pull the image again`,
        { image: ref, path: image.rootfs.path },
      );
    }
    const known = this.#checksums.get(image.rootfs.path);
    let checksum = known?.size === info.size ? known.checksum : undefined;
    if (checksum === undefined) {
      checksum = (await fileDigest(image.rootfs.path)).digest;
      this.#checksums.set(image.rootfs.path, { size: info.size, checksum });
    }
    return {
      ref,
      digest: image.digest,
      config: image.config,
      rootfs: { path: image.rootfs.path, checksum },
    };
  }
}
