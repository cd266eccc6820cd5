/**
 * Image references (`[registry[:port]/]name[:tag][@sha256:<hex>]`) parsed the way Docker reads
 * them: a first path component with a dot, a colon or the name `localhost` is a registry,
 * anything else is a Docker Hub repository (`nginx` is `docker.io/library/nginx:latest`); and
 * local sources named as skopeo names them (`oci:<dir>[:tag]`, `docker-archive:<file>`).
 *
 * @module
 */
import { resolve } from "node:path";
import { VolantError } from "../schema/error.ts";

/** The Docker Hub host used in canonical names. */
export const DOCKER_HUB = "docker.io";
/** The host Docker Hub's registry API answers on. */
export const DOCKER_HUB_REGISTRY = "registry-1.docker.io";
const HUB_ALIASES = new Set([DOCKER_HUB, "index.docker.io", DOCKER_HUB_REGISTRY]);

const LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
const HOST = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?$`);
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const EXPECTED =
  "expected [registry[:port]/]name[:tag][@sha256:<64 hex digits>], e.g. nginx:1.27 or 127.0.0.1:5000/demo/nginx:1.0, " +
  "or a local source: oci:<absolute dir>[:tag] or docker-archive:<absolute file>[:name:tag]";

function invalid(text: string, why: string): never {
  throw new VolantError(
    "invalid_argument",
    `Image reference ${JSON.stringify(text)} is invalid: ${why} (${EXPECTED})`,
    { field: "image", value: text, reason: why },
  );
}

/** A parsed image reference. */
export interface ImageReference {
  /** The host (and port) whose registry API serves the image; `registry-1.docker.io` for Docker Hub. */
  registry: string;
  /** The repository path inside the registry (`library/nginx` for `nginx`). */
  repository: string;
  /** The tag; `latest` when the reference names neither a tag nor a digest. */
  tag?: string;
  /** The manifest digest (`sha256:<hex>`) when the reference pins one. */
  digest?: string;
  /** The normalised reference: `docker.io/library/nginx:latest`, `127.0.0.1:5000/demo/nginx:1.0`. */
  canonical: string;
}

/**
 * Parses an image reference. Docker Hub names get their defaults (`registry-1.docker.io`,
 * `library/`, `latest`); a bad reference is an `invalid_argument` error that names it and says
 * what was expected.
 *
 * @example Parse a local registry reference
 * ```ts
 * import { parseImageRef } from "./reference.ts";
 * const ref = parseImageRef("127.0.0.1:5000/demo/nginx:1.0");
 * console.assert(ref.registry === "127.0.0.1:5000" && ref.repository === "demo/nginx");
 * console.assert(parseImageRef("nginx").canonical === "docker.io/library/nginx:latest");
 * ```
 */
export function parseImageRef(text: string): ImageReference {
  const fail = (why: string): never => invalid(text, why);
  if (text.length === 0) fail("it is empty");
  if (/\s/.test(text)) fail("it contains white space");
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      fail(`digest ${JSON.stringify(digest)} is not sha256:<64 lowercase hex digits>`);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      fail(`tag ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`);
    }
  }
  if (rest.length === 0) fail("the repository name is missing");
  const slash = rest.indexOf("/");
  const first = slash < 0 ? "" : rest.slice(0, slash);
  const hasHost = slash >= 0 &&
    (/[.:]/.test(first) || first === "localhost" || first.toLowerCase() !== first);
  let host = hasHost ? first : DOCKER_HUB;
  let path = hasHost ? rest.slice(slash + 1) : rest;
  if (hasHost && !HOST.test(host)) fail(`registry ${JSON.stringify(host)} is not a host[:port]`);
  if (HUB_ALIASES.has(host)) host = DOCKER_HUB;
  if (host === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  for (const part of path.split("/")) {
    if (part === "") fail("the repository name has an empty path component");
    if (part.toLowerCase() !== part) {
      fail(`repository name ${JSON.stringify(path)} must be lowercase`);
    }
    if (!COMPONENT.test(part)) {
      fail(
        `repository component ${JSON.stringify(part)} must be lowercase letters and digits ` +
          "separated by single '.', '_', '__' or dashes",
      );
    }
  }
  const name = `${host}/${path}`;
  if (name.length > 255) {
    fail(`the name is ${name.length} characters long; at most 255 are allowed`);
  }
  if (tag === undefined && digest === undefined) tag = "latest";
  const ref: ImageReference = {
    registry: host === DOCKER_HUB ? DOCKER_HUB_REGISTRY : host,
    repository: path,
    canonical: `${name}${tag === undefined ? "" : `:${tag}`}${
      digest === undefined ? "" : `@${digest}`
    }`,
  };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/**
 * The reference's name without tag or digest: `docker.io/library/nginx`.
 *
 * @example
 * ```ts
 * import { parseImageRef, repositoryName } from "./reference.ts";
 * console.assert(repositoryName(parseImageRef("nginx:1")) === "docker.io/library/nginx");
 * ```
 */
export function repositoryName(ref: ImageReference): string {
  const host = ref.registry === DOCKER_HUB_REGISTRY ? DOCKER_HUB : ref.registry;
  return `${host}/${ref.repository}`;
}

/** The transports of local image sources, named as skopeo names them. */
const LOCAL_TRANSPORTS = [["oci:", "oci-layout"], ["docker-archive:", "docker-archive"]] as const;
/** What an OCI layout's tag (its `org.opencontainers.image.ref.name`) may look like. */
const LAYOUT_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.:/@+-]{0,254}$/;

/**
 * Where an image comes from, as users write it wherever an image is accepted
 * (`volar images pull`, `volar vms create --image`, `POST /api/v1/images`, `POST /api/v1/vms`,
 * the MCP tools): a registry reference, an OCI image layout directory (`oci:<dir>[:<tag>]`) or
 * a `docker save` archive (`docker-archive:<file>[:<name>:<tag>]`).
 */
export type ImageSourceRef =
  | { kind: "registry"; ref: ImageReference }
  | { kind: "oci-layout" | "docker-archive"; path: string; tag?: string };

interface LocalParts {
  kind: "oci-layout" | "docker-archive";
  transport: string;
  path: string;
  tag: string | undefined;
}

/** A local source split at its transport and at the first colon after it (as skopeo does). */
function splitLocal(text: string): LocalParts | undefined {
  for (const [transport, kind] of LOCAL_TRANSPORTS) {
    if (!text.startsWith(transport)) continue;
    const rest = text.slice(transport.length);
    const colon = rest.indexOf(":");
    return {
      kind,
      transport,
      path: colon < 0 ? rest : rest.slice(0, colon),
      tag: colon < 0 ? undefined : rest.slice(colon + 1),
    };
  }
  return undefined;
}

/**
 * Parses where an image comes from: `oci:<absolute dir>[:<tag>]` (an OCI image layout, the tag
 * choosing one of its images), `docker-archive:<absolute file>[:<name>:<tag>]` (what
 * `docker save` writes, the name choosing one of its images), else a registry reference
 * ({@linkcode parseImageRef}). The one parser of image references: the API schemas, the
 * daemon and the CLI all use it. A bad one is an `invalid_argument` error naming the field
 * `image` and saying what was expected.
 *
 * @example
 * ```ts
 * import { parseImageSource } from "./reference.ts";
 * const archive = parseImageSource("docker-archive:/tmp/app.tar");
 * console.assert(archive.kind === "docker-archive" && archive.path === "/tmp/app.tar");
 * console.assert(parseImageSource("oci:/srv/layouts/app:1.0").kind === "oci-layout");
 * console.assert(parseImageSource("nginx:1.27").kind === "registry");
 * ```
 */
export function parseImageSource(text: string): ImageSourceRef {
  const local = splitLocal(text);
  if (local === undefined) return { kind: "registry", ref: parseImageRef(text) };
  const { kind, path, tag } = local;
  const what = kind === "oci-layout" ? "OCI layout directory" : "archive";
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f]/.test(text)) invalid(text, "it contains control characters");
  if (path === "") invalid(text, `the ${what} path is missing`);
  if (!path.startsWith("/")) {
    invalid(text, `the ${what} path ${JSON.stringify(path)} is not absolute`);
  }
  if (tag === undefined) return { kind, path };
  if (kind === "oci-layout" && !LAYOUT_TAG.test(tag)) {
    invalid(text, `tag ${JSON.stringify(tag)} after the layout path is not a tag`);
  }
  if (kind === "docker-archive") {
    try {
      parseImageRef(tag);
    } catch (e) {
      const reason = e instanceof VolantError ? String(e.details?.reason) : String(e);
      invalid(text, `the image name ${JSON.stringify(tag)} after the archive path: ${reason}`);
    }
  }
  return { kind, path, tag };
}

/**
 * `text` with the relative path of a local source (`oci:./layout`) resolved against `cwd`:
 * volantd reads the path, so the CLI sends it absolute. Anything else is returned unchanged.
 *
 * @example
 * ```ts
 * import { absoluteImageSource } from "./reference.ts";
 * console.assert(absoluteImageSource("oci:layout:1.0", "/srv") === "oci:/srv/layout:1.0");
 * console.assert(absoluteImageSource("nginx:1.27", "/srv") === "nginx:1.27");
 * ```
 */
export function absoluteImageSource(text: string, cwd: string): string {
  const local = splitLocal(text);
  if (local === undefined || local.path === "" || local.path.startsWith("/")) return text;
  return `${local.transport}${resolve(cwd, local.path)}${
    local.tag === undefined ? "" : `:${local.tag}`
  }`;
}
