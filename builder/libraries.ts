/**
 * Makes dynamically linked programs in an appliance runnable: for every x86-64 ELF file in the
 * tree, its loader (`PT_INTERP`) and each `DT_NEEDED` library, found the way the loader will
 * look for it (`DT_RUNPATH`, else `DT_RPATH`, with `$ORIGIN`; then the system directories),
 * recursively. A library already in the tree (a mapping) is used as it is; otherwise it is
 * copied from the host to the same guest path, symlink chains resolved so the soname is a
 * regular file. Static programs need nothing. Anything not found fails the build with one
 * message per program.
 *
 * @module
 */
import { dirname } from "node:path";
import { type ElfInfo, EM_X86_64, inspectElf, isElf } from "./elf.ts";
import { guestPath, type Tree, type TreeNode } from "./_tree.ts";

/** Where libraries are looked for after `DT_RUNPATH`/`DT_RPATH`, in order. */
export const LIBRARY_DIRS: readonly string[] = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib64",
  "/usr/lib",
];

/** Options of {@linkcode addLibraries}. */
export interface LibraryOptions {
  /** System library directories; default {@linkcode LIBRARY_DIRS}. */
  dirs?: readonly string[];
}

/** What {@linkcode addLibraries} did. */
export interface LibraryReport {
  /** Guest paths of the loaders and libraries copied from the host. */
  added: string[];
  /** Guest paths of the dynamically linked files that were resolved. */
  dynamic: string[];
}

interface HostFile {
  data: Uint8Array;
  mode: number;
}

async function hostFile(path: string): Promise<HostFile | undefined> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return undefined;
    return { data: await Deno.readFile(path), mode: (info.mode ?? 0o644) & 0o7777 };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw err;
  }
}

function withOrigin(dir: string, origin: string): string {
  return dir.replaceAll("${ORIGIN}", origin).replaceAll("$ORIGIN", origin);
}

function describeMachine(info: ElfInfo): string {
  return `${info.bits}-bit ${info.endian}-endian ELF for machine ${info.machine}`;
}

/** Inspects an ELF member; `undefined` for members the guest never loads as code. */
function inspectMember(tree: Tree, node: TreeNode): ElfInfo | undefined {
  if (node.entry.type !== "file" || !isElf(node.entry.data)) return undefined;
  const path = guestPath(node.entry.path);
  const executable = ((node.entry.mode ?? 0o644) & 0o111) !== 0;
  let info: ElfInfo;
  try {
    info = inspectElf(node.entry.data);
  } catch (err) {
    if (!executable) return undefined; // data that merely starts with the magic
    throw tree.error(node.origin, `${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (info.bits === 64 && info.endian === "little" && info.machine === EM_X86_64) return info;
  if (executable && (info.type === "exec" || info.type === "dyn")) {
    throw tree.error(
      node.origin,
      `${path} is a ${describeMachine(info)}, but the guest runs x86-64 (64-bit ` +
        `little-endian, machine ${EM_X86_64}): build it for x86_64-linux`,
    );
  }
  return undefined;
}

/**
 * Adds the loaders and shared libraries the tree's ELF files need (see the module doc).
 *
 * @example
 * ```ts ignore
 * import { addLibraries } from "./libraries.ts";
 * const { added } = await addLibraries(tree);
 * // ["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6", …]
 * ```
 */
export async function addLibraries(
  tree: Tree,
  options: LibraryOptions = {},
): Promise<LibraryReport> {
  const systemDirs = options.dirs ?? LIBRARY_DIRS;
  const queue: [TreeNode, ElfInfo][] = [];
  for (const node of tree.nodes()) {
    const info = inspectMember(tree, node);
    if (info) queue.push([node, info]);
  }
  // A library naming the loader (glibc's libc needs ld-linux-x86-64.so.2; musl programs need
  // libc.so, which is musl's loader itself) is served by the loader already running: it needs
  // no second copy at a library path.
  const loaders = new Set(
    queue.flatMap(([, i]) => {
      if (i.interpreter === undefined) return [];
      const name = i.interpreter.slice(i.interpreter.lastIndexOf("/") + 1);
      return name.startsWith("ld-musl-") ? [name, "libc.so"] : [name];
    }),
  );
  const added: string[] = [];
  const dynamic: string[] = [];
  const missing = new Map<TreeNode, { info: ElfInfo; lacks: string[] }>();
  const seen = new Set<string>();

  /** Copies host file `host` to guest path `guest`; false when either side cannot take it. */
  const place = async (guest: string, host: string, origin: string) => {
    const file = await hostFile(host);
    if (!file) return false;
    const entry = { type: "file" as const, path: guest, data: file.data, mode: file.mode };
    const path = tree.ensure(entry, origin, await Deno.realPath(host));
    if (path === undefined) return false; // something other than a file is already there
    added.push(guestPath(path));
    const child = tree.get(path)!;
    const info = inspectMember(tree, child);
    if (info) queue.push([child, info]);
    return true;
  };

  while (queue.length > 0) {
    const [node, info] = queue.shift()!;
    if (seen.has(node.entry.path)) continue;
    seen.add(node.entry.path);
    if (info.static) continue;
    dynamic.push(guestPath(node.entry.path));
    const origin = `libraries of ${guestPath(node.entry.path)}`;
    const lacks: string[] = [];
    if (info.interpreter !== undefined) {
      const have = tree.resolve(info.interpreter).node?.entry.type === "file";
      if (!have && !(await place(info.interpreter, info.interpreter, origin))) {
        lacks.push(`${info.interpreter} (its loader)`);
      }
    }
    const guestOrigin = dirname(guestPath(node.entry.path));
    const hostOrigin = node.host === undefined ? undefined : dirname(node.host);
    const ownDirs = info.runpath.length > 0 ? info.runpath : info.rpath;
    for (const name of info.needed) {
      if (loaders.has(name)) continue;
      if (name.includes("/")) {
        const have = tree.resolve(name).node?.entry.type === "file";
        if (!have && !(await place(name, name, origin))) lacks.push(name);
        continue;
      }
      const dirs = [...ownDirs, ...systemDirs];
      const inTree = dirs.some((d) =>
        tree.resolve(`${withOrigin(d, guestOrigin)}/${name}`).node?.entry.type === "file"
      );
      if (inTree) continue;
      let found = false;
      for (const dir of dirs) {
        const usesOrigin = dir.includes("$ORIGIN") || dir.includes("${ORIGIN}");
        if (usesOrigin && hostOrigin === undefined) continue;
        const host = usesOrigin ? withOrigin(dir, hostOrigin!) : dir;
        if (!host.startsWith("/")) continue; // a relative RUNPATH means the working directory
        if (await place(`${withOrigin(dir, guestOrigin)}/${name}`, `${host}/${name}`, origin)) {
          found = true;
          break;
        }
      }
      if (!found) lacks.push(name);
    }
    if (lacks.length > 0) missing.set(node, { info, lacks });
  }

  if (missing.size > 0) {
    const [first] = missing.keys();
    const parts = [...missing].map(([node, { info, lacks }]) => {
      const own = info.runpath.length > 0 ? info.runpath : info.rpath;
      const searched = [...own, ...systemDirs].join(", ");
      const from = node.origin === first!.origin ? "" : ` (from ${node.origin})`;
      return `${guestPath(node.entry.path)}${from} is dynamically linked and needs libraries ` +
        `that were not found: ${lacks.join(", ")} (searched ${searched})`;
    });
    throw tree.error(
      first!.origin,
      `${parts.join("; ")}. Install them on this host, map them into the appliance under ` +
        "[mappings], or link the program statically",
      {
        missing: Object.fromEntries(
          [...missing].map(([node, { lacks }]) => [guestPath(node.entry.path), lacks]),
        ),
      },
    );
  }
  return { added, dynamic };
}
