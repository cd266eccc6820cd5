/**
 * Builds Volant's own guest kernel from Debian's `linux-source-6.1` tarball: `make tinyconfig`
 * plus the fragment `kernels/config/volant-microvm.config` (everything built in, no modules),
 * checked against the options Volant requires (`volant_config.ts`), then `make bzImage`.
 * The result (`bzImage`, the ELF `vmlinux` with its PVH note, the resolved `.config`) is cached
 * in `<cacheDir>/volant-kernel/<key>/`, keyed by the fragment, the source tarball, the
 * toolchain and {@linkcode VOLANT_KERNEL_RECIPE}; the 1.5 GB source tree is removed after the
 * build. Builds are reproducible (fixed `KBUILD_BUILD_*`): same inputs, same bytes.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import { sha256Bytes, sha256File } from "./_hash.ts";
import { hashInput, type InputRecord, keyOf, writeAtomic } from "./_inputs.ts";
import { runTool } from "./_tool.ts";
import { assertVolantConfig, VOLANT_CONFIG_FRAGMENT } from "./volant_config.ts";
import { inspectVmlinux } from "./vmlinux.ts";

/** Debian's kernel source tarball (package `linux-source-6.1`). */
export const VOLANT_KERNEL_SOURCE = "/usr/src/linux-source-6.1.tar.xz";
/** The Debian package that installs {@linkcode VOLANT_KERNEL_SOURCE}. */
export const VOLANT_KERNEL_SOURCE_PACKAGE = "linux-source-6.1";
/** Version of the build recipe below (part of the cache key: bump when the steps change). */
export const VOLANT_KERNEL_RECIPE = 1;
/** Free space the source tree and objects need while building, in bytes. */
export const VOLANT_KERNEL_DISK_BYTES = 3 * 1024 ** 3;

/**
 * The environment every kernel build runs with: fixed build timestamp, user, host and build
 * number, so the same inputs give the same bytes.
 */
export const VOLANT_KERNEL_BUILD_ENV: Readonly<Record<string, string>> = {
  ARCH: "x86_64",
  KBUILD_BUILD_TIMESTAMP: "1970-01-01 00:00:00 UTC",
  KBUILD_BUILD_USER: "volant",
  KBUILD_BUILD_HOST: "volant",
  KBUILD_BUILD_VERSION: "1",
  LC_ALL: "C",
  TZ: "UTC",
};

/** The config inputs of `make tinyconfig`, in its order; the fragment is applied after them. */
const TINYCONFIG_INPUTS = [
  "kernel/configs/tiny-base.config",
  "kernel/configs/tiny.config",
  "arch/x86/configs/tiny.config",
];

/**
 * The part of the source tree Kconfig reads (enough to resolve a config, not to build), as
 * `tar --wildcards` patterns below the top directory (`*` matches `/` too).
 */
const KCONFIG_MEMBERS = [
  "Makefile",
  "*Kconfig*",
  "scripts/*",
  "arch/x86/Makefile*",
  "arch/x86/configs/*",
  "kernel/configs/*",
];

/** The environment of build commands: only PATH from ours, plus {@linkcode VOLANT_KERNEL_BUILD_ENV}. */
function buildEnv(): Record<string, string> {
  return { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...VOLANT_KERNEL_BUILD_ENV };
}

/** Build tools and the Debian packages that provide them. */
const BUILD_TOOLS: Readonly<Record<string, string>> = {
  make: "make",
  gcc: "gcc",
  ld: "binutils",
  flex: "flex",
  bison: "bison",
  bc: "bc",
  perl: "perl",
  tar: "tar",
  xz: "xz-utils",
};

/** What the cache key of a build is made of. */
export interface VolantKernelKeyInputs {
  /** `sha256:<hex>` of the config fragment's bytes. */
  fragmentSha256: string;
  /** `sha256:<hex>` of the source tarball. */
  sourceSha256: string;
  /** First lines of `gcc --version` and `ld --version`. */
  toolchain: string[];
}

/**
 * The cache key of a build: `sha256:<hex>` over the fragment, the source tarball, the
 * toolchain and {@linkcode VOLANT_KERNEL_RECIPE}.
 *
 * @example
 * ```ts
 * import { volantKernelKey } from "./volant_kernel.ts";
 * const a = await volantKernelKey({ fragmentSha256: "sha256:a", sourceSha256: "sha256:s", toolchain: [] });
 * const b = await volantKernelKey({ fragmentSha256: "sha256:b", sourceSha256: "sha256:s", toolchain: [] });
 * console.assert(a !== b);
 * ```
 */
export function volantKernelKey(inputs: VolantKernelKeyInputs): Promise<string> {
  return keyOf({
    recipe: VOLANT_KERNEL_RECIPE,
    fragment: inputs.fragmentSha256,
    source: inputs.sourceSha256,
    toolchain: inputs.toolchain,
  });
}

/** A built (or cached) Volant kernel; what `<cacheDir>/volant-kernel/<key>/kernel.json` holds. */
export interface VolantKernel {
  /** The cache key ({@linkcode volantKernelKey}). */
  key: string;
  /** `uname -r` of the kernel, e.g. `6.1.192-volant`. */
  release: string;
  /** Package and version of the source, e.g. `linux-source-6.1` `6.1.192-3`. */
  source: { package: string; version: string; sha256: string };
  /** The fragment's `sha256:<hex>`. */
  fragmentSha256: string;
  /** Absolute path of the bzImage. */
  bzImage: string;
  /** `sha256:<hex>` of the bzImage. */
  bzImageSha256: string;
  /** Absolute path of the ELF vmlinux (PVH). */
  vmlinux: string;
  /** `sha256:<hex>` of the vmlinux. */
  vmlinuxSha256: string;
  /** Absolute path of the resolved `.config`. */
  config: string;
  /** Seconds the build took. */
  buildSeconds: number;
}

/** Options of {@linkcode buildVolantKernel}. */
export interface BuildVolantKernelOptions {
  /** Where `volant-kernel/` (cache, build tree, logs) goes. */
  cacheDir: string;
  /** The source tarball; default {@linkcode VOLANT_KERNEL_SOURCE}. */
  source?: string;
  /** The config fragment; default {@linkcode VOLANT_CONFIG_FRAGMENT}. */
  fragment?: string;
  /** The source tarball's record from an earlier run (its hash is reused while unchanged). */
  previousSource?: InputRecord;
  /** `make -j`; default the number of CPUs. */
  jobs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Seconds between progress lines while compiling; default 20. */
  progressSeconds?: number;
}

/** What {@linkcode buildVolantKernel} resolves to. */
export interface VolantKernelResult {
  /** The kernel. */
  kernel: VolantKernel;
  /** Whether this call built it (false: it came from the cache). */
  built: boolean;
  /** The source tarball, hashed (pass it back as `previousSource`). */
  sourceRecord: InputRecord;
}

function fail(message: string, details?: Record<string, unknown>): VolantError {
  return new VolantError("kernel_not_found", message, details);
}

function elapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

async function onPath(cmd: string): Promise<boolean> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      if ((await Deno.stat(`${dir}/${cmd}`)).isFile) return true;
    } catch {
      // next
    }
  }
  return false;
}

/** Throws naming the packages to install when a build tool is missing. */
async function requireBuildTools(): Promise<void> {
  const missing: string[] = [];
  for (const [tool, pkg] of Object.entries(BUILD_TOOLS)) {
    if (!(await onPath(tool))) missing.push(pkg);
  }
  if (missing.length > 0) {
    throw fail(
      `Building the Volant kernel needs ${missing.join(", ")}: ` +
        `apt-get install ${[...new Set([...missing, "libelf-dev", "libssl-dev"])].join(" ")}`,
      { packages: missing },
    );
  }
}

/** Free bytes on the filesystem holding `dir` (from `df`). */
export async function freeBytes(dir: string): Promise<number> {
  const out = await runTool("df", ["-Pk", dir], { apt: "coreutils" });
  const fields = out.trim().split("\n").at(-1)?.trim().split(/\s+/) ?? [];
  const kib = Number(fields[3]);
  if (!Number.isFinite(kib)) throw fail(`Cannot read the free space of ${dir} from df: ${out}`);
  return kib * 1024;
}

async function toolchain(): Promise<string[]> {
  const first = async (cmd: string, apt: string) =>
    (await runTool(cmd, ["--version"], { apt })).split("\n")[0]!.trim();
  return [await first("gcc", "gcc"), await first("ld", "binutils")];
}

async function sourcePackageVersion(source: string): Promise<string> {
  if (source !== VOLANT_KERNEL_SOURCE) return "unknown";
  try {
    return (await runTool("dpkg-query", [
      "-W",
      "-f",
      "${Version}",
      VOLANT_KERNEL_SOURCE_PACKAGE,
    ], { apt: "dpkg" })).trim() || "unknown";
  } catch {
    return "unknown";
  }
}

async function requireSource(source: string): Promise<void> {
  try {
    if ((await Deno.stat(source)).isFile) return;
  } catch {
    // reported below
  }
  throw fail(
    `The kernel source ${source} does not exist; install it with \`apt-get install ${VOLANT_KERNEL_SOURCE_PACKAGE}\``,
    { path: source },
  );
}

/** `<cacheDir>/volant-kernel`. */
export function volantKernelRoot(cacheDir: string): string {
  return `${cacheDir}/volant-kernel`;
}

/** The tarball's top directory: `linux-source-6.1` for `linux-source-6.1.tar.xz`. */
function topDir(source: string): string {
  return source.slice(source.lastIndexOf("/") + 1).replace(/\.tar(\.[a-z0-9]+)?$/, "");
}

function shortKey(key: string): string {
  return key.replace(/^sha256:/, "").slice(0, 16);
}

/**
 * The cached kernel for `key` in `cacheDir`, or undefined when there is none or its files no
 * longer match their recorded sha256.
 */
export async function readVolantKernel(
  cacheDir: string,
  key: string,
): Promise<VolantKernel | undefined> {
  try {
    const dir = `${volantKernelRoot(cacheDir)}/${shortKey(key)}`;
    const kernel = JSON.parse(await Deno.readTextFile(`${dir}/kernel.json`)) as VolantKernel;
    if (kernel.key !== key) return undefined;
    if (await sha256File(kernel.bzImage) !== kernel.bzImageSha256) return undefined;
    if (await sha256File(kernel.vmlinux) !== kernel.vmlinuxSha256) return undefined;
    return kernel;
  } catch {
    return undefined;
  }
}

/**
 * Resolves the kernel config in the source tree `tree`: `make tinyconfig`'s inputs plus
 * `fragment`, merged by `scripts/kconfig/merge_config.sh -n` (allnoconfig: nothing that is not
 * asked for is turned on), into `outDir` (the tree itself when omitted). Returns the `.config`.
 */
export async function resolveConfig(
  tree: string,
  fragment: string,
  outDir?: string,
): Promise<string> {
  const args = ["-n", ...(outDir ? ["-O", outDir] : []), ...TINYCONFIG_INPUTS, fragment];
  const out = await new Deno.Command("scripts/kconfig/merge_config.sh", {
    args,
    cwd: tree,
    env: buildEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw fail(
      `Resolving the kernel config failed: ${text.trim().split("\n").slice(-8).join(" | ")}`,
    );
  }
  return await Deno.readTextFile(`${outDir ?? tree}/.config`);
}

/** Options of {@linkcode resolveVolantConfig}. */
export interface ResolveVolantConfigOptions {
  /** Where the Kconfig part of the source tree is extracted and kept (`volant-kernel/`). */
  cacheDir: string;
  /** The source tarball; default {@linkcode VOLANT_KERNEL_SOURCE}. */
  source?: string;
  /** The config fragment; default {@linkcode VOLANT_CONFIG_FRAGMENT}. */
  fragment?: string;
}

/**
 * The `.config` the fragment resolves to, without building: only the Kconfig files of the
 * source are extracted (about 20 MB, kept in `<cacheDir>/volant-kernel/kconfig-<sha>/`), and
 * the config is resolved in a temporary directory. About 10 s once the files are there.
 *
 * @example
 * ```ts ignore
 * const config = await resolveVolantConfig({ cacheDir: ".cache/guest" });
 * console.log(config.includes("CONFIG_PVH=y"));
 * ```
 */
export async function resolveVolantConfig(options: ResolveVolantConfigOptions): Promise<string> {
  const source = options.source ?? VOLANT_KERNEL_SOURCE;
  await requireSource(source);
  const root = volantKernelRoot(options.cacheDir);
  await Deno.mkdir(root, { recursive: true });
  const tree = `${root}/kconfig-${shortKey(await sha256File(source))}`;
  {
    using lock = await Deno.open(`${root}/.kconfig.lock`, { create: true, write: true });
    await lock.lock(true);
    if (!(await Deno.stat(`${tree}/.complete`).catch(() => undefined))) {
      await Deno.remove(tree, { recursive: true }).catch(() => {});
      await Deno.mkdir(tree);
      const top = topDir(source);
      await runTool("tar", [
        "-xJf",
        source,
        "-C",
        tree,
        "--strip-components=1",
        "--wildcards",
        ...KCONFIG_MEMBERS.map((m) => `${top}/${m}`),
      ], { apt: "tar xz-utils" });
      await Deno.writeTextFile(`${tree}/.complete`, "");
    }
  }
  const out = await Deno.makeTempDir({ prefix: "volant-kconfig-" });
  try {
    return await resolveConfig(
      tree,
      await Deno.realPath(options.fragment ?? VOLANT_CONFIG_FRAGMENT),
      out,
    );
  } finally {
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
}

/** The last `n` lines of a file (for error messages). */
async function tail(path: string, n: number): Promise<string> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.trimEnd().split("\n").slice(-n).join("\n");
}

/**
 * Runs `make` in `tree` with its output in `logFile`, printing a progress line every
 * `progressSeconds` (elapsed time, steps so far, the last step). Throws with the log's tail.
 */
async function make(
  tree: string,
  args: string[],
  logFile: string,
  log: (line: string) => void,
  progressSeconds: number,
  started: number,
): Promise<void> {
  using file = await Deno.open(logFile, { create: true, append: true });
  const child = new Deno.Command("sh", {
    args: ["-c", 'exec "$@" 2>&1', "sh", "make", ...args],
    cwd: tree,
    env: buildEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
  }).spawn();
  let steps = 0;
  let last = "";
  let partial = "";
  const timer = setInterval(() => {
    log(`  ${elapsed(performance.now() - started)}: ${steps} steps, now ${last || "starting"}`);
  }, progressSeconds * 1000);
  try {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
      const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (/^\s+[A-Z0-9_]+\s+\S/.test(line)) {
          steps++;
          last = line.trim().replace(/\s+/, " ");
        }
      }
    }
    const status = await child.status;
    if (!status.success) {
      throw fail(
        `make ${args.join(" ")} failed (exit ${status.code}) after ${
          elapsed(performance.now() - started)
        }; the full log is ${logFile}; its end:\n${await tail(logFile, 25)}`,
        { log: logFile, code: status.code },
      );
    }
  } finally {
    clearInterval(timer);
  }
}

/**
 * Builds the Volant kernel, or returns the cached one. One build at a time per cache dir (a
 * lock file); checks tools and free disk space first; prints progress through `log`.
 *
 * @example
 * ```ts ignore
 * const { kernel, built } = await buildVolantKernel({ cacheDir: ".cache/guest", log: console.error });
 * console.log(kernel.release, kernel.bzImage, built);
 * ```
 */
export async function buildVolantKernel(
  options: BuildVolantKernelOptions,
): Promise<VolantKernelResult> {
  const log = options.log ?? (() => {});
  const sourcePath = options.source ?? VOLANT_KERNEL_SOURCE;
  await requireSource(sourcePath);
  const fragmentBytes = await Deno.readFile(options.fragment ?? VOLANT_CONFIG_FRAGMENT);
  const fragmentSha256 = await sha256Bytes(fragmentBytes);
  const sourceRecord = await hashInput(sourcePath, options.previousSource);
  const key = await volantKernelKey({
    fragmentSha256,
    sourceSha256: sourceRecord.sha256,
    toolchain: await toolchain(),
  });
  const root = volantKernelRoot(options.cacheDir);
  await Deno.mkdir(root, { recursive: true });
  using lock = await Deno.open(`${root}/.lock`, { create: true, write: true });
  await lock.lock(true);
  const cached = await readVolantKernel(options.cacheDir, key);
  if (cached) return { kernel: cached, built: false, sourceRecord };
  await requireBuildTools();

  const id = shortKey(key);
  const tree = `${root}/build-${id}`;
  const logFile = `${root}/build-${id}.log`;
  const outDir = `${root}/${id}`;
  // Trees left by an interrupted build (any key: the lock says no build runs here now).
  for await (const entry of Deno.readDir(root)) {
    if (entry.isDirectory && /^build-|\.tmp-\d+$/.test(entry.name)) {
      await Deno.remove(`${root}/${entry.name}`, { recursive: true }).catch(() => {});
    }
  }
  const free = await freeBytes(root);
  if (free < VOLANT_KERNEL_DISK_BYTES) {
    throw fail(
      `Building the Volant kernel needs about ${
        VOLANT_KERNEL_DISK_BYTES / 1024 ** 3
      } GiB free in ${root} ` +
        `(the source tree, removed after the build); there are ${
          (free / 1024 ** 3).toFixed(1)
        } GiB`,
      { dir: root, free },
    );
  }
  const started = performance.now();
  const jobs = options.jobs ?? navigator.hardwareConcurrency ?? 1;
  log(
    `building the Volant kernel from ${sourcePath} with make -j${jobs} ` +
      `(the first build takes minutes, ~5 min on 2 cores; later runs reuse ${outDir}; log ${logFile})`,
  );
  await Deno.writeTextFile(logFile, "");
  try {
    await Deno.mkdir(tree);
    log(`  ${elapsed(performance.now() - started)}: extracting the source`);
    await runTool("tar", ["-xJf", sourcePath, "-C", tree, "--strip-components=1"], {
      apt: "tar xz-utils",
    });
    await Deno.writeFile(`${tree}/volant-microvm.config`, fragmentBytes);
    log(`  ${elapsed(performance.now() - started)}: resolving the config (tinyconfig + fragment)`);
    const config = await resolveConfig(tree, "volant-microvm.config");
    assertVolantConfig(config, new TextDecoder().decode(fragmentBytes));
    log(`  ${elapsed(performance.now() - started)}: compiling`);
    await make(
      tree,
      [`-j${jobs}`, "bzImage"],
      logFile,
      log,
      options.progressSeconds ?? 20,
      started,
    );
    const release = (await Deno.readTextFile(`${tree}/include/config/kernel.release`)).trim();
    const vmlinuxBytes = await Deno.readFile(`${tree}/vmlinux`);
    inspectVmlinux(vmlinuxBytes); // ELF x86-64 with a PVH note, or this throws
    const temp = `${outDir}.tmp-${Deno.pid}`;
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    await Deno.mkdir(temp);
    await Deno.copyFile(`${tree}/arch/x86/boot/bzImage`, `${temp}/bzImage`);
    await Deno.writeFile(`${temp}/vmlinux`, vmlinuxBytes);
    await Deno.writeTextFile(`${temp}/config`, config);
    await Deno.writeFile(`${temp}/volant-microvm.config`, fragmentBytes);
    const kernel: VolantKernel = {
      key,
      release,
      source: {
        package: VOLANT_KERNEL_SOURCE_PACKAGE,
        version: await sourcePackageVersion(sourcePath),
        sha256: sourceRecord.sha256,
      },
      fragmentSha256,
      bzImage: `${outDir}/bzImage`,
      bzImageSha256: await sha256File(`${temp}/bzImage`),
      vmlinux: `${outDir}/vmlinux`,
      vmlinuxSha256: await sha256Bytes(vmlinuxBytes as Uint8Array<ArrayBuffer>),
      config: `${outDir}/config`,
      buildSeconds: Math.round(performance.now() - started) / 1000,
    };
    await writeAtomic(`${temp}/kernel.json`, JSON.stringify(kernel, null, 2) + "\n");
    await Deno.remove(outDir, { recursive: true }).catch(() => {});
    await Deno.rename(temp, outDir);
    // Earlier builds (other keys) and their logs are superseded: keep only this one.
    for await (const entry of Deno.readDir(root)) {
      const earlier = /^([0-9a-f]{16})(\.log)?$/.exec(entry.name.replace(/^build-/, ""));
      if (earlier && earlier[1] !== id) {
        await Deno.remove(`${root}/${entry.name}`, { recursive: true }).catch(() => {});
      }
    }
    log(
      `  ${elapsed(performance.now() - started)}: built ${release}: bzImage ` +
        `${(((await Deno.stat(kernel.bzImage)).size) / 1048576).toFixed(1)} MiB`,
    );
    return { kernel, built: true, sourceRecord };
  } finally {
    await Deno.remove(tree, { recursive: true }).catch(() => {});
  }
}
