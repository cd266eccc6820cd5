/**
 * Builds the guest dir the daemon boots from: `bzImage-volant` (Debian's cloud kernel),
 * `vmlinux-generic` (its ELF, for PVH), `initramfs.cpio` (stage 0) and `runtime.erofs` (the
 * shared read-only runtime), and records what went in and came out in `guest.json`.
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
import { extractVmlinux } from "./vmlinux.ts";

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

/** What `guest.json` holds. */
export interface GuestManifest {
  /** Layout version of this manifest. */
  format: number;
  /** The kernel the guest boots. */
  kernel: { package: string; version: string; abi: string };
  /** Each file of the guest dir: sha256, size, and the key of the inputs it was built from. */
  files: Record<GuestFile, OutputRecord>;
  /** The inputs, hashed. */
  inputs: {
    bundle: InputRecord;
    deno: InputRecord;
    denoLibraries: InputRecord[];
    busybox: InputRecord;
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
  /** Where the Debian kernel is fetched and extracted; default `dir`. */
  kernelDir?: string;
  /** The Deno binary for the guest; default the one running this build. */
  deno?: string;
  /** A static busybox; default `/bin/busybox` (package busybox-static). */
  busybox?: string;
  /** Modules stage 0 loads (dependencies are added); default {@linkcode STAGE0_MODULES}. */
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

  // Kernel: fetched (or reused) by fetchDebianKernel, copied when cached elsewhere.
  const kernelDir = options.kernelDir ?? dir;
  const kernel = await fetchDebianKernel(kernelDir);
  await step("bzImage-volant", await keyOf({ bzImage: kernel.bzImageSha256 }), async () => {
    if (await Deno.realPath(kernel.bzImage) !== path("bzImage-volant")) {
      const temp = `${path("bzImage-volant")}.tmp-${Deno.pid}`;
      await Deno.copyFile(kernel.bzImage, temp);
      await Deno.rename(temp, path("bzImage-volant"));
    }
    return kernel.bzImageSha256;
  });

  let pvhEntry = previous?.vmlinuxPvhEntry ?? "";
  const vmlinuxKey = await keyOf({ bzImage: kernel.bzImageSha256, v: VMLINUX_EXTRACTOR_VERSION });
  await step("vmlinux-generic", vmlinuxKey, async () => {
    const { data, info } = extractVmlinux(await Deno.readFile(path("bzImage-volant")));
    await writeAtomic(path("vmlinux-generic"), data);
    pvhEntry = "0x" + info.pvhEntry.toString(16);
    return undefined;
  });

  // Stage 0: busybox + modules in dependency order + /init.
  const prevInputs = previous?.inputs;
  const busybox = await hashInput(busyboxPath, prevInputs?.busybox);
  const order = moduleLoadOrder(
    await readModulesDep(kernel.modulesDir),
    options.modules ?? STAGE0_MODULES,
  );
  const modules: InitramfsModule[] = [];
  for (const m of order) {
    modules.push({ ...m, data: await Deno.readFile(`${kernel.modulesDir}/${m.path}`) });
  }
  const moduleRecords = await Promise.all(modules.map(async (m) => ({
    name: m.name,
    path: m.path,
    required: m.required,
    sha256: await sha256Bytes(m.data as Uint8Array<ArrayBuffer>),
  })));
  const busyboxBytes = await Deno.readFile(busybox.path);
  const cpio = buildInitramfs({ busybox: busyboxBytes, modules });
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
    kernel: { package: kernel.package, version: kernel.version, abi: kernel.abi },
    files: files as Record<GuestFile, OutputRecord>,
    inputs: {
      bundle,
      deno,
      denoLibraries,
      busybox,
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
