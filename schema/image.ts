/**
 * OCI image API schemas: the pull request, the image record `volar images … --json` prints, and
 * what a VM created from an image may override of the image's process.
 *
 * @module
 */
import { z } from "zod";
import { parseImageSource } from "../images/reference.ts";
import { VolantError } from "./error.ts";

/**
 * Where an image comes from, as users write it: a registry reference
 * (`127.0.0.1:5000/demo/nginx:1.0`, `busybox@sha256:…`), an OCI layout (`oci:<dir>[:tag]`) or
 * a `docker save` archive (`docker-archive:<file>`). Checked by the one parser of image
 * references, `parseImageSource` (images/reference.ts), so every entry point (CLI, REST, MCP)
 * accepts and refuses the same references with the same message.
 */
export const ImageRef = z.string().max(4096).superRefine((text, ctx) => {
  try {
    parseImageSource(text);
  } catch (e) {
    if (!(e instanceof VolantError)) throw e;
    ctx.addIssue({ code: "custom", message: e.message });
  }
});

/** Body of `POST /api/v1/images`: pull (or refresh) an image into the local cache. */
export const ImagePullRequest = z.strictObject({
  ref: ImageRef.describe(
    "The image to pull: a registry reference, oci:<dir>[:tag] or docker-archive:<file> (imported)",
  ),
  insecure: z.boolean().default(false).describe(
    "Talk plain HTTP to this registry (also allowed for every registry listed in the " +
      "daemon config's images.insecure_registries)",
  ),
});
/** Parsed body of `POST /api/v1/images`. */
export type ImagePullRequest = z.infer<typeof ImagePullRequest>;

/** The process an image runs, from its config. */
export const ImageProcess = z.object({
  entrypoint: z.array(z.string()).nullable(),
  cmd: z.array(z.string()).nullable(),
  env: z.array(z.string()).describe("KEY=value, as in the image config"),
  workdir: z.string().nullable(),
  user: z.string().nullable(),
  exposed_ports: z.array(z.string()).describe("e.g. 80/tcp"),
});
/** The process an image runs. */
export type ImageProcess = z.infer<typeof ImageProcess>;

/** A cached image as the API returns it. */
export const ImageRecord = z.object({
  ref: z.string().describe("The reference it was pulled as"),
  digest: z.string().describe("The image manifest's digest (sha256:…)"),
  config_digest: z.string().describe("The image config blob's digest"),
  platform: z.string().describe("os/architecture, e.g. linux/amd64"),
  source: z.enum(["registry", "oci-layout", "docker-archive"]),
  config: ImageProcess,
  rootfs: z.object({
    path: z.string().describe("The shared read-only root filesystem (erofs)"),
    size_bytes: z.number().int(),
  }),
  layers: z.array(
    z.object({ digest: z.string(), size: z.number().int(), media_type: z.string() }),
  ),
  warnings: z.array(z.string()).describe("What could not be reproduced (e.g. xattrs)"),
  created_at: z.string(),
  used_by: z.array(z.string()).describe("VMs created from this image"),
});
/** A cached image. */
export type ImageRecord = z.infer<typeof ImageRecord>;

/** Body of `GET /api/v1/images`. */
export const ImageList = z.object({ images: z.array(ImageRecord) });
/** Body of `GET /api/v1/images`. */
export type ImageList = z.infer<typeof ImageList>;

/** `KEY=value` as `--env` takes it. */
export const EnvAssignment = z.string().regex(
  /^[A-Za-z_][A-Za-z0-9_]*=.*$/s,
  "must be KEY=value with KEY of letters, digits and _",
);
