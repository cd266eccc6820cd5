/**
 * Build config sections every strategy shares, and the strategies themselves. Each section
 * reuses the manifest's own schema where the manifest has one, so a config and the manifest it
 * becomes cannot disagree.
 *
 * @module
 */
import * as z from "zod/mini";
import { Manifest, PluginName } from "../schema/mod.ts";

/** The build strategies: `initramfs` (files → appliance) and `oci_rootfs` (image → rootfs). */
export const STRATEGIES = ["initramfs", "oci_rootfs"] as const;
/** A build strategy. */
export type Strategy = typeof STRATEGIES[number];

/** A plugin version: 1-64 of letters, digits and `.+_-` (the manifest's rule). */
export const PluginVersion = Manifest.def.shape.version;

/** The `[plugin]` section: who the plugin is. */
export const PluginSection = z.strictObject({
  name: PluginName,
  version: PluginVersion,
  description: z.optional(z.string()),
});

/** The `[output]` section of every strategy: the output directory. */
export const OUTPUT_DIR = z._default(z.string().check(z.minLength(1, "must not be empty")), ".");

/** The `[resources]` section (defaults: 1 vCPU, 256 MiB). */
export const ResourcesSection = Manifest.def.shape.resources;

/** The `[resources]` defaults. */
export const DEFAULT_RESOURCES = { cpu_cores: 1, memory_mb: 256 } as const;

/** The config format's `version` key. */
export const ConfigVersion = z.literal("1", {
  error: 'must be "1" (the only build config version)',
});
