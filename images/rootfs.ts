/**
 * Root filesystems for microVMs: one read-only erofs image per image manifest, built once
 * (layers unpacked into a temp tree under the store, empty mount points added, `mkfs.erofs`
 * keeping the real owners, temp name + rename, tree deleted) and shared by every VM of that
 * image; and a small sparse ext4 disk per VM for its writable upper layer.
 *
 * The erofs image is reproducible: the same layers give the same bytes wherever and whenever
 * it is built. Its UUID comes from the manifest digest ({@linkcode rootfsUuid}), and
 * timestamps the unpack itself causes (only ever on directories: mount points, directories a
 * later layer or a whiteout changed, directories created implicitly) are clamped by
 * `mkfs.erofs` (`SOURCE_DATE_EPOCH`) to the newest timestamp of the image's files, which also
 * becomes the image's build time. Owners, modes and the timestamps of files, symlinks and
 * nodes are kept, and so are those of directories up to that newest file time.
 *
 * @module
 */
import { makeInertDir } from "./_inert_mount.ts";
import { noSpaceError } from "./no_space.ts";
import { VolantError } from "../schema/error.ts";
import { digestHex, sha256Digest } from "./digest.ts";
import { lstatOrNull } from "./_paths.ts";
import { type UnpackLayer, unpackLayers } from "./unpack.ts";
import type { OnImageStep } from "./steps.ts";

/** Directories every rootfs gets (empty) when the image lacks them: the guest mounts on them. */
export const MOUNT_POINTS: readonly string[] = ["proc", "sys", "dev", "run", "tmp"];

/** Options of {@linkcode buildRootfs}. */
export interface BuildRootfsOptions {
  /** Stops the build; nothing is left behind. */
  signal?: AbortSignal;
  /** The most file bytes the layers may unpack to (see `unpackLayers`). */
  maxBytes?: number;
  /** Test seam (`steps.ts`): `layer_unpacked` after each layer, `rootfs_built` before the rename. */
  onStep?: OnImageStep;
}

/** A built (or already present) rootfs image. */
export interface BuiltRootfs {
  /** `<root>/rootfs/<manifest hex>.erofs`. */
  path: string;
  /** Its size in bytes. */
  size_bytes: number;
  /** Whether it already existed. */
  cached: boolean;
  /** Unpack warnings (skipped xattrs or device nodes), empty when cached. */
  warnings: string[];
}

/**
 * The path of the rootfs image of `manifestDigest` under the store `root`.
 *
 * @example
 * ```ts
 * import { rootfsPath } from "./rootfs.ts";
 * const p = rootfsPath("/var/lib/volant/images", "sha256:" + "a".repeat(64));
 * console.assert(p === `/var/lib/volant/images/rootfs/${"a".repeat(64)}.erofs`);
 * ```
 */
export function rootfsPath(root: string, manifestDigest: string): string {
  return `${root}/rootfs/${digestHex(manifestDigest, "manifest digest")}.erofs`;
}

/**
 * The filesystem UUID of the rootfs of `manifestDigest`: derived from the digest (an RFC 9562
 * version 8 UUID), so that rebuilding the image gives the same bytes.
 *
 * @example
 * ```ts
 * import { rootfsUuid } from "./rootfs.ts";
 * const uuid = rootfsUuid("sha256:" + "a".repeat(64));
 * console.assert(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid));
 * console.assert(uuid === rootfsUuid("sha256:" + "a".repeat(64)));
 * ```
 */
export function rootfsUuid(manifestDigest: string): string {
  const h = sha256Digest(new TextEncoder().encode(`volant-rootfs:${manifestDigest}`)).slice(7);
  const variant = (8 | (parseInt(h[16]!, 16) & 3)).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${
    h.slice(20, 32)
  }`;
}

/** How far the kernel's file times may lag `Date.now()` (its coarse clock runs a tick behind). */
const CLOCK_MARGIN_MS = 20;

/**
 * The reproducible timestamps of an unpacked tree. Every file, symlink and node under `dir`
 * carries the time its layer gave it; only directories can carry a time the unpack itself
 * caused (the root, mount points, implicitly created parents, and directories a later layer or
 * a whiteout changed), and those times are at or after `startedMs`. Returns the newest time of
 * a non-directory (whole seconds; 0 when there is none): `mkfs.erofs` clamps every newer time
 * to it. When that time is not before `startedMs` (an image dated in the future, or written
 * just before the build), clamping alone cannot hide the unpack's own times, so the
 * directories dated at or after `startedMs` are set to it here.
 */
async function reproducibleTime(dir: string, startedMs: number): Promise<number> {
  let newest = 0;
  const touched: string[] = [];
  const pending = [dir];
  const note = (path: string, info: Deno.FileInfo) => {
    const ms = info.mtime?.getTime() ?? 0;
    if (info.isDirectory) {
      if (ms >= startedMs) touched.push(path);
    } else newest = Math.max(newest, Math.floor(ms / 1000));
  };
  note(dir, await Deno.lstat(dir));
  for (let at = pending.pop(); at !== undefined; at = pending.pop()) {
    for await (const entry of Deno.readDir(at)) {
      const path = `${at}/${entry.name}`;
      note(path, await Deno.lstat(path));
      if (entry.isDirectory) pending.push(path);
    }
  }
  if (newest * 1000 >= startedMs) {
    for (const path of touched) await Deno.utime(path, newest, newest);
  }
  return newest;
}

/**
 * Builds `<root>/rootfs/<manifest hex>.erofs` from `layers` unless it exists. The layers are
 * unpacked into `<root>/tmp/` (root-only, 0700) on an inert `nodev,nosuid,noexec` bind mount
 * (so the image's device nodes and setuid files are unusable on the host), mount points are added, `mkfs.erofs` (without `--all-root`, so
 * owners stay as the layers set them) writes a temp image that is renamed into place; the tree
 * is always deleted, and on failure so is the temp image. The image is reproducible (see the
 * module documentation).
 *
 * @example
 * ```ts ignore
 * import { buildRootfs } from "./rootfs.ts";
 * const fs = await buildRootfs("/var/lib/volant/images", manifestDigest, layers);
 * console.log(fs.path, fs.size_bytes);
 * ```
 */
export async function buildRootfs(
  root: string,
  manifestDigest: string,
  layers: readonly UnpackLayer[],
  options: BuildRootfsOptions = {},
): Promise<BuiltRootfs> {
  const path = rootfsPath(root, manifestDigest);
  const existing = await lstatOrNull(path);
  if (existing?.isFile) return { path, size_bytes: existing.size, cached: true, warnings: [] };
  const hex = digestHex(manifestDigest);
  const id = crypto.randomUUID();
  const scratch = `${root}/tmp/unpack-${hex}-${id}`;
  const tree = `${scratch}/root`;
  const temp = `${root}/rootfs/.tmp-${hex}-${id}.erofs`;
  await Deno.mkdir(`${root}/tmp`, { recursive: true, mode: 0o700 });
  await Deno.chmod(`${root}/tmp`, 0o700);
  await Deno.mkdir(`${root}/rootfs`, { recursive: true });
  // The image's device nodes and setuid files land on a nodev,nosuid,noexec mount, root-only.
  const inert = await makeInertDir(scratch);
  // Every timestamp the unpack causes (rather than copies from a layer) is at or after this.
  const started = Date.now() - CLOCK_MARGIN_MS;
  try {
    const { warnings } = await unpackLayers(layers, tree, options);
    if (!inert.mounted) {
      warnings.push(`the unpack tree is not an inert (nodev,nosuid) mount: ${inert.reason}`);
    }
    for (const name of MOUNT_POINTS) {
      if ((await lstatOrNull(`${tree}/${name}`)) !== null) continue;
      await Deno.mkdir(`${tree}/${name}`, { mode: 0o755 });
      await Deno.chmod(`${tree}/${name}`, name === "tmp" ? 0o1777 : 0o755);
    }
    const epoch = await reproducibleTime(tree, started);
    options.signal?.throwIfAborted();
    // SOURCE_DATE_EPOCH makes mkfs.erofs clamp newer timestamps to it and use it as the build
    // time; the UUID is fixed per image.
    await runTool(
      "mkfs.erofs",
      ["--quiet", `-U${rootfsUuid(manifestDigest)}`, temp, tree],
      "erofs-utils",
      options.signal,
      { SOURCE_DATE_EPOCH: String(epoch) },
    );
    await Deno.chmod(temp, 0o444);
    options.onStep?.("rootfs_built");
    await Deno.rename(temp, path);
    return { path, size_bytes: (await Deno.stat(path)).size, cached: false, warnings };
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw noSpaceError(e, root, "Building the image's root filesystem");
  } finally {
    await inert.release();
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}

/** A writable disk made by {@linkcode createWritableDisk}. */
export interface WritableDisk {
  /** The disk file. */
  path: string;
  /** Its apparent size. */
  size_bytes: number;
  /** The bytes it really occupies on the host (sparse file). */
  allocated_bytes: number;
}

/**
 * Creates a sparse ext4 disk of `sizeMiB` MiB at `path` for a VM's writable upper layer:
 * `mkfs.ext4 -q -F -E root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1` on a truncated
 * file (no mount, no loop device), so it occupies well under a few MiB however large it is.
 * Inode tables are left for the guest kernel to initialise lazily; mounting with
 * `noinit_itable` keeps the file sparse. An existing file is never overwritten
 * (`already_exists`); a failed mkfs removes the file.
 *
 * @example
 * ```ts ignore
 * import { createWritableDisk } from "./rootfs.ts";
 * const disk = await createWritableDisk("/var/lib/volant/vms/web/upper.ext4", 1024);
 * console.log(disk.allocated_bytes);
 * ```
 */
export async function createWritableDisk(path: string, sizeMiB: number): Promise<WritableDisk> {
  if (!Number.isInteger(sizeMiB) || sizeMiB < 4 || sizeMiB > 16 * 1024 * 1024) {
    throw new VolantError(
      "invalid_argument",
      `sizeMiB: ${sizeMiB} is not a whole number of MiB between 4 and 16777216 (16 TiB)`,
      { field: "sizeMiB", value: sizeMiB },
    );
  }
  try {
    using file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    await file.truncate(sizeMiB * 1024 * 1024);
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new VolantError(
        "already_exists",
        `${path} already exists; a writable disk is never overwritten`,
        {
          path,
        },
      );
    }
    throw e;
  }
  try {
    await runTool("mkfs.ext4", [
      "-q",
      "-F",
      "-E",
      "root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1",
      path,
    ], "e2fsprogs");
  } catch (e) {
    await Deno.remove(path).catch(() => {});
    throw e;
  }
  const st = await Deno.stat(path);
  return { path, size_bytes: st.size, allocated_bytes: (st.blocks ?? 0) * 512 };
}

async function runTool(
  cmd: string,
  args: string[],
  pkg: string,
  signal?: AbortSignal,
  env?: Record<string, string>,
): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, {
      args,
      ...(env === undefined ? {} : { env }),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal,
    })
      .output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new VolantError("internal", `${cmd} is not installed (Debian package ${pkg})`, {
        command: cmd,
      });
    }
    throw e;
  }
  signal?.throwIfAborted();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim() ||
      new TextDecoder().decode(out.stdout).trim();
    throw new VolantError(
      "internal",
      `${cmd} ${args.join(" ")} failed with exit status ${out.code}: ${text}`,
      { command: cmd, exit_code: out.code },
    );
  }
}
