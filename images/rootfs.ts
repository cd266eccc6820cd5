/**
 * Root filesystems for microVMs: one read-only erofs image per image manifest, built once
 * (layers unpacked into a temp tree under the store, empty mount points added, `mkfs.erofs`
 * keeping the real owners, temp name + rename, tree deleted) and shared by every VM of that
 * image; and a small sparse ext4 disk per VM for its writable upper layer.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { digestHex } from "./digest.ts";
import { lstatOrNull } from "./_paths.ts";
import { type UnpackLayer, unpackLayers } from "./unpack.ts";

/** Directories every rootfs gets (empty) when the image lacks them: the guest mounts on them. */
export const MOUNT_POINTS: readonly string[] = ["proc", "sys", "dev", "run", "tmp"];

/** Options of {@linkcode buildRootfs}. */
export interface BuildRootfsOptions {
  /** Stops the build; nothing is left behind. */
  signal?: AbortSignal;
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
 * Builds `<root>/rootfs/<manifest hex>.erofs` from `layers` unless it exists. The layers are
 * unpacked into `<root>/tmp/`, mount points are added, `mkfs.erofs` (without `--all-root`, so
 * owners stay as the layers set them) writes a temp image that is renamed into place; the tree
 * is always deleted, and on failure so is the temp image.
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
  const tree = `${root}/tmp/unpack-${hex}-${id}`;
  const temp = `${root}/rootfs/.tmp-${hex}-${id}.erofs`;
  await Deno.mkdir(`${root}/tmp`, { recursive: true });
  await Deno.mkdir(`${root}/rootfs`, { recursive: true });
  try {
    const { warnings } = await unpackLayers(layers, tree, options);
    for (const name of MOUNT_POINTS) {
      if ((await lstatOrNull(`${tree}/${name}`)) !== null) continue;
      await Deno.mkdir(`${tree}/${name}`, { mode: 0o755 });
      await Deno.chmod(`${tree}/${name}`, name === "tmp" ? 0o1777 : 0o755);
    }
    options.signal?.throwIfAborted();
    await runTool("mkfs.erofs", ["--quiet", temp, tree], "erofs-utils", options.signal);
    await Deno.chmod(temp, 0o444);
    await Deno.rename(temp, path);
    return { path, size_bytes: (await Deno.stat(path)).size, cached: false, warnings };
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  } finally {
    await Deno.remove(tree, { recursive: true }).catch(() => {});
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
): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, {
      args,
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
