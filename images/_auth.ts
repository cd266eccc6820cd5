/**
 * Registry authentication: `WWW-Authenticate` challenges and the bearer token request of the
 * Docker token protocol (`GET <realm>?service=…&scope=…`, Basic credentials when known,
 * answer `{token}` or `{access_token}`).
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import type { RegistryCredentials } from "./docker_config.ts";

/** A parsed `WWW-Authenticate` challenge. */
export interface Challenge {
  /** `bearer` or `basic` (lowercase). */
  scheme: string;
  /** Its parameters (`realm`, `service`, `scope`, …). */
  params: Record<string, string>;
}

/**
 * Parses the first challenge of a `WWW-Authenticate` header; null when there is none.
 *
 * @example
 * ```ts
 * import { parseChallenge } from "./_auth.ts";
 * const c = parseChallenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"');
 * console.assert(c?.scheme === "bearer" && c.params.service === "reg");
 * ```
 */
export function parseChallenge(header: string | null): Challenge | null {
  if (header === null) return null;
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header);
  if (m === null) return null;
  const params: Record<string, string> = {};
  const re = /\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/gy;
  const rest = m[2]!;
  let p: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (p = re.exec(rest)) !== null) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

/** `Basic <base64 user:password>`. */
export function basicAuth(creds: RegistryCredentials): string {
  const bytes = new TextEncoder().encode(`${creds.username}:${creds.password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** The text after `error sending request for url (…): ` in a fetch failure, or the message. */
export function fetchFailure(e: unknown): string {
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e;
  const text = cause instanceof Error ? cause.message : String(cause);
  return text.replace(/^error sending request for url \([^)]*\): /, "");
}

/**
 * Fetches a bearer token for `scope` from the challenge's realm, with Basic credentials when
 * given. Failures are `artifact_unavailable` errors naming the realm and, for refusals, where
 * the credentials came from.
 *
 * @example
 * ```ts ignore
 * import { fetchToken, parseChallenge } from "./_auth.ts";
 * const token = await fetchToken(parseChallenge(res.headers.get("www-authenticate"))!, "repository:a:pull", null);
 * ```
 */
export async function fetchToken(
  challenge: Challenge,
  scope: string,
  creds: RegistryCredentials | null,
  options: { registry: string; userAgent: string; signal?: AbortSignal },
): Promise<string> {
  const realm = challenge.params.realm;
  if (realm === undefined || !/^https?:\/\//.test(realm)) {
    throw new VolantError(
      "artifact_unavailable",
      `Registry ${options.registry} asked for a bearer token without a usable realm (${
        JSON.stringify(realm ?? null)
      })`,
    );
  }
  const url = new URL(realm);
  if (challenge.params.service !== undefined) {
    url.searchParams.set("service", challenge.params.service);
  }
  for (const s of (challenge.params.scope ?? scope).split(" ")) {
    if (s !== "") url.searchParams.append("scope", s);
  }
  const headers = new Headers({ "User-Agent": options.userAgent });
  if (creds !== null) headers.set("Authorization", basicAuth(creds));
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: options.signal });
  } catch (e) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new VolantError(
      "artifact_unavailable",
      `Token server ${url.origin}${url.pathname} for registry ${options.registry} is not reachable: ${
        fetchFailure(e)
      }`,
      { realm },
      { cause: e },
    );
  }
  const body = await res.text();
  if (res.status === 401 || res.status === 403) {
    throw new VolantError(
      "artifact_unavailable",
      `Token server ${url.origin}${url.pathname} refused ${
        creds === null
          ? "anonymous access"
          : `the credentials for ${options.registry} from ${creds.source}`
      } to ${scope} (HTTP ${res.status}: ${body.slice(0, 200).trim()})`,
      { realm, status: res.status },
    );
  }
  if (!res.ok) {
    throw new VolantError(
      "artifact_unavailable",
      `Token server ${url.origin}${url.pathname} answered HTTP ${res.status}: ${
        body.slice(0, 200).trim()
      }`,
      { realm, status: res.status },
    );
  }
  let json: { token?: unknown; access_token?: unknown } = {};
  try {
    json = JSON.parse(body);
  } catch {
    // Reported below.
  }
  const token = typeof json.token === "string" && json.token !== ""
    ? json.token
    : typeof json.access_token === "string" && json.access_token !== ""
    ? json.access_token
    : undefined;
  if (token === undefined) {
    throw new VolantError(
      "artifact_unavailable",
      `Token server ${url.origin}${url.pathname} answered without a token`,
      { realm },
    );
  }
  return token;
}
