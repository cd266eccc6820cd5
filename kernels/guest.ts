/**
 * Builds the guest dir the daemon boots from: `bzImage-volant` and `vmlinux-generic` (the
 * kernel and its ELF, for PVH), `initramfs.cpio` (stage 0) and `runtime.erofs` (the shared
 * read-only runtime), and records what went in and came out in `guest.json`. The kernel is
 * Volant's own (`kernel: "volant"`, the default: built from Debian's kernel source with
 * everything built in, so stage 0 loads no modules; see `volant_kernel.ts`) or Debian's cloud
 * kernel (`kernel: "debian"`, with its modules in stage 0). When the Volant kernel cannot be
 * built the guest falls back to Debian's, and `guest.json` says why.
 * Idempotent: each file is rebuilt only when the digest of its inputs changed or the file was
 * replaced; every file is written under a temporary name and renamed when complete; one build
 * at a time per directory (a lock file).
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import { sha256Bytes } from "./_hash.ts";
import {
  hashInput,
  type InputRecord,
  keyOf,
  outputIntact,
  type OutputRecord,
  recordOutput,
  writeAtomic,
} from "./_inputs.ts";
import { fetchDebianKernel } from "./debian_kernel.ts";
import {
  buildInitramfs,
  INIT_SCRIPT_VERSION,
  type InitramfsModule,
  initScript,
} from "./initramfs.ts";
import { moduleLoadOrder, readModulesDep, STAGE0_MODULES, type WantedModule } from "./modules.ts";
import {
  buildRuntimeImage,
  RUNTIME_LAYOUT_VERSION,
  sharedLibraries,
  uuidFromDigest,
} from "./runtime_image.ts";
import { buildDetach } from "./detach/build.ts";
import { extractVmlinux, inspectVmlinux } from "./vmlinux.ts";
import { buildVolantKernel, type VolantKernel } from "./volant_kernel.ts";

/** The files of a guest dir, as the daemon names them (`daemon/guest.ts`). */
export const GUEST_FILES = [
  "bzImage-volant",
  "vmlinux-generic",
  "initramfs.cpio",
  "runtime.erofs",
] as const;
/** One of {@linkcode GUEST_FILES}. */
export type GuestFile = typeof GUEST_FILES[number];

/** Version of the vmlinux extraction (part of its key). */
const VMLINUX_EXTRACTOR_VERSION = 1;
/** Version of the manifest layout. */
export const GUEST_MANIFEST_FORMAT = 1;

/** Which kernel a guest boots: Volant's own build, or Debian's cloud kernel and its modules. */
export type GuestKernel = "volant" | "debian";
/** The values of {@linkcode GuestKernel}. */
export const GUEST_KERNELS: readonly GuestKernel[] = ["volant", "debian"];

/** The kernel a guest boots, as `guest.json` records it. */
export interface GuestKernelRecord {
  /** The kernel in the guest dir. */
  flavor: GuestKernel;
  /** The kernel asked for (differs from `flavor` after a fallback). */
  requested: GuestKernel;
  /** Why the Volant kernel was not used, after a fallback to Debian's. */
  fallbackReason?: string;
  /** Debian package: the image (`linux-image-…-cloud-amd64`) or the source (`linux-source-6.1`). */
  package: string;
  /** Package version, e.g. `6.1.192-3`. */
  version: string;
  /** `uname -r`, e.g. `6.1.0-57-cloud-amd64` or `6.1.192-volant`. */
  abi: string;
  /** The Volant kernel's cache key (`volant_kernel.ts`). */
  key?: string;
}

/** What `guest.json` holds. */
export interface GuestManifest {
  /** Layout version of this manifest. */
  format: number;
  /** The kernel the guest boots. */
  kernel: GuestKernelRecord;
  /** Each file of the guest dir: sha256, size, and the key of the inputs it was built from. */
  files: Record<GuestFile, OutputRecord>;
  /** The inputs, hashed. */
  inputs: {
    bundle: InputRecord;
    deno: InputRecord;
    denoLibraries: InputRecord[];
    busybox: InputRecord;
    /**
     * Stage 0's `detach` helper (`kernels/detach/`): compiler and sha256, or why it could not
     * be built (then stage 0 never starts a workload itself).
     */
    detach?: { compiler: string; sha256: string } | { error: string };
    /** The Volant kernel's source tarball (its hash is reused while unchanged). */
    kernelSource?: InputRecord;
    modules: Array<{ name: string; path: string; required: boolean; sha256: string }>;
    initScriptVersion: number;
    initScriptSha256: string;
    runtimeLayoutVersion: number;
  };
  /** The PVH entry of `vmlinux-generic` (hex). */
  vmlinuxPvhEntry: string;
  /** The run that wrote this manifest. */
  build: {
    /** RFC 3339 end time. */
    at: string;
    /** Wall time in seconds. */
    seconds: number;
    /** Files written by this run. */
    rebuilt: GuestFile[];
    /** Files reused from an earlier run. */
    reused: GuestFile[];
  };
}

/** Options of {@linkcode buildGuest}. */
export interface BuildGuestOptions {
  /** The guest dir to fill (created when missing). */
  dir: string;
  /** The kestrel bundle (`dist/kestrel.js`) to put in the runtime image. */
  bundle: string;
  /**
   * The kernel: `volant` (default) builds Volant's own (cached in `<kernelDir>/volant-kernel/`)
   * and falls back to Debian's when that fails; `debian` uses Debian's cloud kernel.
   */
  kernel?: GuestKernel;
  /** Where the Debian kernel is fetched and the Volant kernel is built and cached; default `dir`. */
  kernelDir?: string;
  /** The Volant kernel's source tarball; default `/usr/src/linux-source-6.1.tar.xz`. */
  kernelSource?: string;
  /** The Deno binary for the guest; default the one running this build. */
  deno?: string;
  /** A static busybox; default `/bin/busybox` (package busybox-static). */
  busybox?: string;
  /**
   * Modules stage 0 loads with Debian's kernel (dependencies are added); default
   * {@linkcode STAGE0_MODULES}. Volant's kernel has them built in: stage 0 loads none.
   */
  modules?: readonly WantedModule[];
  /** Progress lines (what is being built). */
  log?: (line: string) => void;
}

/**
 * Reads `<dir>/guest.json`; undefined when missing or unreadable.
 *
 * @example
 * ```ts ignore
 * const m = await readGuestManifest("/var/lib/volant/guest");
 * console.log(m?.files["runtime.erofs"].sha256);
 * ```
 */
export async function readGuestManifest(dir: string): Promise<GuestManifest | undefined> {
  try {
    const manifest = JSON.parse(await Deno.readTextFile(`${dir}/guest.json`)) as GuestManifest;
    return manifest.format === GUEST_MANIFEST_FORMAT ? manifest : undefined;
  } catch {
    return undefined;
  }
}

async function requireFile(path: string, what: string, fix: string): Promise<void> {
  try {
    if ((await Deno.stat(path)).isFile) return;
  } catch {
    // reported below
  }
  throw new VolantError("invalid_argument", `${what} ${path} does not exist; ${fix}`, { path });
}

async function removeLeftovers(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    if (/\.tmp-\d+$/.test(entry.name) || entry.name.startsWith(".runtime-staging-")) {
      await Deno.remove(`${dir}/${entry.name}`, { recursive: true }).catch(() => {});
    }
  }
}

/**
 * Builds (or reuses) the guest in `options.dir` and writes `guest.json`.
 *
 * @example
 * ```ts ignore
 * const m = await buildGuest({ dir: "/var/lib/volant/guest", bundle: "dist/kestrel.js" });
 * console.log(m.build.rebuilt, m.files["initramfs.cpio"].size);
 * ```
 */
export async function buildGuest(options: BuildGuestOptions): Promise<GuestManifest> {
  const started = performance.now();
  await Deno.mkdir(options.dir, { recursive: true });
  const dir = await Deno.realPath(options.dir);
  const log = options.log ?? (() => {});
  await requireFile(
    options.bundle,
    "The bundle",
    "build it with `./volant build` or `deno bundle`",
  );
  const busyboxPath = options.busybox ?? "/bin/busybox";
  await requireFile(busyboxPath, "busybox", "install it with `apt-get install busybox-static`");
  if ((await sharedLibraries(busyboxPath)).length > 0) {
    throw new VolantError(
      "invalid_argument",
      `${busyboxPath} is dynamically linked; stage 0 needs a static one (apt-get install busybox-static)`,
    );
  }
  using lock = await Deno.open(`${dir}/.build.lock`, { create: true, write: true });
  await lock.lock(true);
  await removeLeftovers(dir);
  const previous = await readGuestManifest(dir);
  const prevFiles: Partial<Record<GuestFile, OutputRecord>> = previous?.files ?? {};
  const files: Partial<Record<GuestFile, OutputRecord>> = {};
  const rebuilt: GuestFile[] = [];
  const reused: GuestFile[] = [];
  const path = (f: GuestFile) => `${dir}/${f}`;
  const step = async (file: GuestFile, key: string, make: () => Promise<string | undefined>) => {
    const prev = prevFiles[file];
    if (prev?.key === key && await outputIntact(path(file), prev)) {
      files[file] = prev;
      reused.push(file);
      return;
    }
    log(`building ${file}`);
    const sha = await make();
    files[file] = await recordOutput(path(file), key, sha);
    rebuilt.push(file);
  };

  // Kernel: Volant's (built or taken from its cache) or Debian's (fetched or reused).
  const kernelDir = options.kernelDir ?? dir;
  const prevInputs = previous?.inputs;
  const requested = options.kernel ?? "volant";
  let volant: VolantKernel | undefined;
  let kernelSource: InputRecord | undefined;
  let fallbackReason: string | undefined;
  if (requested === "volant") {
    try {
      const result = await buildVolantKernel({
        cacheDir: kernelDir,
        source: options.kernelSource,
        previousSource: prevInputs?.kernelSource,
        log,
      });
      volant = result.kernel;
      kernelSource = result.sourceRecord;
    } catch (err) {
      fallbackReason = err instanceof Error ? err.message : String(err);
      log(`the Volant kernel could not be built; using Debian's instead. Why: ${fallbackReason}`);
    }
  }
  const debian = volant ? undefined : await fetchDebianKernel(kernelDir);
  const flavor: GuestKernel = volant ? "volant" : "debian";
  const bzImage = volant
    ? { path: volant.bzImage, sha256: volant.bzImageSha256 }
    : { path: debian!.bzImage, sha256: debian!.bzImageSha256 };
  await step(
    "bzImage-volant",
    await keyOf({ kernel: flavor, bzImage: bzImage.sha256 }),
    async () => {
      if (await Deno.realPath(bzImage.path) !== path("bzImage-volant")) {
        const temp = `${path("bzImage-volant")}.tmp-${Deno.pid}`;
        await Deno.copyFile(bzImage.path, temp);
        await Deno.rename(temp, path("bzImage-volant"));
      }
      return bzImage.sha256;
    },
  );

  let pvhEntry = previous?.vmlinuxPvhEntry ?? "";
  // Volant's vmlinux comes from its build; Debian's is extracted from the bzImage.
  const vmlinuxKey = volant
    ? await keyOf({ kernel: flavor, vmlinux: volant.vmlinuxSha256 })
    : await keyOf({ bzImage: bzImage.sha256, v: VMLINUX_EXTRACTOR_VERSION });
  await step("vmlinux-generic", vmlinuxKey, async () => {
    if (volant) {
      const data = await Deno.readFile(volant.vmlinux);
      pvhEntry = "0x" + inspectVmlinux(data).pvhEntry.toString(16);
      await writeAtomic(path("vmlinux-generic"), data);
      return volant.vmlinuxSha256;
    }
    const { data, info } = extractVmlinux(await Deno.readFile(path("bzImage-volant")));
    await writeAtomic(path("vmlinux-generic"), data);
    pvhEntry = "0x" + info.pvhEntry.toString(16);
    return undefined;
  });

  // Stage 0: busybox + modules in dependency order (none with Volant's kernel) + /init.
  const busybox = await hashInput(busyboxPath, prevInputs?.busybox);
  const modules: InitramfsModule[] = [];
  if (debian) {
    const order = moduleLoadOrder(
      await readModulesDep(debian.modulesDir),
      options.modules ?? STAGE0_MODULES,
    );
    for (const m of order) {
      modules.push({ ...m, data: await Deno.readFile(`${debian.modulesDir}/${m.path}`) });
    }
  }
  const moduleRecords = await Promise.all(modules.map(async (m) => ({
    name: m.name,
    path: m.path,
    required: m.required,
    sha256: await sha256Bytes(m.data as Uint8Array<ArrayBuffer>),
  })));
  const busyboxBytes = await Deno.readFile(busybox.path);
  let detach: { compiler: string; sha256: string } | { error: string };
  let detachBytes: Uint8Array | undefined;
  try {
    const built = await buildDetach();
    detachBytes = built.data;
    detach = {
      compiler: built.compiler,
      sha256: await sha256Bytes(built.data as Uint8Array<ArrayBuffer>),
    };
  } catch (err) {
    detach = { error: err instanceof Error ? err.message : String(err) };
    log(`${detach.error}; kestrel will start every workload itself (later)`);
  }
  const cpio = buildInitramfs({ busybox: busyboxBytes, modules, detach: detachBytes });
  const cpioSha = await sha256Bytes(cpio as Uint8Array<ArrayBuffer>);
  // The archive is cheap to compute, so its own digest is the key: any change to busybox, a
  // module, the order or the script gives a new one.
  await step("initramfs.cpio", cpioSha, async () => {
    await writeAtomic(path("initramfs.cpio"), cpio);
    return cpioSha;
  });
  const initScriptSha256 = await sha256Bytes(new TextEncoder().encode(initScript({ modules })));

  // Runtime image: Deno + libraries + busybox + bundle.
  const denoPath = options.deno ?? Deno.execPath();
  const deno = await hashInput(denoPath, prevInputs?.deno);
  const denoLibraries: InputRecord[] = [];
  for (const lib of await sharedLibraries(deno.path)) {
    const prevLib = prevInputs?.denoLibraries?.find((l) => l.path === lib);
    // Libraries keep their ldd path (they are installed at it), not the resolved one.
    denoLibraries.push({ ...(await hashInput(lib, prevLib)), path: lib });
  }
  const bundle = await hashInput(options.bundle, prevInputs?.bundle);
  const runtimeKey = await keyOf({
    bundle: bundle.sha256,
    deno: deno.sha256,
    libs: denoLibraries.map((l) => [l.path, l.sha256]),
    busybox: busybox.sha256,
    layout: RUNTIME_LAYOUT_VERSION,
  });
  await step("runtime.erofs", runtimeKey, async () => {
    await buildRuntimeImage({
      output: path("runtime.erofs"),
      bundle: bundle.path,
      deno: deno.path,
      busybox: busybox.path,
      uuid: uuidFromDigest(runtimeKey),
    });
    return undefined;
  });

  const manifest: GuestManifest = {
    format: GUEST_MANIFEST_FORMAT,
    kernel: volant
      ? {
        flavor,
        requested,
        package: volant.source.package,
        version: volant.source.version,
        abi: volant.release,
        key: volant.key,
      }
      : {
        flavor,
        requested,
        ...(fallbackReason === undefined ? {} : { fallbackReason }),
        package: debian!.package,
        version: debian!.version,
        abi: debian!.abi,
      },
    files: files as Record<GuestFile, OutputRecord>,
    inputs: {
      bundle,
      deno,
      denoLibraries,
      busybox,
      detach,
      ...(kernelSource ? { kernelSource } : {}),
      modules: moduleRecords,
      initScriptVersion: INIT_SCRIPT_VERSION,
      initScriptSha256,
      runtimeLayoutVersion: RUNTIME_LAYOUT_VERSION,
    },
    vmlinuxPvhEntry: pvhEntry,
    build: {
      at: new Date().toISOString(),
      seconds: Math.round(performance.now() - started) / 1000,
      rebuilt,
      reused,
    },
  };
  await writeAtomic(`${dir}/guest.json`, JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}
