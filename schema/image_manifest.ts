/**
 * The manifest kestrel runs for a VM created from an OCI image: the image's own Entrypoint +
 * Cmd, Env, WorkingDir and User (as `docker run` reads them), with the user's overrides, and a
 * TCP health check on the first exposed port so the VM is `running` only when it listens.
 *
 * @module
 */
import { VolantError } from "./error.ts";
import type { ImageProcess } from "./image.ts";
import { Manifest } from "./manifest.ts";

/** What a user overrides of an image's process (`--env`, `--entrypoint`, `--cmd`). */
export interface ImageOverrides {
  env: Record<string, string>;
  entrypoint: string[] | null;
  cmd: string[] | null;
}

/** The image as the manifest needs it. */
export interface ImageForManifest {
  ref: string;
  digest: string;
  config: ImageProcess;
  /** The shared root filesystem and its sha256 (`sha256:<hex>`). */
  rootfs: { path: string; checksum: string };
}

const USER = /^(\d+(:\d+)?|[a-z_][a-z0-9_-]*)$/;

function envRecord(list: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    if (eq > 0) env[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return env;
}

function firstTcpPort(exposed: readonly string[]): number | undefined {
  for (const p of exposed) {
    const m = /^(\d+)(\/tcp)?$/.exec(p);
    if (m) return Number(m[1]);
  }
  return undefined;
}

function manifestName(ref: string): string {
  const path = ref.split("@")[0]!;
  const last = path.slice(path.lastIndexOf("/") + 1).split(":")[0]!;
  const name = last.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "");
  return /^[a-z0-9]/.test(name) ? name.slice(0, 63) : "image";
}

/**
 * The argv an image runs: `--entrypoint` replaces the image's Entrypoint and drops its Cmd (as
 * `docker run` does); `--cmd` replaces the Cmd. Throws `invalid_argument` when nothing is left.
 *
 * @example
 * ```ts
 * import { imageArgv } from "./image_manifest.ts";
 * const argv = imageArgv(
 *   { entrypoint: ["/docker-entrypoint.sh"], cmd: ["nginx", "-g", "daemon off;"], env: [],
 *     workdir: null, user: null, exposed_ports: [] },
 *   { env: {}, entrypoint: null, cmd: ["nginx", "-T"] },
 *   "nginx:1",
 * );
 * console.assert(argv.join(" ") === "/docker-entrypoint.sh nginx -T");
 * ```
 */
export function imageArgv(
  config: ImageProcess,
  overrides: ImageOverrides,
  ref: string,
): string[] {
  const entrypoint = overrides.entrypoint ?? config.entrypoint ?? [];
  const cmd = overrides.cmd ?? (overrides.entrypoint !== null ? [] : config.cmd ?? []);
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) {
    throw new VolantError(
      "invalid_argument",
      `image ${ref} has no Entrypoint and no Cmd: give the program to run with --entrypoint ` +
        "or --cmd",
      { field: "entrypoint", image: ref },
    );
  }
  return argv;
}

/**
 * The manifest for `image` with `overrides`. The workload runs as the image's user (a
 * `name:group` user keeps its name part; kestrel resolves it in the image's /etc/passwd).
 *
 * @example
 * ```ts
 * import { imageManifest } from "./image_manifest.ts";
 * const m = imageManifest({
 *   ref: "127.0.0.1:5000/demo/web:1.0", digest: "sha256:" + "a".repeat(64),
 *   config: { entrypoint: null, cmd: ["httpd", "-f"], env: ["PATH=/bin"], workdir: "/www",
 *     user: null, exposed_ports: ["8080/tcp"] },
 *   rootfs: { path: "/var/lib/volant/images/rootfs/x.erofs", checksum: "sha256:" + "b".repeat(64) },
 * }, { env: { MODE: "prod" }, entrypoint: null, cmd: null });
 * console.assert(m.workload.base_url === "http://127.0.0.1:8080" && m.workload.env.MODE === "prod");
 * ```
 */
export function imageManifest(
  image: ImageForManifest,
  overrides: ImageOverrides,
  resources: { cpu_cores: number; memory_mb: number } = { cpu_cores: 1, memory_mb: 256 },
): Manifest {
  const config = image.config;
  const port = firstTcpPort(config.exposed_ports);
  const env = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ...envRecord(config.env),
    ...overrides.env,
  };
  const user = config.user === null || config.user === ""
    ? undefined
    : USER.test(config.user)
    ? config.user
    : USER.test(config.user.split(":")[0]!)
    ? config.user.split(":")[0]!
    : undefined;
  if (config.user && user === undefined) {
    throw new VolantError(
      "invalid_argument",
      `image ${image.ref} sets User ${JSON.stringify(config.user)}, which is not a uid, ` +
        "uid:gid or user name",
      { field: "user", image: image.ref },
    );
  }
  const tag = image.ref.includes("@") ? undefined : /:([^/:]+)$/.exec(image.ref)?.[1];
  return Manifest.parse({
    name: manifestName(image.ref),
    version: (tag ?? image.digest.slice(7, 19)).replace(/[^0-9A-Za-z.+_-]/g, "-").slice(0, 64),
    description: `OCI image ${image.ref} (${image.digest})`,
    rootfs: { url: image.rootfs.path, checksum: image.rootfs.checksum, format: "raw" },
    resources,
    workload: {
      entrypoint: imageArgv(config, overrides, image.ref),
      base_url: `http://127.0.0.1:${port ?? 80}`,
      env,
      ...(config.workdir ? { workdir: config.workdir } : {}),
      ...(user ? { user } : {}),
    },
    ...(port === undefined ? {} : {
      health_check: { kind: "tcp", port, interval_ms: 1000, start_period_ms: 0 },
    }),
    labels: { "volant.image": image.ref, "volant.image.digest": image.digest },
  });
}
