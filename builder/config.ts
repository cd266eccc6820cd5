/**
 * The build config (`app.toml`) of `volar build`: what goes into a plugin's initramfs
 * appliance and the runtime fields of its manifest. TOML read with `smol-toml`, validated with
 * one strict zod schema (unknown keys are errors) that reuses the manifest's own sections, and
 * errors that name the key path the way TOML writes it (`mappings."./x"`).
 *
 * @module
 */
import * as z from "zod/mini";
import { parse as parseToml, TomlError } from "smol-toml";
import {
  Action,
  HealthCheck,
  InitConfig,
  Manifest,
  PluginName,
  RestartPolicy,
  VolantError,
  Workload,
} from "../schema/mod.ts";

/** Where a guest path may go: absolute, no `.`/`..` segments, no NUL. */
const GuestPath = z.string().check(
  z.refine((p) => p.startsWith("/"), "must be an absolute guest path like /usr/bin/app"),
  z.refine(
    (p) => !p.split("/").some((s) => s === ".." || s === "."),
    "must not contain '.' or '..' segments (it would leave or blur the guest path)",
  ),
  z.refine((p) => !p.includes("\0"), "must not contain NUL"),
);

/** The `[plugin]` section: who the plugin is. */
export const PluginSection = z.strictObject({
  name: PluginName,
  version: z.string().check(z.regex(/^[0-9A-Za-z.+_-]{1,64}$/, "must be a version like 1.2.0")),
  description: z.optional(z.string()),
});

/** The `[source]` section. */
export const SourceSection = z.strictObject({
  /** Include the host's static busybox (`/bin/busybox`) and a link for each of its applets. */
  busybox: z._default(z.boolean(), false),
});

/** The `[output]` section: where the archive and the manifest go, and how the archive is packed. */
export const OutputSection = z.strictObject({
  /** Output directory, relative to the config file; default the config file's directory. */
  dir: z._default(z.string().check(z.minLength(1, "must not be empty")), "."),
  compression: z._default(z.enum(["gzip", "zstd", "none"]), "gzip"),
});

/** The `[resources]` section (defaults: 1 vCPU, 256 MiB). */
export const ResourcesSection = Manifest.def.shape.resources;

/** The whole build config. */
export const BuildConfig = z.strictObject({
  version: z.literal("1", { error: 'must be "1" (the only build config version)' }),
  strategy: z._default(z.enum(["initramfs", "oci_rootfs"]), "initramfs"),
  plugin: PluginSection,
  source: z._default(SourceSection, { busybox: false }),
  /** Host path (relative to the config file) → absolute guest path. */
  mappings: z._default(z.record(z.string().check(z.minLength(1)), GuestPath), {}),
  init: z._default(InitConfig, { mode: "kestrel" }),
  output: z._default(OutputSection, { dir: ".", compression: "gzip" }),
  resources: z._default(ResourcesSection, { cpu_cores: 1, memory_mb: 256 }),
  workload: Workload,
  health_check: z.optional(HealthCheck),
  actions: z._default(z.record(z.string(), Action), {}),
  restart: z.optional(RestartPolicy),
  labels: z._default(z.record(z.string(), z.string()), {}),
});
/** A parsed build config (defaults applied). */
export type BuildConfig = z.infer<typeof BuildConfig>;
/** A build config as written. */
export type BuildConfigInput = z.input<typeof BuildConfig>;

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

/**
 * Parses and validates a build config's TOML text. `file` names the config in messages.
 * Every problem is reported at once, each with its key path; `strategy = "oci_rootfs"` is
 * refused (not supported by this build yet).
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
 * console.assert(config.output.compression === "gzip" && config.init.mode === "kestrel");
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
  const result = BuildConfig.safeParse(raw, { error: issueMessage });
  if (!result.success) {
    const issues = result.error.issues.flatMap((issue) =>
      issue.code === "unrecognized_keys"
        ? issue.keys.map((key) => ({
          field: formatKeyPath([...issue.path, key]),
          message: "unknown key",
        }))
        : [{ field: formatKeyPath(issue.path), message: issue.message }]
    );
    throw new VolantError(
      "invalid_argument",
      `${file}: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`,
      { file, field: issues[0]?.field, issues },
    );
  }
  const config = result.data;
  if (config.strategy === "oci_rootfs") {
    throw configError(
      file,
      ["strategy"],
      '"oci_rootfs" is not supported by this build yet (Volant issue 7); use "initramfs"',
    );
  }
  return config;
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
