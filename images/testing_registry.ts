/**
 * Registry fixtures for the image tests: a real Debian `docker-registry` process, umoci and
 * skopeo helpers, hand-written images and OCI layouts, and loopback fake registries for the
 * failures a real registry cannot produce. Not public API.
 *
 * @module
 */
import { deepEqual } from "node:assert/strict";
import type { ImageStore } from "./image_store.ts";
import { compress, digestOf, makeTar, run, type TarSpec, tree } from "./_testing.ts";

const encoder = new TextEncoder();

/** Asserts the store holds nothing: no blobs, rootfs images, temp trees or index entries. */
export async function assertEmptyStore(store: ImageStore): Promise<void> {
  deepEqual((await tree(`${store.root}/blobs`)).filter((p) => !p.endsWith("/")), []);
  deepEqual(await store.blobs.list(), []);
  deepEqual(await tree(`${store.root}/rootfs`), []);
  deepEqual(await tree(`${store.root}/tmp`), []);
  deepEqual(await store.list(), []);
}

/** A free TCP port on 127.0.0.1 (bound and released; a small race is accepted in tests). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A running Debian `docker-registry` on 127.0.0.1. */
export interface RegistryProcess {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Its PID. */
  pid: number;
  /** Kills it (by PID) and waits for it. */
  stop(): Promise<void>;
}

/**
 * Starts `docker-registry serve` with its storage in `dir`, waiting until `/v2/` answers; with
 * `htpasswd` (a file of bcrypt entries, see {@linkcode htpasswdLine}) it demands Basic auth.
 */
export async function startRegistry(
  dir: string,
  options: { htpasswd?: string } = {},
): Promise<RegistryProcess> {
  const port = freePort();
  const host = `127.0.0.1:${port}`;
  await Deno.mkdir(`${dir}/data`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/cfg.yml`,
    [
      "version: 0.1",
      "log:",
      "  level: error",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${dir}/data`,
      "http:",
      `  addr: ${host}`,
      ...(options.htpasswd === undefined
        ? []
        : ["auth:", "  htpasswd:", "    realm: volant-test", `    path: ${options.htpasswd}`]),
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("docker-registry", {
    args: ["serve", `${dir}/cfg.yml`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      if (res.ok || (options.htpasswd !== undefined && res.status === 401)) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer on ${host} within 20 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host, pid: child.pid, stop };
}

/** `umoci` with arguments. */
export function umoci(...args: string[]): Promise<string> {
  return run("umoci", args);
}

/**
 * One htpasswd line for docker-registry (bcrypt, through libc's crypt(3) in perl, which every
 * Debian has: docker-registry takes bcrypt only).
 */
export async function htpasswdLine(user: string, password: string): Promise<string> {
  const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const salt = Array.from(crypto.getRandomValues(new Uint8Array(22)), (b) => alphabet[b % 64])
    .join("").slice(0, 21) + "u";
  const hash = (await run("perl", [
    "-e",
    "print crypt($ARGV[0], $ARGV[1])",
    password,
    `$2b$10$${salt}`,
  ])).trim();
  if (!hash.startsWith("$2b$10$")) throw new Error(`perl crypt gave no bcrypt hash: ${hash}`);
  return `${user}:${hash}`;
}

/** Copies `oci:<layout>:<tag>` to `docker://<dest>` over plain HTTP with skopeo. */
export function push(
  layout: string,
  tag: string,
  dest: string,
  creds?: { username: string; password: string },
): Promise<string> {
  return run("skopeo", [
    "copy",
    "--quiet",
    "--dest-tls-verify=false",
    ...(creds ? ["--dest-creds", `${creds.username}:${creds.password}`] : []),
    `oci:${layout}:${tag}`,
    `docker://${dest}`,
  ]);
}

/** A loopback HTTP server counting requests. */
export interface FakeServer {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Requests received, in order (`METHOD path?query`). */
  log: string[];
  /** Stops it. */
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1 with a random port. */
export function serveFake(handler: (req: Request) => Response | Promise<Response>): FakeServer {
  const log: string[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
    onError: (e) => new Response(`handler failed: ${e}`, { status: 500 }),
  }, (req) => {
    const url = new URL(req.url);
    log.push(`${req.method} ${url.pathname}${url.search}`);
    return handler(req);
  });
  return { host: `127.0.0.1:${server.addr.port}`, log, close: () => server.shutdown() };
}

/** An image written by hand: gzip layers from tar members, a config, an OCI manifest. */
export interface HandImage {
  /** The manifest's bytes. */
  manifest: Uint8Array<ArrayBuffer>;
  /** Their digest. */
  digest: string;
  /** Config and layer blobs by digest. */
  blobs: Map<string, Uint8Array<ArrayBuffer>>;
  /** The config's digest. */
  configDigest: string;
  /** Layer digests, bottom first. */
  layers: string[];
}

/** Builds a {@linkcode HandImage}: one gzip layer per member list; `config` is the config's `config`. */
export async function handImage(
  layers: TarSpec[][],
  config: Record<string, unknown> = {},
  platform: { os?: string; architecture?: string } = {},
): Promise<HandImage> {
  const blobs = new Map<string, Uint8Array<ArrayBuffer>>();
  const diffIds: string[] = [];
  const descriptors = [];
  for (const members of layers) {
    const tar = makeTar(members);
    const gz = await compress(tar, "gzip");
    diffIds.push(digestOf(tar));
    blobs.set(digestOf(gz), gz);
    descriptors.push({
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: digestOf(gz),
      size: gz.length,
    });
  }
  const configBytes = encoder.encode(JSON.stringify({
    architecture: platform.architecture ?? "amd64",
    os: platform.os ?? "linux",
    config,
    rootfs: { type: "layers", diff_ids: diffIds },
  }));
  const configDigest = digestOf(configBytes);
  blobs.set(configDigest, configBytes);
  const manifest = encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: configBytes.length,
    },
    layers: descriptors,
  }));
  return {
    manifest,
    digest: digestOf(manifest),
    blobs,
    configDigest,
    layers: descriptors.map((d) => d.digest),
  };
}

/** Writes an OCI layout at `dir` holding `images`, each tagged with `org.opencontainers.image.ref.name`. */
export async function writeLayout(
  dir: string,
  images: { tag: string; image: HandImage; annotations?: Record<string, string> }[],
): Promise<void> {
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  await Deno.writeTextFile(`${dir}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  const manifests = [];
  for (const { tag, image, annotations } of images) {
    for (const [d, bytes] of [...image.blobs, [image.digest, image.manifest] as const]) {
      await Deno.writeFile(`${dir}/blobs/sha256/${d.slice(7)}`, bytes);
    }
    manifests.push({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: image.digest,
      size: image.manifest.length,
      annotations: { "org.opencontainers.image.ref.name": tag, ...annotations },
    });
  }
  await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify({ schemaVersion: 2, manifests }));
}

/** Options of {@linkcode fakeRegistry}. */
export interface FakeRegistryOptions {
  /** Serve these bytes instead of the blob with this digest. */
  replace?: Map<string, Uint8Array<ArrayBuffer>>;
  /** Demand `Bearer <token>`, pointing clients at this realm. */
  bearer?: { realm: string; token: string };
}

/** A minimal registry (manifests by tag or digest, blobs) serving `images` (`repo:tag` → image). */
export function fakeRegistry(
  images: Record<string, HandImage>,
  options: FakeRegistryOptions = {},
): FakeServer {
  return serveFake((req) => {
    const path = new URL(req.url).pathname;
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path);
    if (options.bearer && req.headers.get("authorization") !== `Bearer ${options.bearer.token}`) {
      const scope = m === null ? "" : `,scope="repository:${m[1]}:pull"`;
      return Response.json({
        errors: [{ code: "UNAUTHORIZED", message: "authentication required" }],
      }, {
        status: 401,
        headers: {
          "www-authenticate": `Bearer realm="${options.bearer.realm}",service="fake"${scope}`,
        },
      });
    }
    if (m === null) return new Response("{}", { status: path === "/v2/" ? 200 : 404 });
    const [, repo, kind, ref] = m;
    for (const [key, image] of Object.entries(images)) {
      const [r, tag] = key.split(":");
      if (r !== repo) continue;
      if (kind === "manifests" && (ref === tag || ref === image.digest)) {
        return new Response(image.manifest, {
          headers: {
            "content-type": "application/vnd.oci.image.manifest.v1+json",
            "docker-content-digest": image.digest,
          },
        });
      }
      const blob = kind === "blobs" ? image.blobs.get(ref!) : undefined;
      if (blob !== undefined) return new Response(options.replace?.get(ref!) ?? blob);
    }
    return Response.json({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }, {
      status: 404,
    });
  });
}
