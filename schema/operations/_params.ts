/**
 * Path parameters shared by the operations of this folder. Private to `schema/operations/`.
 *
 * @module
 */
import { z } from "zod";
import { PluginName } from "../manifest.ts";
import { RegistryHost } from "../registry.ts";
import { VmName } from "../vm.ts";
import { DeploymentName } from "../deployment.ts";
import { SnapshotName } from "../snapshot.ts";

/** `:name`: a VM. */
export const ByVm = z.strictObject({ name: VmName.describe("The VM's name") });

/** `:name`: a deployment. */
export const ByDeployment = z.strictObject({
  name: DeploymentName.describe("The deployment's name"),
});

/** `:plugin`: an installed plugin. */
export const ByPlugin = z.strictObject({ plugin: PluginName });

/** `:key_id`: a trusted key. */
export const ByKey = z.strictObject({
  key_id: z.string().regex(/^[0-9a-f]{16}$/, "expected 16 hex digits (volar keys list)")
    .describe("The key's id, as `volar keys list` shows it"),
});

/** `:image`: a cached image. */
export const ByImage = z.strictObject({
  image: z.string().min(1).describe("A cached image's reference (URL-encoded) or digest"),
});

/** `:token`: an API token. */
export const ByToken = z.strictObject({
  token: z.string().min(1).describe("A token's name or id"),
});

/** `:host`: a registry with stored credentials. */
export const ByRegistry = z.strictObject({ host: RegistryHost });

/** `?progress=ndjson`: stream progress lines instead of one JSON answer. */
export const ProgressQuery = z.strictObject({
  progress: z.enum(["ndjson"]).optional().describe(
    "ndjson: stream progress lines ({type: progress|done|error}) instead of one JSON answer",
  ),
});

/** The stream of an operation that takes `?progress=ndjson`. */
export const PROGRESS_STREAM = {
  kind: "ndjson_progress",
  description: 'With ?progress=ndjson: application/x-ndjson lines {type: "progress", …} while ' +
    'the work runs (at most one each 100 ms), then {type: "done", <result>} or ' +
    '{type: "error", error: {code, message, details}}; the work finishes even when the ' +
    "client goes away",
} as const;

/** `:snapshot`: a snapshot. */
export const BySnapshot = z.strictObject({
  snapshot: SnapshotName.describe("The snapshot's name"),
});
