/**
 * The commented starter build configs `volar build --init [--strategy <name>]` writes, one
 * per strategy.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { Strategy } from "./sections.ts";

/**
 * The starter `app.toml`: a valid config for a program at `./hello` serving HTTP on port 80
 * (any port but kestrel's own, 12751 by default, on the guest's eth0 address).
 */
export const STARTER_CONFIG =
  `# Volant build config. \`volar build -c app.toml\` packs the files below into an initramfs
# appliance (<output.dir>/<plugin.name>.cpio.gz) and writes its plugin manifest beside it
# (<plugin.name>.manifest.json). The same inputs always give the same archive (sha256).
version = "1"
strategy = "initramfs"

[plugin]
name = "hello"                  # 1-63 lowercase letters, digits or '-'
version = "0.1.0"
description = "A hello-world HTTP service"

[source]
busybox = false                 # true: add the host's static /bin/busybox and its applet links

# Host path (relative to this file) = absolute guest path. Files keep their modes;
# directories are copied recursively (symlinks must stay inside them). A dynamically linked
# program gets its loader and libraries added; a static one needs nothing. /init is Volant's.
[mappings]
"./hello" = "/usr/bin/hello"
# "./www" = "/srv/www"

[init]
mode = "kestrel"                # kestrel: Volant's agent runs and supervises the workload
# mode = "custom"               # stage 0 execs your own PID 1:
# path = "/sbin/myinit"
# mode = "none"                 # the entrypoint itself is PID 1 (no health checks or actions)

[output]
dir = "."                       # relative to this file
compression = "gzip"            # gzip | zstd | none

[resources]
cpu_cores = 1
memory_mb = 256

[workload]
entrypoint = ["/usr/bin/hello", "--port", "80"]
base_url = "http://127.0.0.1:80"   # any port but 12751, where kestrel's own API listens
# user = "app"                  # a name (added to /etc/passwd as uid 1000) or "uid[:gid]"
# workdir = "/srv"

[workload.env]
# GREETING = "hello"

[health_check]
kind = "http"                   # http (endpoint) | tcp (port) | exec (command)
endpoint = "/"
interval_ms = 2000

# [actions.reload]
# method = "POST"
# path = "/reload"

# [restart]
# policy = "on-failure"         # always | on-failure | never
# max_retries = 10
`;

/** The starter `app.toml` of `strategy = "oci_rootfs"`: a plugin from an image in a local registry. */
export const OCI_STARTER_CONFIG =
  `# Volant build config. \`volar build -c app.toml\` turns an OCI image into a reusable plugin:
# its read-only erofs root filesystem (<output.dir>/<name>.rootfs.erofs) and its plugin
# manifest beside it (<name>.manifest.json, naming the rootfs by path and sha256). The same
# image always gives the same rootfs (sha256). Images are cached in $VOLANT_IMAGE_CACHE
# (default ~/.cache/volant/images; or volar build --image-cache <dir>).
version = "1"
strategy = "oci_rootfs"

# Each key defaults to the image's: name from its repository, version from its tag.
[plugin]
name = "web"                    # 1-63 lowercase letters, digits or '-'
version = "1.0.0"
# description = "A web server from the local registry"

# Exactly one of image, oci_layout or docker_archive.
[source]
image = "127.0.0.1:5000/demo/web:1.0"    # a registry reference (Docker Hub: "busybox:1.36")
insecure_registry = true        # plain HTTP, for a local registry (default false)
# oci_layout = "./layout"       # an OCI image layout directory, relative to this file
# docker_archive = "./web.tar"  # a \`docker save\` archive, relative to this file
# tag = "1.0"                   # which image of the layout or archive

[output]
dir = "."                       # relative to this file

[resources]
cpu_cores = 1
memory_mb = 256

# kestrel runs the image's Entrypoint + Cmd with its Env, WorkingDir and User. Override them
# here as with docker run: entrypoint replaces the Entrypoint and drops the Cmd.
[workload]
# entrypoint = ["/bin/httpd"]
# cmd = ["-f", "-p", "80"]
# base_url = "http://127.0.0.1:80"   # default port: the image's first exposed TCP port, else 80
# workdir = "/srv"
# user = "1000:1000"            # a uid, uid:gid or a user in the image's /etc/passwd

[workload.env]                  # added to the image's Env
# MODE = "prod"

# Default: a TCP check on the image's first exposed port (none when it exposes none).
# [health_check]
# kind = "http"                 # http (endpoint) | tcp (port) | exec (command)
# endpoint = "/"

# [actions.reload]
# method = "POST"
# path = "/reload"

# [restart]
# policy = "on-failure"         # always | on-failure | never
`;

/** The starter config of each strategy. */
export const STARTER_CONFIGS: Readonly<Record<Strategy, string>> = {
  initramfs: STARTER_CONFIG,
  oci_rootfs: OCI_STARTER_CONFIG,
};

/**
 * Writes the starter config of `strategy` (default `initramfs`) to `path`; an existing file is
 * never overwritten (`already_exists`).
 *
 * @example
 * ```ts ignore
 * import { writeStarterConfig } from "./starter.ts";
 * await writeStarterConfig("app.toml");
 * await writeStarterConfig("web.toml", "oci_rootfs");
 * ```
 */
export async function writeStarterConfig(
  path: string,
  strategy: Strategy = "initramfs",
): Promise<void> {
  try {
    await Deno.writeTextFile(path, STARTER_CONFIGS[strategy], { createNew: true });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) {
      throw new VolantError(
        "already_exists",
        `${path} already exists: edit it, or pick another name (volar build --init other.toml)`,
        { file: path },
      );
    }
    const reason = err instanceof Error ? err.message : String(err);
    throw new VolantError("invalid_argument", `Cannot write ${path}: ${reason}`, { file: path });
  }
}
