/**
 * The shared read-only runtime image (`runtime.erofs`): Deno and the glibc files it loads,
 * static busybox, the Volant bundle and a minimal `/etc`, staged in a directory and packed with
 * `mkfs.erofs` (plain, uncompressed: the fastest to boot). Reproducible: every file is owned by
 * root, every timestamp is 0, xattrs are left out and the UUID is derived from the inputs, so
 * the same inputs give the same bytes.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import { runTool, runToolOutput } from "./_tool.ts";
import { KESTREL_COMMAND } from "./initramfs.ts";

/** Version of the staging layout below; recorded in `guest.json` (bump when it changes). */
export const RUNTIME_LAYOUT_VERSION = 1;

/** Empty directories in the image: mount points and places for later use. */
export const RUNTIME_EMPTY_DIRS = ["proc", "sys", "dev", "tmp", "run", "root", "var", "mnt"];

/** Options of {@linkcode stageRuntime}. */
export interface RuntimeInputs {
  /** The kestrel bundle (`dist/kestrel.js`), installed as `/opt/volant/kestrel.js`. */
  bundle: string;
  /** The Deno binary, installed as `/usr/bin/deno`. */
  deno: string;
  /** A static busybox, installed as `/bin/busybox` with its applets linked in `/bin`. */
  busybox: string;
}

/**
 * The shared libraries `binary` needs, as absolute host paths (from `ldd`), the dynamic loader
 * included. A static binary needs none.
 *
 * @example
 * ```ts ignore
 * console.log(await sharedLibraries(Deno.execPath()));
 * // ["/lib/x86_64-linux-gnu/libdl.so.2", …, "/lib64/ld-linux-x86-64.so.2"]
 * ```
 */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const out = await runToolOutput("ldd", [binary], { apt: "libc-bin", okCodes: [1] });
  const text = out.stdout;
  if (/not a dynamic executable|statically linked/.test(text + out.stderr)) return [];
  if (out.code !== 0) {
    throw new VolantError("internal", `ldd ${binary} failed: ${out.stderr.trim()}`);
  }
  const libs: string[] = [];
  for (const line of text.split("\n")) {
    const arrow = line.match(/=>\s+(\/\S+)\s+\(0x/);
    const bare = line.match(/^\s*(\/\S+)\s+\(0x/);
    const path = arrow?.[1] ?? bare?.[1];
    if (path) libs.push(path);
    else if (/=>\s+not found/.test(line)) {
      throw new VolantError("internal", `${binary} needs a library the host lacks: ${line.trim()}`);
    }
  }
  if (libs.length === 0) {
    throw new VolantError("internal", `ldd ${binary} listed no libraries: ${text.trim()}`);
  }
  return libs;
}

/** The applets a busybox binary provides (`busybox --list`). */
export async function busyboxApplets(busybox: string): Promise<string[]> {
  const text = await runTool(busybox, ["--list"], { apt: "busybox-static" });
  return text.split("\n").map((s) => s.trim()).filter((s) => /^[a-z0-9_.[-]+$/.test(s));
}

async function copyInto(staging: string, path: string, from: string, mode: number): Promise<void> {
  const to = `${staging}/${path.replace(/^\/+/, "")}`;
  await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
  await Deno.copyFile(from, to);
  await Deno.chmod(to, mode);
}

async function writeInto(staging: string, path: string, text: string, mode = 0o644): Promise<void> {
  const to = `${staging}/${path}`;
  await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(to, text);
  await Deno.chmod(to, mode);
}

/** The `/usr/bin/kestrel` launcher (for humans in the guest; stage 0 runs Deno directly). */
export function kestrelLauncher(): string {
  return `#!/bin/sh\n# kestrel, Volant's guest agent (normally PID 1, started by stage 0)\nexec ${
    KESTREL_COMMAND.join(" ")
  } "$@"\n`;
}

/**
 * Fills the empty directory `staging` with the runtime tree: `/usr/bin/deno`, its libraries at
 * their host paths, `/bin/busybox` + applet links (`/bin/sh` among them), `/opt/volant/kestrel.js`,
 * `/usr/bin/kestrel`, `/etc/{passwd,group,hosts}`, `/etc/resolv.conf` → `/run/resolv.conf` (the
 * root is read-only; kestrel may write DNS settings there) and the empty mount points.
 *
 * @example
 * ```ts ignore
 * await stageRuntime("/tmp/stage", { bundle: "dist/kestrel.js", deno: Deno.execPath(), busybox: "/bin/busybox" });
 * ```
 */
export async function stageRuntime(staging: string, inputs: RuntimeInputs): Promise<void> {
  await copyInto(staging, "usr/bin/deno", inputs.deno, 0o755);
  for (const lib of await sharedLibraries(inputs.deno)) {
    await copyInto(staging, lib, lib, 0o755);
  }
  await copyInto(staging, "bin/busybox", inputs.busybox, 0o755);
  for (const applet of await busyboxApplets(inputs.busybox)) {
    if (applet !== "busybox") await Deno.symlink("busybox", `${staging}/bin/${applet}`);
  }
  await copyInto(staging, "opt/volant/kestrel.js", inputs.bundle, 0o644);
  await writeInto(staging, "usr/bin/kestrel", kestrelLauncher(), 0o755);
  await writeInto(staging, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  await writeInto(staging, "etc/group", "root:x:0:\n");
  await writeInto(staging, "etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n");
  await Deno.symlink("../run/resolv.conf", `${staging}/etc/resolv.conf`);
  for (const dir of RUNTIME_EMPTY_DIRS) await Deno.mkdir(`${staging}/${dir}`, { recursive: true });
}

/** `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` from the first 16 bytes of a `sha256:<hex>` digest. */
export function uuidFromDigest(digest: string): string {
  const hex = digest.replace(/^sha256:/, "");
  if (!/^[0-9a-f]{32}/.test(hex)) {
    throw new VolantError("invalid_argument", `Not a sha256 digest: ${digest}`);
  }
  return [
    hex.slice(0, 8),
    hex.slice(8, 12),
    hex.slice(12, 16),
    hex.slice(16, 20),
    hex.slice(20, 32),
  ]
    .join("-");
}

/** Options of {@linkcode buildRuntimeImage}. */
export interface RuntimeImageOptions extends RuntimeInputs {
  /** Where to write the image (written to `<output>.tmp` first, renamed at the end). */
  output: string;
  /** Filesystem UUID (use {@linkcode uuidFromDigest} of the inputs' key for reproducibility). */
  uuid: string;
}

/**
 * Stages the runtime tree in a temporary directory next to `output` and packs it with
 * `mkfs.erofs --all-root -T0 -x-1 -U<uuid>` (erofs-utils). The staging directory is removed
 * whatever happens; `output` only ever holds a complete image.
 *
 * @example
 * ```ts ignore
 * await buildRuntimeImage({
 *   output: "/var/lib/volant/guest/runtime.erofs",
 *   bundle: "dist/kestrel.js",
 *   deno: Deno.execPath(),
 *   busybox: "/bin/busybox",
 *   uuid: "8d3c1f2a-0000-4000-8000-000000000001",
 * });
 * ```
 */
export async function buildRuntimeImage(options: RuntimeImageOptions): Promise<void> {
  const dir = options.output.slice(0, options.output.lastIndexOf("/")) || ".";
  const staging = await Deno.makeTempDir({ dir, prefix: ".runtime-staging-" });
  const temp = `${options.output}.tmp-${Deno.pid}`;
  try {
    await stageRuntime(staging, options);
    await runTool("mkfs.erofs", [
      "--quiet",
      "--all-root",
      "-x-1",
      "-T0",
      `-U${options.uuid}`,
      temp,
      staging,
    ], { apt: "erofs-utils" });
    await Deno.rename(temp, options.output);
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    await Deno.remove(temp).catch(() => {});
  }
}
