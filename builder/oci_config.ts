/**
 * The build config of `strategy = "oci_rootfs"`: a plugin made from an OCI image. `[source]`
 * names the image (a registry reference, an OCI layout directory or a `docker save` archive);
 * `[workload]` overrides what the image runs (as `docker run` does); `[plugin]`, `[resources]`,
 * `[health_check]`, `[actions]`, `[restart]` and `[labels]` fill the manifest as in the
 * `initramfs` strategy.
 *
 * @module
 */
import * as z from "zod/mini";
import { parseImageRef } from "../images/mod.ts";
import { Action, HealthCheck, PluginName, RestartPolicy, Workload } from "../schema/mod.ts";
import {
  ConfigVersion,
  DEFAULT_RESOURCES,
  OUTPUT_DIR,
  PluginVersion,
  ResourcesSection,
} from "./sections.ts";

const NonEmpty = z.string().check(z.minLength(1, "must not be empty"));

/** The keys of `[source]` that name an image; exactly one must be given. */
export const OCI_SOURCE_KINDS = ["image", "oci_layout", "docker_archive"] as const;

/** The `[source]` section of `oci_rootfs`. */
export const OciSourceSection = z.strictObject({
  /** A registry reference: `127.0.0.1:5000/demo/web:1.0`, `busybox:1.36`, `name@sha256:…`. */
  image: z.optional(NonEmpty),
  /** An OCI image layout directory (relative to the config file). */
  oci_layout: z.optional(NonEmpty),
  /** A `docker save` archive (relative to the config file). */
  docker_archive: z.optional(NonEmpty),
  /** Which image of the layout or archive; default its only one (or `latest`). */
  tag: z.optional(NonEmpty),
  /** Talk plain HTTP to the registry of `image`. */
  insecure_registry: z.optional(z.boolean()),
});
/** The `[source]` section of `oci_rootfs`. */
export type OciSourceSection = z.infer<typeof OciSourceSection>;

/** The `[workload]` section of `oci_rootfs`: overrides of what the image runs. */
export const OciWorkloadSection = z.strictObject({
  /** Replaces the image's Entrypoint and drops its Cmd (as `docker run --entrypoint`). */
  entrypoint: z.optional(
    z.array(z.string().check(z.minLength(1))).check(
      z.minLength(1, "must name the program to run"),
    ),
  ),
  /** Replaces the image's Cmd (`[]`: none). */
  cmd: z.optional(z.array(z.string())),
  /** Added to (and overriding) the image's Env. */
  env: z._default(z.record(z.string(), z.string()), {}),
  /** Where the workload serves HTTP; default port: the image's first exposed TCP port, else 80. */
  base_url: z.optional(Workload.def.shape.base_url),
  /** Replaces the image's WorkingDir. */
  workdir: Workload.def.shape.workdir,
  /** Replaces the image's User. */
  user: Workload.def.shape.user,
});
/** The `[workload]` section of `oci_rootfs`. */
export type OciWorkloadSection = z.infer<typeof OciWorkloadSection>;

/** The `oci_rootfs` build config, as the schema checks it (`source` is checked separately). */
export const OciRootfsConfigSchema = z.strictObject({
  version: ConfigVersion,
  strategy: z.literal("oci_rootfs"),
  /** Name, version and description; each defaults to the image's. */
  plugin: z._default(
    z.strictObject({
      name: z.optional(PluginName),
      version: z.optional(PluginVersion),
      description: z.optional(z.string()),
    }),
    {},
  ),
  source: z.optional(OciSourceSection),
  output: z._default(z.strictObject({ dir: OUTPUT_DIR }), { dir: "." }),
  resources: z._default(ResourcesSection, DEFAULT_RESOURCES),
  workload: z._default(OciWorkloadSection, { env: {} }),
  /** Replaces the TCP check on the image's first exposed port. */
  health_check: z.optional(HealthCheck),
  actions: z._default(z.record(z.string(), Action), {}),
  restart: z.optional(RestartPolicy),
  labels: z._default(z.record(z.string(), z.string()), {}),
});

/** A parsed `oci_rootfs` build config: defaults applied, `[source]` names exactly one image. */
export type OciRootfsConfig = Omit<z.infer<typeof OciRootfsConfigSchema>, "source"> & {
  source: OciSourceSection;
};

/** Where an `oci_rootfs` build takes its image from, with the config key naming it. */
export type OciSource =
  | { kind: "image"; field: "source.image"; ref: string; insecure: boolean }
  | { kind: "oci_layout"; field: "source.oci_layout"; path: string; tag?: string }
  | { kind: "docker_archive"; field: "source.docker_archive"; path: string; tag?: string };

/**
 * The image a parsed `oci_rootfs` config names. Paths stay as written (relative to the config
 * file).
 *
 * @example
 * ```ts
 * import { ociSource } from "./oci_config.ts";
 * const s = ociSource({ image: "127.0.0.1:5000/demo/web:1.0", insecure_registry: true });
 * console.assert(s.kind === "image" && s.insecure && s.field === "source.image");
 * ```
 */
export function ociSource(source: OciSourceSection): OciSource {
  const tag = source.tag === undefined ? {} : { tag: source.tag };
  if (source.oci_layout !== undefined) {
    return { kind: "oci_layout", field: "source.oci_layout", path: source.oci_layout, ...tag };
  }
  if (source.docker_archive !== undefined) {
    return {
      kind: "docker_archive",
      field: "source.docker_archive",
      path: source.docker_archive,
      ...tag,
    };
  }
  return {
    kind: "image",
    field: "source.image",
    ref: source.image ?? "",
    insecure: source.insecure_registry ?? false,
  };
}

/** A problem with one key of the config. */
export interface KeyIssue {
  path: PropertyKey[];
  message: string;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

const KINDS = OCI_SOURCE_KINDS.join(", ").replace(/, (?=[^,]*$)/, " or ");
const SOURCE_EXAMPLE =
  '[source] image = "registry:5000/repo:tag", oci_layout = "<dir>" or docker_archive = "<file.tar>"';

/**
 * The problems of an `oci_rootfs` config's `[source]` that its schema cannot see: no image or
 * more than one, a reference that does not parse, `tag` or `insecure_registry` where they do
 * not apply. `raw` is the whole config as read from TOML; wrong types are left to the schema.
 *
 * @example
 * ```ts
 * import { ociSourceIssues } from "./oci_config.ts";
 * const [issue] = ociSourceIssues({ source: { image: "a:1", oci_layout: "./layout" } });
 * console.assert(issue?.path.join(".") === "source" && issue.message.includes("only one"));
 * ```
 */
export function ociSourceIssues(raw: unknown): KeyIssue[] {
  const source = isTable(raw) ? raw.source : undefined;
  if (source === undefined) {
    return [{ path: ["source"], message: `is required: name the image with ${SOURCE_EXAMPLE}` }];
  }
  if (!isTable(source)) return [];
  const given = OCI_SOURCE_KINDS.filter((k) => source[k] !== undefined);
  if (given.length === 0) {
    return [{ path: ["source"], message: `names no image: set one of ${KINDS}` }];
  }
  if (given.length > 1) {
    return [{
      path: ["source"],
      message: `sets ${given.join(" and ")}: give only one of ${KINDS}`,
    }];
  }
  const issues: KeyIssue[] = [];
  if (typeof source.image === "string" && source.image !== "") {
    try {
      parseImageRef(source.image);
    } catch (err) {
      issues.push({ path: ["source", "image"], message: (err as Error).message });
    }
  }
  if (source.image !== undefined && source.tag !== undefined) {
    issues.push({
      path: ["source", "tag"],
      message: "only applies to oci_layout and docker_archive: put the tag in source.image " +
        '(e.g. "registry:5000/repo:1.0")',
    });
  }
  if (source.image === undefined && source.insecure_registry === true) {
    issues.push({
      path: ["source", "insecure_registry"],
      message: `only applies to source.image (a registry), not source.${given[0]}`,
    });
  }
  return issues;
}
