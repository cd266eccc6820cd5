/**
 * The build config (`app.toml`) of `volar build`. TOML read with `smol-toml`; the `strategy`
 * key picks the schema: `initramfs` (the default: mapped files → an initramfs appliance) or
 * `oci_rootfs` (an OCI image → its erofs root filesystem, see `oci_config.ts`). Each schema is
 * strict (unknown keys are errors) and reuses the manifest's own sections; errors name the key
 * path the way TOML writes it (`mappings."./x"`).
 *
 * @module
 */
import * as z from "zod/mini";
import { parse as parseToml, TomlError } from "smol-toml";
import {
  Action,
  HealthCheck,
  InitConfig,
  RestartPolicy,
  VolantError,
  Workload,
} from "../schema/mod.ts";
import {
  type KeyIssue,
  type OciRootfsConfig,
  OciRootfsConfigSchema,
  ociSourceIssues,
} from "./oci_config.ts";
import {
  ConfigVersion,
  DEFAULT_RESOURCES,
  OUTPUT_DIR,
  PluginSection,
  ResourcesSection,
  STRATEGIES,
  type Strategy,
} from "./sections.ts";

export { PluginSection, ResourcesSection } from "./sections.ts";

/** Where a guest path may go: absolute, no `.`/`..` segments, no NUL. */
const GuestPath = z.string().check(
  z.refine((p) => p.startsWith("/"), "must be an absolute guest path like /usr/bin/app"),
  z.refine(
    (p) => !p.split("/").some((s) => s === ".." || s === "."),
    "must not contain '.' or '..' segments (it would leave or blur the guest path)",
  ),
  z.refine((p) => !p.includes("\0"), "must not contain NUL"),
);

/** The `[source]` section of `initramfs`. */
export const SourceSection = z.strictObject({
  /** Include the host's static busybox (`/bin/busybox`) and a link for each of its applets. */
  busybox: z._default(z.boolean(), false),
});

/** The `[output]` section of `initramfs`: where the outputs go, and how the archive is packed. */
export const OutputSection = z.strictObject({
  /** Output directory, relative to the config file; default the config file's directory. */
  dir: OUTPUT_DIR,
  compression: z._default(z.enum(["gzip", "zstd", "none"]), "gzip"),
});

/** The `initramfs` build config: mapped host files → an initramfs appliance. */
export const InitramfsConfig = z.strictObject({
  version: ConfigVersion,
  strategy: z._default(z.literal("initramfs"), "initramfs"),
  plugin: PluginSection,
  source: z._default(SourceSection, { busybox: false }),
  /** Host path (relative to the config file) → absolute guest path. */
  mappings: z._default(z.record(z.string().check(z.minLength(1)), GuestPath), {}),
  init: z._default(InitConfig, { mode: "kestrel" }),
  output: z._default(OutputSection, { dir: ".", compression: "gzip" }),
  resources: z._default(ResourcesSection, DEFAULT_RESOURCES),
  workload: Workload,
  health_check: z.optional(HealthCheck),
  actions: z._default(z.record(z.string(), Action), {}),
  restart: z.optional(RestartPolicy),
  labels: z._default(z.record(z.string(), z.string()), {}),
});
/** A parsed `initramfs` build config (defaults applied). */
export type InitramfsConfig = z.infer<typeof InitramfsConfig>;

/** A parsed build config of either strategy (defaults applied). */
export type BuildConfig = InitramfsConfig | OciRootfsConfig;
/** A build config as written. */
export type BuildConfigInput =
  | z.input<typeof InitramfsConfig>
  | z.input<typeof OciRootfsConfigSchema>;

/**
 * Writes a key path the way TOML does: bare keys plain, others quoted; indexes as `[n]`.
 *
 * @example
 * ```ts
 * import { formatKeyPath } from "./config.ts";
 * console.assert(formatKeyPath(["mappings", "./x"]) === 'mappings."./x"');
 * console.assert(formatKeyPath(["workload", "entrypoint", 0]) === "workload.entrypoint[0]");
 * ```
 */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else {
      const text = String(key);
      const part = /^[A-Za-z0-9_-]+$/.test(text) ? text : JSON.stringify(text);
      out += out === "" ? part : `.${part}`;
    }
  }
  return out || "(top level)";
}

/**
 * An `invalid_argument` error about one config key: `<file>: <key path>: <message>`, with
 * `details.field` set to the key path.
 *
 * @example
 * ```ts
 * import { configError } from "./config.ts";
 * const err = configError("app.toml", ["mappings", "./x"], "source does not exist");
 * console.assert(err.message === 'app.toml: mappings."./x": source does not exist');
 * ```
 */
export function configError(
  file: string,
  path: readonly PropertyKey[],
  message: string,
): VolantError {
  const field = formatKeyPath(path);
  return new VolantError("invalid_argument", `${file}: ${field}: ${message}`, { file, field });
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "a table";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

/** Messages for the issues zod/mini leaves as "Invalid input" (no locale is loaded). */
function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined
        ? "is required"
        : `expected ${issue.expected === "int" ? "an integer" : issue.expected}, got ${
          describe(issue.input)
        }`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${
        describe(issue.input)
      }`;
    case "too_small":
      return issue.origin === "array"
        ? `must have at least ${issue.minimum} item(s)`
        : `must be at least ${issue.minimum}`;
    case "too_big":
      return issue.origin === "array"
        ? `must have at most ${issue.maximum} item(s)`
        : `must be at most ${issue.maximum}`;
    default:
      return undefined;
  }
}

/** What an unknown key means under the other strategy, by key path. */
const ELSEWHERE: Readonly<Record<Strategy, Readonly<Record<string, string>>>> = {
  initramfs: {
    "source.image": 'only with strategy = "oci_rootfs"',
    "source.oci_layout": 'only with strategy = "oci_rootfs"',
    "source.docker_archive": 'only with strategy = "oci_rootfs"',
    "source.tag": 'only with strategy = "oci_rootfs"',
    "source.insecure_registry": 'only with strategy = "oci_rootfs"',
    "workload.cmd": 'only with strategy = "oci_rootfs"',
  },
  oci_rootfs: {
    mappings: 'not used by strategy "oci_rootfs": the files come from the image',
    init: 'not used by strategy "oci_rootfs": kestrel runs the image\'s workload',
    "source.busybox": 'not used by strategy "oci_rootfs": the files come from the image',
    "output.compression": 'not used by strategy "oci_rootfs": the rootfs is an erofs image',
    "workload.type": 'not used by strategy "oci_rootfs"',
  },
};

function strategyIssue(raw: unknown): KeyIssue | Strategy {
  const value = raw !== null && typeof raw === "object" && !Array.isArray(raw)
    ? (raw as Record<string, unknown>).strategy
    : undefined;
  if (value === undefined) return "initramfs";
  if (STRATEGIES.includes(value as Strategy)) return value as Strategy;
  return {
    path: ["strategy"],
    message: `must be one of ${STRATEGIES.map((s) => JSON.stringify(s)).join(", ")}, got ${
      describe(value)
    }`,
  };
}

function invalid(file: string, issues: readonly KeyIssue[]): VolantError {
  const list = issues.map((i) => ({ field: formatKeyPath(i.path), message: i.message }));
  return new VolantError(
    "invalid_argument",
    `${file}: ${list.map((i) => `${i.field}: ${i.message}`).join("; ")}`,
    { file, field: list[0]?.field, issues: list },
  );
}

/**
 * Parses and validates a build config's TOML text. `file` names the config in messages.
 * The `strategy` key picks the schema (`initramfs` by default); every problem is then reported
 * at once, each with its key path.
 *
 * @example
 * ```ts
 * import { parseBuildConfig } from "./config.ts";
 * const config = parseBuildConfig(`
 * version = "1"
 * [plugin]
 * name = "hello"
 * version = "0.1.0"
 * [mappings]
 * "./hello" = "/usr/bin/hello"
 * [workload]
 * entrypoint = ["/usr/bin/hello"]
 * base_url = "http://127.0.0.1:8080"
 * `, "app.toml");
 * console.assert(config.strategy === "initramfs" && config.output.dir === ".");
 * const oci = parseBuildConfig(`
 * version = "1"
 * strategy = "oci_rootfs"
 * [source]
 * image = "127.0.0.1:5000/demo/web:1.0"
 * insecure_registry = true
 * `, "web.toml");
 * console.assert(oci.strategy === "oci_rootfs" && oci.source.image !== undefined);
 * ```
 */
export function parseBuildConfig(text: string, file: string): BuildConfig {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const first = err.message.split("\n")[0]?.replace(/^Invalid TOML document: /, "");
    throw new VolantError(
      "invalid_argument",
      `${file}: invalid TOML at line ${err.line}, column ${err.column}: ${first}`,
      { file, line: err.line, column: err.column },
    );
  }
  const strategy = strategyIssue(raw);
  if (typeof strategy !== "string") throw invalid(file, [strategy]);
  const schema = strategy === "oci_rootfs" ? OciRootfsConfigSchema : InitramfsConfig;
  const result = schema.safeParse(raw, { error: issueMessage });
  const issues: KeyIssue[] = result.success
    ? []
    : result.error.issues.flatMap((issue) =>
      issue.code === "unrecognized_keys"
        ? issue.keys.map((key) => {
          const path = [...issue.path, key];
          const hint = ELSEWHERE[strategy][formatKeyPath(path)];
          return { path, message: hint === undefined ? "unknown key" : `unknown key (${hint})` };
        })
        : [{ path: issue.path, message: issue.message }]
    );
  if (strategy === "oci_rootfs") issues.push(...ociSourceIssues(raw));
  if (issues.length > 0 || !result.success) throw invalid(file, issues);
  return result.data as BuildConfig;
}

/**
 * Reads and validates a build config file.
 *
 * @example
 * ```ts ignore
 * import { loadBuildConfig } from "./config.ts";
 * const config = await loadBuildConfig("app.toml");
 * ```
 */
export async function loadBuildConfig(path: string): Promise<BuildConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new VolantError(
        "not_found",
        `Build config ${path} does not exist (write a starter one with volar build --init ${path})`,
        { file: path },
      );
    }
    if (err instanceof Deno.errors.IsADirectory) {
      throw new VolantError("invalid_argument", `Build config ${path} is a directory`, {
        file: path,
      });
    }
    throw err;
  }
  return parseBuildConfig(text, path);
}
