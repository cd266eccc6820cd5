/**
 * A client for the OCI distribution API (`/v2/`) over `fetch`: manifests (OCI and Docker v2,
 * indexes and lists included), blobs and tag lists; anonymous access, bearer tokens
 * (401 challenge → token → retry) and Basic credentials from Docker's `config.json`;
 * redirects followed by hand so credentials never go to another host. Every failure is a
 * {@linkcode VolantError} carrying the registry's own error message when it sends one.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { basicAuth, type Challenge, fetchFailure, fetchToken, parseChallenge } from "./_auth.ts";
import type { BlobSource } from "./blob_store.ts";
import { isDigest, sha256Digest } from "./digest.ts";
import { dockerConfigDir, loadCredentials, type RegistryCredentials } from "./docker_config.ts";
import { errorText, readLimited, registryErrors } from "./_http.ts";
import { MANIFEST_ACCEPT } from "./manifest.ts";
import { DOCKER_HUB, DOCKER_HUB_REGISTRY } from "./reference.ts";

/** Options of {@linkcode RegistryClient}. */
export interface RegistryClientOptions {
  /** Plain HTTP instead of HTTPS (for registries without TLS, like a local `docker-registry`). */
  insecure?: boolean;
  /** Where Docker's `config.json` is; default `$DOCKER_CONFIG` or `~/.docker`. */
  dockerConfigDir?: string;
  /** Credentials to use instead of Docker's config; null for anonymous access only. */
  credentials?: RegistryCredentials | null;
  /** `User-Agent` header. */
  userAgent?: string;
}

/** A manifest or index as the registry sent it. */
export interface FetchedManifest {
  /** The exact bytes (their digest identifies the image). */
  bytes: Uint8Array;
  /** The `Content-Type` header. */
  mediaType: string | null;
  /** `sha256:<hex>` of the bytes. */
  digest: string;
}

/** Per-request options. */
export interface RequestOptions {
  /** Cancels the request. */
  signal?: AbortSignal;
}

const MAX_MANIFEST = 4 << 20;
const MAX_REDIRECTS = 10;
const TLS_HINT = /InvalidContentType|corrupt message|tls|ssl|certificate|handshake/i;

/**
 * One registry host. Tokens are cached per repository scope for the client's lifetime.
 *
 * @example Fetch a manifest from a local registry
 * ```ts ignore
 * import { RegistryClient } from "./registry_client.ts";
 * const client = new RegistryClient("127.0.0.1:5000", { insecure: true });
 * const m = await client.getManifest("demo/nginx", "1.0");
 * console.log(m.digest, m.mediaType);
 * ```
 */
export class RegistryClient {
  /** The registry host[:port]. */
  readonly registry: string;
  /** `https://host` or `http://host`. */
  readonly base: string;
  #options: RegistryClientOptions;
  #creds: Promise<RegistryCredentials | null> | undefined;
  #auth = new Map<string, string>();
  #requests = 0;

  /** A client for `registry` (host[:port], e.g. `127.0.0.1:5000` or `registry-1.docker.io`). */
  constructor(registry: string, options: RegistryClientOptions = {}) {
    this.registry = registry;
    this.base = `${options.insecure ? "http" : "https"}://${registry}`;
    this.#options = options;
  }

  /** HTTP requests sent so far (registry and token server). */
  get requests(): number {
    return this.#requests;
  }

  /**
   * The manifest or index `reference` (tag or digest) of `repository`, verified against the
   * digest when one is asked for or announced (`Docker-Content-Digest`).
   *
   * Errors: `not_found` naming the unknown repository or tag (with the tags it has),
   * `checksum_mismatch`, `artifact_unavailable` (unreachable, refused, 5xx).
   */
  async getManifest(
    repository: string,
    reference: string,
    options: RequestOptions = {},
  ): Promise<FetchedManifest> {
    const res = await this.#request(`/v2/${repository}/manifests/${reference}`, repository, {
      accept: MANIFEST_ACCEPT.join(", "),
      signal: options.signal,
    });
    if (res.status === 404) throw await this.#notFound(res, repository, reference, options.signal);
    if (!res.ok) throw await this.#failure(res, repository, `manifest ${reference}`);
    const bytes = await readLimited(
      res,
      MAX_MANIFEST,
      `${this.#name(repository)} manifest ${reference}`,
    );
    const digest = sha256Digest(bytes);
    const announced = res.headers.get("docker-content-digest");
    const expected = isDigest(reference)
      ? reference
      : announced !== null && isDigest(announced)
      ? announced
      : null;
    if (expected !== null && expected !== digest) {
      throw new VolantError(
        "checksum_mismatch",
        `Manifest ${reference} of ${this.#name(repository)} has digest ${digest}, not ${expected}`,
        { expected, actual: digest },
      );
    }
    return { bytes, mediaType: res.headers.get("content-type"), digest };
  }

  /**
   * A blob's body and announced size. The caller verifies the digest while storing it (see
   * {@linkcode BlobStore.ensure}).
   */
  async getBlob(
    repository: string,
    digest: string,
    options: RequestOptions = {},
  ): Promise<BlobSource> {
    const res = await this.#request(`/v2/${repository}/blobs/${digest}`, repository, options);
    if (res.status === 404) {
      const why = await errorText(res);
      throw new VolantError(
        "not_found",
        `Blob ${digest} of ${this.#name(repository)} is not on the registry${
          why ? ` (${why})` : ""
        }`,
        { digest },
      );
    }
    if (!res.ok || res.body === null) throw await this.#failure(res, repository, `blob ${digest}`);
    const length = res.headers.get("content-length");
    return {
      body: res.body,
      size: length !== null && /^\d+$/.test(length) ? Number(length) : null,
    };
  }

  /** The tags of `repository` (the registry's first page). */
  async listTags(repository: string, options: RequestOptions = {}): Promise<string[]> {
    const res = await this.#request(`/v2/${repository}/tags/list`, repository, options);
    if (res.status === 404) {
      const why = await errorText(res);
      throw new VolantError(
        "not_found",
        `Repository ${this.#name(repository)} does not exist${why ? ` (${why})` : ""}`,
        { repository },
      );
    }
    if (!res.ok) throw await this.#failure(res, repository, "tag list");
    const body = await res.json().catch(() => ({})) as { tags?: unknown };
    return Array.isArray(body.tags)
      ? body.tags.filter((t): t is string => typeof t === "string")
      : [];
  }

  #name(repository: string): string {
    return `${this.registry === DOCKER_HUB_REGISTRY ? DOCKER_HUB : this.registry}/${repository}`;
  }

  #credentials(): Promise<RegistryCredentials | null> {
    if (this.#options.credentials !== undefined) return Promise.resolve(this.#options.credentials);
    this.#creds ??= loadCredentials(this.registry, this.#options.dockerConfigDir);
    return this.#creds;
  }

  /** Sends a GET, answering one 401 challenge (bearer token or Basic) and retrying once. */
  async #request(
    path: string,
    repository: string,
    options: { accept?: string; signal?: AbortSignal | undefined },
  ): Promise<Response> {
    const scope = `repository:${repository}:pull`;
    for (let attempt = 0;; attempt++) {
      const headers = new Headers({ "User-Agent": this.#userAgent() });
      if (options.accept !== undefined) headers.set("Accept", options.accept);
      const auth = this.#auth.get(scope);
      if (auth !== undefined) headers.set("Authorization", auth);
      const res = await this.#fetch(`${this.base}${path}`, headers, options.signal);
      if (res.status !== 401 || attempt > 0) return res;
      const challenge = parseChallenge(res.headers.get("www-authenticate"));
      if (challenge === null) return res;
      const answer = await this.#answer(challenge, scope, options.signal);
      if (answer === null) return res;
      await res.body?.cancel();
      this.#auth.set(scope, answer);
    }
  }

  async #answer(
    challenge: Challenge,
    scope: string,
    signal: AbortSignal | undefined,
  ): Promise<string | null> {
    const creds = await this.#credentials();
    if (challenge.scheme === "bearer") {
      this.#requests++;
      const token = await fetchToken(challenge, scope, creds, {
        registry: this.registry,
        userAgent: this.#userAgent(),
        signal,
      });
      return `Bearer ${token}`;
    }
    if (challenge.scheme === "basic" && creds !== null) return basicAuth(creds);
    return null;
  }

  #userAgent(): string {
    return this.#options.userAgent ?? "volant-images/1";
  }

  /** fetch with redirects followed by hand: `Authorization` is dropped when the origin changes. */
  async #fetch(url: string, headers: Headers, signal: AbortSignal | undefined): Promise<Response> {
    let current = new URL(url);
    for (let hops = 0;; hops++) {
      let res: Response;
      this.#requests++;
      try {
        res = await fetch(current, { headers, redirect: "manual", signal });
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        throw this.#unreachable(current, e);
      }
      const location = res.headers.get("location");
      if (res.status < 300 || res.status >= 400 || location === null) return res;
      await res.body?.cancel();
      if (hops >= MAX_REDIRECTS) {
        throw new VolantError(
          "artifact_unavailable",
          `Registry ${this.registry} redirected more than ${MAX_REDIRECTS} times`,
        );
      }
      const next = new URL(location, current);
      if (next.origin !== current.origin) {
        headers = new Headers(headers);
        headers.delete("Authorization");
      }
      current = next;
    }
  }

  #unreachable(url: URL, e: unknown): VolantError {
    const detail = fetchFailure(e);
    const onRegistry = url.host === this.registry;
    let message = onRegistry
      ? `Registry ${this.registry} is not reachable: ${detail}`
      : `Registry ${this.registry} redirected to ${url.origin}, which is not reachable: ${detail}`;
    if (url.protocol === "https:" && onRegistry && TLS_HINT.test(detail)) {
      message +=
        `; if ${this.registry} serves plain HTTP, allow it with --insecure-registry ${this.registry}` +
        " (insecure: true)";
    }
    return new VolantError("artifact_unavailable", message, {
      registry: this.registry,
      url: url.href,
    }, {
      cause: e,
    });
  }

  async #notFound(
    res: Response,
    repository: string,
    reference: string,
    signal: AbortSignal | undefined,
  ): Promise<VolantError> {
    const body = await registryErrors(res);
    const name = this.#name(repository);
    const details = { repository: name, reference };
    if (body.codes.includes("NAME_UNKNOWN")) {
      return new VolantError(
        "not_found",
        `Repository ${name} does not exist on ${this.registry} (${body.text})`,
        details,
      );
    }
    if (isDigest(reference)) {
      return new VolantError(
        "not_found",
        `Manifest ${reference} does not exist in ${name} (${body.text})`,
        details,
      );
    }
    // A registry answers MANIFEST_UNKNOWN for a missing repository too: the tag list tells them apart.
    let tags: string[];
    try {
      tags = await this.listTags(repository, { signal });
    } catch (e) {
      if (e instanceof VolantError && e.code === "not_found") {
        return new VolantError(
          "not_found",
          `Repository ${name} does not exist on ${this.registry}`,
          details,
        );
      }
      return new VolantError(
        "not_found",
        `Tag ${reference} does not exist in ${name} (${body.text})`,
        details,
      );
    }
    const shown = tags.slice(0, 20).join(", ") + (tags.length > 20 ? ", …" : "");
    return new VolantError(
      "not_found",
      `Tag ${reference} does not exist in ${name}; ${
        tags.length === 0 ? "it has no tags" : `its tags: ${shown}`
      }`,
      { ...details, tags },
    );
  }

  async #failure(res: Response, repository: string, what: string): Promise<VolantError> {
    const body = await registryErrors(res);
    const name = this.#name(repository);
    const details = {
      registry: this.registry,
      repository: name,
      status: res.status,
      codes: body.codes,
    };
    const said = body.text === "" ? "" : `: ${body.text}`;
    if (res.status === 401 || res.status === 403) {
      const creds = await this.#credentials().catch(() => null);
      const hint = creds === null
        ? `; the repository may not exist or may need credentials (volar registry login ${this.registry}; or docker login, read from ${
          this.#options.dockerConfigDir ?? dockerConfigDir()
        }/config.json)`
        : `; the credentials from ${creds.source} were not accepted`;
      return new VolantError(
        "artifact_unavailable",
        `Registry ${this.registry} refused access to ${name} (HTTP ${res.status}${said})${hint}`,
        details,
      );
    }
    if (res.status === 429) {
      return new VolantError(
        "artifact_unavailable",
        `Registry ${this.registry} is rate limiting requests for ${name} (HTTP 429${said}); try again later`,
        details,
      );
    }
    return new VolantError(
      "artifact_unavailable",
      `Registry ${this.registry} answered HTTP ${res.status} for ${what} of ${name}${said}`,
      details,
    );
  }
}
