/**
 * Plugin registry API schemas: install request, the plugin record `volar plugins … --json`
 * prints, and the trusted keys.
 *
 * @module
 */
import { z } from "zod";
import { PluginName } from "./manifest.ts";

/** Body of `POST /api/v1/plugins`: the manifest inline, or where to read it. */
export const PluginInstallRequest = z.strictObject({
  manifest: z.record(z.string(), z.unknown()).optional().describe(
    "The manifest itself (a JSON object)",
  ),
  url: z.string().regex(
    /^(https?:\/\/[^\s/]+\S*|file:\/\/\/\S*|\/\S*)$/,
    "must be an http(s):// URL, a file:/// URL or an absolute path",
  ).optional().describe("Where to read the manifest (http(s)://, file:///, /path)"),
  allow_unsigned: z.boolean().default(false).describe(
    "Install even when the manifest carries no signature (never when a signature fails)",
  ),
}).refine((r) => (r.manifest === undefined) !== (r.url === undefined), {
  message: "give exactly one of manifest or url",
  path: ["manifest"],
});
/** Parsed body of `POST /api/v1/plugins`. */
export type PluginInstallRequest = z.infer<typeof PluginInstallRequest>;

/** One artifact of an installed plugin. */
export const PluginArtifact = z.object({
  role: z.string().describe("initramfs, rootfs or disk:<name>"),
  url: z.string(),
  checksum: z.string(),
  size: z.number().int(),
});

/** An installed plugin as the API returns it. */
export const PluginRecord = z.object({
  name: PluginName,
  version: z.string(),
  runtime: z.string(),
  description: z.string().nullable(),
  enabled: z.boolean(),
  init: z.enum(["kestrel", "custom", "none"]),
  signature: z.object({
    status: z.enum(["verified", "unsigned"]).describe(
      "verified: signed by a trusted key; unsigned: installed with allow_unsigned",
    ),
    key_id: z.string().nullable(),
  }),
  source: z.string().nullable(),
  installed_at: z.string(),
  updated_at: z.string(),
  artifacts: z.array(PluginArtifact),
  actions: z.array(z.string()),
  used_by: z.array(z.string()).describe("VMs that run this plugin"),
});
/** An installed plugin. */
export type PluginRecord = z.infer<typeof PluginRecord>;

/** Body of `GET /api/v1/plugins`. */
export const PluginList = z.object({ plugins: z.array(PluginRecord) });
/** Body of `GET /api/v1/plugins`. */
export type PluginList = z.infer<typeof PluginList>;

/** Body of `POST /api/v1/plugins/:plugin/enabled`. */
export const PluginEnableRequest = z.strictObject({ enabled: z.boolean() });

/** Body of `POST /api/v1/keys`. */
export const KeyTrustRequest = z.strictObject({
  public_key: z.string().describe("ed25519:<base64 of 32 bytes>, as `volar keys generate` prints"),
  comment: z.string().max(200).optional(),
});
/** Body of `POST /api/v1/keys`. */
export type KeyTrustRequest = z.infer<typeof KeyTrustRequest>;

/** A trusted key. */
export const KeyRecord = z.object({
  key_id: z.string(),
  public_key: z.string(),
  comment: z.string().nullable(),
  added_at: z.string(),
});
/** A trusted key. */
export type KeyRecord = z.infer<typeof KeyRecord>;

/** Body of `GET /api/v1/keys`. */
export const KeyList = z.object({ keys: z.array(KeyRecord) });
