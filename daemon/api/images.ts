/** OCI image routes: list, pull (with NDJSON progress), show, remove. @module */
import { z } from "zod";
import { ImageList, ImagePullRequest, ImageRecord } from "../../schema/image.ts";
import { VolantError } from "../../schema/mod.ts";
import type { ImageService } from "../services/images.ts";
import { ndjsonResponse } from "./_ndjson.ts";
import { type ApiDeps, defineRoute, type Route } from "./route.ts";

function images(deps: ApiDeps): ImageService {
  if (!deps.images) {
    throw new VolantError("unsupported", "this volantd has no image store configured");
  }
  return deps.images;
}

/** `GET /api/v1/images` */
export const listImages: Route = defineRoute({
  method: "GET",
  path: "/api/v1/images",
  operationId: "listImages",
  summary: "List cached OCI images",
  status: 200,
  response: ImageList,
  handle: async ({ deps }) => ({ images: await images(deps).list() }),
});

const PullQuery = z.object({
  progress: z.enum(["ndjson"]).optional().describe(
    "ndjson: stream progress lines ({type: progress|done|error}) instead of one JSON answer",
  ),
});

/** `POST /api/v1/images` */
export const pullImage: Route = defineRoute({
  method: "POST",
  path: "/api/v1/images",
  operationId: "pullImage",
  summary: "Pull an image (every blob's digest verified) and build its shared root filesystem",
  body: ImagePullRequest,
  query: PullQuery,
  status: 201,
  response: ImageRecord,
  handle: ({ body, query, deps }) =>
    query.progress === "ndjson"
      ? ndjsonResponse("image", (onProgress) => images(deps).pull(body, onProgress))
      : images(deps).pull(body),
});

/** `GET /api/v1/images/:image` */
export const getImage: Route = defineRoute({
  method: "GET",
  path: "/api/v1/images/:image",
  operationId: "getImage",
  summary: "Show a cached image (by reference, URL-encoded, or digest)",
  status: 200,
  response: ImageRecord,
  handle: ({ params, deps }) => images(deps).get(params.image!),
});

/** `DELETE /api/v1/images/:image` */
export const removeImage: Route = defineRoute({
  method: "DELETE",
  path: "/api/v1/images/:image",
  operationId: "removeImage",
  summary: "Remove a cached image unless a VM uses it",
  status: 200,
  response: ImageRecord,
  handle: ({ params, deps }) => images(deps).remove(params.image!),
});
