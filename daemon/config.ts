/**
 * Loads volantd's configuration: a YAML or JSON file (`--config`, `VOLANT_CONFIG`, or
 * `/etc/volant/config.yaml` when present), validated by {@linkcode DaemonConfig}, with
 * environment overrides, and the derived defaults filled in (socket, guest dir).
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { DaemonConfig, VolantError } from "../schema/mod.ts";
import { poolFromConfig } from "./network/pool.ts";

/** Where the config file is looked for when neither `--config` nor `VOLANT_CONFIG` names one. */
export const DEFAULT_CONFIG_PATH = "/etc/volant/config.yaml";

/** The config with every derived default resolved: the socket path and guest dir are set. */
export type ResolvedConfig = DaemonConfig & {
  api: DaemonConfig["api"] & { socket: string };
  guest: DaemonConfig["guest"] & { dir: string };
  hypervisor: DaemonConfig["hypervisor"] & { boot_verdicts: string };
};

/** Environment variable → dotted config key it overrides. */
export const ENV_OVERRIDES: Readonly<Record<string, string>> = {
  VOLANT_STATE_DIR: "state_dir",
  VOLANT_RUNTIME_DIR: "runtime_dir",
  VOLANT_LOG_DIR: "log_dir",
  VOLANT_SOCKET: "api.socket",
  VOLANT_API_TCP: "api.tcp",
  VOLANT_NETNS: "network.namespace",
  VOLANT_HYPERVISOR: "hypervisor.name",
  VOLANT_ACCEL: "hypervisor.accel",
  VOLANT_BOOT_VERDICTS: "hypervisor.boot_verdicts",
  VOLANT_GUEST_DIR: "guest.dir",
};

/** Reads one environment variable; `undefined` when unset. */
export type EnvLookup = (key: string) => string | undefined;

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** Explicit file (`--config`); it must exist. */
  path?: string;
  /** Environment; default `Deno.env.get`. Empty values count as unset. */
  env?: EnvLookup;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (!isRecord(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

function configError(source: string, error: z.ZodError, fromEnv: Map<string, string>): VolantError {
  const issues = error.issues.map((issue) => {
    const field = issue.path.map(String).join(".") || "(top level)";
    const env = fromEnv.get(field);
    return { field, message: env ? `${issue.message} (from ${env})` : issue.message };
  });
  const text = issues.map((i) => `${i.field}: ${i.message}`).join("; ");
  return new VolantError("invalid_argument", `Invalid config ${source}: ${text}`, { issues });
}

/**
 * Validates a raw config object (as read from the file), applies environment overrides and
 * resolves derived defaults; the `network` section must describe a usable IPv4 pool (see
 * `poolFromConfig`). Errors are `invalid_argument` naming the key.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const c = parseConfig({ runtime_dir: "/tmp/v" }, () => undefined);
 * console.assert(c.api.socket === "/tmp/v/volantd.sock");
 * ```
 */
export function parseConfig(raw: unknown, env: EnvLookup, source = "(defaults)"): ResolvedConfig {
  if (raw === null || raw === undefined) raw = {};
  if (!isRecord(raw)) {
    throw new VolantError(
      "invalid_argument",
      `Invalid config ${source}: the top level must be a mapping of keys to values`,
    );
  }
  const merged = structuredClone(raw);
  const fromEnv = new Map<string, string>();
  for (const [variable, key] of Object.entries(ENV_OVERRIDES)) {
    const value = env(variable);
    if (value === undefined || value === "") continue;
    setPath(merged, key, value);
    fromEnv.set(key, variable);
  }
  const parsed = DaemonConfig.safeParse(merged);
  if (!parsed.success) throw configError(source, parsed.error, fromEnv);
  const config = parsed.data;
  try {
    poolFromConfig(config.network);
  } catch (err) {
    if (!(err instanceof VolantError)) throw err;
    throw new VolantError(err.code, `Invalid config ${source}: ${err.message}`, err.details);
  }
  return {
    ...config,
    api: { ...config.api, socket: config.api.socket ?? `${config.runtime_dir}/volantd.sock` },
    guest: { ...config.guest, dir: config.guest.dir ?? `${config.state_dir}/guest` },
    hypervisor: {
      ...config.hypervisor,
      boot_verdicts: config.hypervisor.boot_verdicts ?? `${config.state_dir}/boot-verdicts.json`,
    },
  };
}

function parseText(path: string, text: string): unknown {
  try {
    return path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new VolantError(
      "invalid_argument",
      `Cannot parse config ${path}: ${(err as Error).message}`,
      { path },
    );
  }
}

/**
 * Finds, reads and validates the config. A missing default file gives the defaults; a missing
 * explicit file (`path` or `VOLANT_CONFIG`) is a `not_found` error.
 *
 * @example
 * ```ts ignore
 * import { loadConfig } from "./config.ts";
 * const config = await loadConfig({ path: "/etc/volant/config.yaml" });
 * console.log(config.api.socket);
 * ```
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<ResolvedConfig> {
  const env = options.env ?? ((key: string) => Deno.env.get(key));
  const envPath = env("VOLANT_CONFIG");
  const explicit = options.path ?? (envPath === "" ? undefined : envPath);
  const path = explicit ?? DEFAULT_CONFIG_PATH;
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new VolantError("invalid_argument", `Cannot read config ${path}: ${String(err)}`, {
        path,
      });
    }
    if (explicit !== undefined) {
      throw new VolantError("not_found", `Config file ${path} does not exist`, { path });
    }
  }
  const raw = text === undefined ? {} : parseText(path, text);
  return parseConfig(raw, env, text === undefined ? "(defaults)" : path);
}
