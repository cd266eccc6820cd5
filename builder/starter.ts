/**
 * The commented starter build config `volar build --init` writes.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";

/** The starter `app.toml`: a valid config for a program at `./hello` serving HTTP on 8080. */
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
entrypoint = ["/usr/bin/hello", "--port", "8080"]
base_url = "http://127.0.0.1:8080"
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

/**
 * Writes {@linkcode STARTER_CONFIG} to `path`; an existing file is never overwritten
 * (`already_exists`).
 *
 * @example
 * ```ts ignore
 * import { writeStarterConfig } from "./starter.ts";
 * await writeStarterConfig("app.toml");
 * ```
 */
export async function writeStarterConfig(path: string): Promise<void> {
  try {
    await Deno.writeTextFile(path, STARTER_CONFIG, { createNew: true });
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
