/**
 * OCI image operations: list, pull (with NDJSON progress), show, remove. A daemon without an
 * image store answers each with `unsupported`, over REST and MCP alike.
 *
 * @module
 */
import { ImageList, ImagePullRequest, ImageRecord } from "../image.ts";
import { defineOperation } from "../operation.ts";
import { ByImage, PROGRESS_STREAM, ProgressQuery } from "./_params.ts";

/** `GET /api/v1/images` */
export const ListImages = defineOperation({
  operationId: "listImages",
  method: "GET",
  path: "/api/v1/images",
  summary: "List cached OCI images",
  status: 200,
  response: ImageList,
  errors: ["unsupported"],
  access: "read",
  mcp: {
    tool: "image_list",
    title: "List images",
    description: "Cached OCI images with their digest, root filesystem size and the VMs using them",
  },
});

/** `POST /api/v1/images` */
export const PullImage = defineOperation({
  operationId: "pullImage",
  method: "POST",
  path: "/api/v1/images",
  summary: "Pull an image (every blob's digest verified) and build its shared root filesystem",
  query: ProgressQuery,
  body: ImagePullRequest,
  status: 201,
  response: ImageRecord,
  stream: PROGRESS_STREAM,
  errors: [
    "invalid_argument",
    "unsupported",
    "not_found",
    "unauthenticated",
    "artifact_unavailable",
    "checksum_mismatch",
    "network_error",
  ],
  access: "admin",
  mcp: {
    tool: "image_pull",
    title: "Pull an image",
    description: "Pull an OCI image (digests verified) and build its shared root filesystem; " +
      "answers when done (no progress lines)",
    omit: ["progress"],
  },
});

/** `GET /api/v1/images/:image` */
export const GetImage = defineOperation({
  operationId: "getImage",
  method: "GET",
  path: "/api/v1/images/:image",
  summary: "Show a cached image (by reference, URL-encoded, or digest)",
  params: ByImage,
  status: 200,
  response: ImageRecord,
  errors: ["invalid_argument", "not_found", "unsupported"],
  access: "read",
  mcp: { restOnly: "image_list answers the same records" },
});

/** `DELETE /api/v1/images/:image` */
export const RemoveImage = defineOperation({
  operationId: "removeImage",
  method: "DELETE",
  path: "/api/v1/images/:image",
  summary: "Remove a cached image unless a VM uses it",
  params: ByImage,
  status: 200,
  response: ImageRecord,
  errors: ["invalid_argument", "not_found", "invalid_state", "unsupported"],
  access: "admin",
  mcp: { restOnly: "Housekeeping of the daemon's image cache: an operator's step" },
});
