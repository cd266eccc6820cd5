/**
 * Applies image layers, in order, into a directory: regular files, directories, symlinks
 * (created as-is and never followed outward), hard links (inside the root only), device nodes
 * and fifos; whiteouts (`.wh.<name>` deletes `<name>` from lower layers, `.wh..wh..opq` hides
 * everything lower layers put in its directory); a file replacing a directory and the
 * reverse; owners, modes with setuid/setgid/sticky, mtimes and xattrs. Each layer's
 * uncompressed stream is checked against its `diff_id` when one is given.
 *
 * An entry whose path climbs out of the root, or goes through a symlink pointing outside it,
 * fails the whole unpack (`invalid_argument`, naming the entry and layer) and the partial tree
 * is removed.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { VolantError } from "../schema/error.ts";
import { openLayer } from "./decompress.ts";
import { applyMetadata, applyTime, makeNode, Warnings } from "./_metadata.ts";
import { cleanPath, hostPath, lstatOrNull, PathEscape, resolveDir } from "./_paths.ts";
import { readTar, type TarEntry } from "./tar.ts";
import { noSpaceError } from "./no_space.ts";
import type { OnImageStep } from "./steps.ts";

/** A layer blob to apply. */
export interface UnpackLayer {
  /** The blob file. */
  path: string;
  /** Its media type (decides the decompressor). */
  mediaType: string;
  /** Its digest, for messages. */
  digest: string;
  /** The digest of its uncompressed tar (the config's `rootfs.diff_ids` entry), checked when given. */
  diffId?: string;
}

/** Options of {@linkcode unpackLayers}. */
export interface UnpackOptions {
  /** Stops the unpack between entries (the partial tree is removed). */
  signal?: AbortSignal;
  /**
   * The most file bytes the layers may unpack to, together (a small compressed layer can hold
   * a huge zero-filled file). Past it the unpack fails and the tree is removed.
   * @default {DEFAULT_MAX_UNPACKED_BYTES}
   */
  maxBytes?: number;
  /** Test seam (`steps.ts`): `layer_unpacked` after each layer. */
  onStep?: OnImageStep;
}

/** The default unpacked-size cap: 32 GiB. */
export const DEFAULT_MAX_UNPACKED_BYTES = 32 * 1024 ** 3;

/** What {@linkcode unpackLayers} did. */
export interface UnpackResult {
  /** Tar entries applied, across layers. */
  entries: number;
  /** What could not be applied (xattrs without `setfattr`, device nodes without root), grouped. */
  warnings: string[];
}

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

/**
 * Unpacks `layers` in order into `target`, which must not exist yet. On any failure the
 * partial tree is removed and the error thrown.
 *
 * @example
 * ```ts ignore
 * import { unpackLayers } from "./unpack.ts";
 * const r = await unpackLayers([
 *   { path: "blobs/sha256/ab…", mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: "sha256:ab…" },
 * ], "/var/lib/volant/images/tmp/rootfs");
 * console.log(r.entries, r.warnings);
 * ```
 */
export async function unpackLayers(
  layers: readonly UnpackLayer[],
  target: string,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  await Deno.mkdir(target, { mode: 0o755 });
  await Deno.chmod(target, 0o755);
  const warnings = new Warnings();
  const budget = { max: options.maxBytes ?? DEFAULT_MAX_UNPACKED_BYTES, used: 0 };
  let entries = 0;
  let what = "The image";
  try {
    for (const [i, layer] of layers.entries()) {
      what = `Layer ${i + 1} of ${layers.length} (${layer.digest})`;
      entries += await applyLayer(target, layer, what, warnings, options.signal, budget);
      options.onStep?.("layer_unpacked");
    }
    return { entries, warnings: warnings.list() };
  } catch (e) {
    await Deno.remove(target, { recursive: true }).catch(() => {});
    throw noSpaceError(e, target, what);
  }
}

/** Per-layer state: what this layer wrote (for opaque dirs) and directory times to set last. */
interface LayerState {
  root: string;
  what: string;
  warnings: Warnings;
  written: Set<string>;
  dirTimes: Map<string, number>;
  /** File bytes written across all layers, and the cap. */
  budget: { max: number; used: number };
}

async function applyLayer(
  root: string,
  layer: UnpackLayer,
  what: string,
  warnings: Warnings,
  signal: AbortSignal | undefined,
  budget: { max: number; used: number },
): Promise<number> {
  const hash = createHash("sha256");
  const tar = (await openLayer(layer.path, layer.mediaType, what)).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        hash.update(chunk);
        controller.enqueue(chunk);
      },
    }),
  );
  const state: LayerState = {
    root,
    what,
    warnings,
    written: new Set(),
    dirTimes: new Map(),
    budget,
  };
  let count = 0;
  for await (const entry of readTar(tar, what)) {
    signal?.throwIfAborted();
    try {
      await applyEntry(state, entry);
    } catch (e) {
      if (!(e instanceof PathEscape)) throw e;
      throw new VolantError(
        "invalid_argument",
        `${what}: entry ${JSON.stringify(entry.path)} is refused: ${e.message}`,
        { entry: entry.path, layer: layer.digest },
      );
    }
    count++;
  }
  // Deepest first, so setting a child's time does not move its parent's afterwards.
  const dirs = [...state.dirTimes].sort((a, b) => b[0].length - a[0].length);
  for (const [path, mtime] of dirs) await applyTime(path, mtime, false);
  const diffId = `sha256:${hash.digest("hex")}`;
  if (layer.diffId !== undefined && diffId !== layer.diffId) {
    throw new VolantError(
      "checksum_mismatch",
      `${what}: its uncompressed content has digest ${diffId} but the image config says ${layer.diffId}`,
      { layer: layer.digest, expected: layer.diffId, actual: diffId },
    );
  }
  return count;
}

function markWritten(state: LayerState, rel: readonly string[]): void {
  for (let i = 1; i <= rel.length; i++) state.written.add(rel.slice(0, i).join("/"));
}

async function applyEntry(state: LayerState, entry: TarEntry): Promise<void> {
  const { root } = state;
  const comps = cleanPath(entry.path);
  if (comps === null) throw new PathEscape("its path climbs out of the image root");
  const base = comps.at(-1);
  if (base === undefined) {
    // The archive's own root ("./"): only its metadata applies.
    if (entry.type !== "directory") throw new PathEscape("the image root must be a directory");
    await applyMetadata(root, entry, "/", state.warnings);
    state.dirTimes.set(root, entry.mtime);
    return;
  }
  if (base.startsWith(WHITEOUT)) return await whiteout(state, comps.slice(0, -1), base);
  const parent = (await resolveDir(root, comps.slice(0, -1), true))!;
  const rel = [...parent, base];
  const path = hostPath(root, rel);
  const display = `/${rel.join("/")}`;
  markWritten(state, rel);
  const existing = await lstatOrNull(path);
  if (entry.type === "directory") {
    if (existing?.isDirectory !== true) {
      if (existing !== null) await Deno.remove(path, { recursive: true });
      await Deno.mkdir(path, { mode: 0o700 });
    }
    await applyMetadata(path, entry, display, state.warnings);
    state.dirTimes.set(path, entry.mtime);
    return;
  }
  if (entry.type === "hardlink") return await hardLink(state, entry, path, existing);
  if (existing !== null) await Deno.remove(path, { recursive: true });
  if (entry.type === "file") {
    await writeFile(state, path, entry);
  } else if (entry.type === "symlink") {
    await Deno.symlink(entry.linkname, path);
  } else if (!(await makeNode(path, entry, display, state.warnings))) {
    return;
  }
  await applyMetadata(path, entry, display, state.warnings);
  await applyTime(path, entry.mtime, entry.type === "symlink");
}

async function writeFile(state: LayerState, path: string, entry: TarEntry): Promise<void> {
  // O_CREAT|O_EXCL: never opens through a symlink or an existing file.
  using file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  for await (const piece of entry.body()) {
    state.budget.used += piece.length;
    if (state.budget.used > state.budget.max) {
      throw new VolantError(
        "invalid_argument",
        `${state.what}: the image unpacks to more than ${state.budget.max} bytes of files ` +
          `(at ${JSON.stringify(entry.path)}); refused (images.max_unpacked_bytes)`,
        { entry: entry.path, max_bytes: state.budget.max },
      );
    }
    let at = 0;
    while (at < piece.length) at += await file.write(piece.subarray(at));
  }
}

async function hardLink(
  state: LayerState,
  entry: TarEntry,
  path: string,
  existing: Deno.FileInfo | null,
): Promise<void> {
  const comps = cleanPath(entry.linkname);
  if (comps === null || comps.length === 0) {
    throw new PathEscape(
      `its hard link target ${JSON.stringify(entry.linkname)} is outside the image root`,
    );
  }
  const dir = await resolveDir(state.root, comps.slice(0, -1), false);
  const target = dir === null ? null : hostPath(state.root, [...dir, comps.at(-1)!]);
  const st = target === null ? null : await lstatOrNull(target);
  if (target === null || st === null) {
    throw new PathEscape(`its hard link target ${JSON.stringify(entry.linkname)} does not exist`);
  }
  if (st.isDirectory) {
    throw new PathEscape(`its hard link target ${JSON.stringify(entry.linkname)} is a directory`);
  }
  if (target === path) return;
  if (existing !== null) await Deno.remove(path, { recursive: true });
  // link(2) does not follow a symlink target: the link shares the symlink's inode.
  await Deno.link(target, path);
}

async function whiteout(state: LayerState, dir: string[], base: string): Promise<void> {
  const real = await resolveDir(state.root, dir, false);
  if (real === null) return;
  if (base === OPAQUE) {
    await clearLower(state, real);
    markWritten(state, real);
    return;
  }
  // Other `.wh..wh.` names are aufs bookkeeping, not deletions.
  if (base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return;
  const name = base.slice(WHITEOUT.length);
  if (name === "" || name === "." || name === "..") return;
  const path = hostPath(state.root, [...real, name]);
  if ((await lstatOrNull(path)) !== null) await Deno.remove(path, { recursive: true });
}

/** Removes what lower layers put under `dir`, keeping what this layer already wrote there. */
async function clearLower(state: LayerState, dir: readonly string[]): Promise<void> {
  const path = hostPath(state.root, dir);
  for await (const e of Deno.readDir(path)) {
    const rel = [...dir, e.name];
    if (!state.written.has(rel.join("/"))) {
      await Deno.remove(`${path}/${e.name}`, { recursive: true });
    } else if (e.isDirectory) {
      await clearLower(state, rel);
    }
  }
}
