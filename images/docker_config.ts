/**
 * Registry credentials from Docker's client config: `auths.<registry>.auth` (base64
 * `user:password`, or `username`/`password` fields) in `config.json` under `$DOCKER_CONFIG`
 * or `~/.docker`. Credential helpers (`credsStore`, `credHelpers`) and identity tokens are
 * not run or used.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { DOCKER_HUB_REGISTRY } from "./reference.ts";

/** A user name and password for one registry, and the file they came from. */
export interface RegistryCredentials {
  /** User name. */
  username: string;
  /** Password or access token. */
  password: string;
  /** The config file they were read from (for messages). */
  source: string;
}

const HUB_KEYS = ["index.docker.io", "docker.io", "registry-1.docker.io"];

/**
 * The directory holding Docker's `config.json`: `$DOCKER_CONFIG`, else `$HOME/.docker`.
 *
 * @example
 * ```ts
 * import { dockerConfigDir } from "./docker_config.ts";
 * console.assert(dockerConfigDir({ DOCKER_CONFIG: "/etc/docker-client" }) === "/etc/docker-client");
 * ```
 */
export function dockerConfigDir(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): string {
  if (env.DOCKER_CONFIG) return env.DOCKER_CONFIG;
  return `${env.HOME ?? "/root"}/.docker`;
}

/** An `auths` key reduced to its host: `https://index.docker.io/v1/` → `index.docker.io`. */
function keyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "").toLowerCase();
}

/**
 * The credentials `config.json` in `dir` holds for `registry` (a host[:port] as in
 * {@linkcode ImageReference.registry}), or null when there are none. Docker Hub matches its
 * usual keys (`https://index.docker.io/v1/`, `docker.io`, …). A malformed file or entry is an
 * `invalid_argument` error naming the file and key.
 *
 * @example
 * ```ts ignore
 * import { loadCredentials } from "./docker_config.ts";
 * const creds = await loadCredentials("ghcr.io");
 * ```
 */
export async function loadCredentials(
  registry: string,
  dir: string = dockerConfigDir(),
): Promise<RegistryCredentials | null> {
  const file = `${dir}/config.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (e) {
    throw new VolantError(
      "invalid_argument",
      `${file} is not valid JSON: ${e instanceof Error ? e.message : e}`,
      { file },
    );
  }
  const auths = (config as { auths?: unknown } | null)?.auths;
  if (typeof auths !== "object" || auths === null) return null;
  const wanted = registry === DOCKER_HUB_REGISTRY ? HUB_KEYS : [registry.toLowerCase()];
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    if (!wanted.includes(keyHost(key))) continue;
    const bad = (why: string): never => {
      throw new VolantError("invalid_argument", `${file}: auths.${key}: ${why}`, { file, key });
    };
    if (typeof entry !== "object" || entry === null) bad("must be an object");
    const e = entry as Record<string, unknown>;
    if (typeof e.auth === "string" && e.auth !== "") {
      let decoded = "";
      try {
        decoded = new TextDecoder().decode(Uint8Array.from(atob(e.auth), (c) => c.charCodeAt(0)));
      } catch {
        bad("auth is not base64");
      }
      const colon = decoded.indexOf(":");
      if (colon < 0) bad("auth must be base64 of user:password");
      return {
        username: decoded.slice(0, colon),
        password: decoded.slice(colon + 1),
        source: file,
      };
    }
    if (typeof e.username === "string" && typeof e.password === "string") {
      return { username: e.username, password: e.password, source: file };
    }
  }
  return null;
}
