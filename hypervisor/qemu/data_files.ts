/**
 * QEMU's data files (firmware such as `bios-microvm.bin`, keymaps) that a jailed QEMU must be
 * able to read: its data directory, and whatever the directory's symlinks point at outside it
 * (distributions link firmware in from other packages).
 *
 * @module
 */

async function realDir(path: string): Promise<string | null> {
  try {
    const real = await Deno.realPath(path);
    return (await Deno.stat(real)).isDirectory ? real : null;
  } catch {
    return null;
  }
}

/**
 * The data paths of the QEMU at `binary` (symlink-free): `<prefix>/share/qemu` next to it,
 * else `/usr/share/qemu`, plus the targets of symlinks in it that lead outside.
 *
 * @example
 * ```ts ignore
 * import { qemuDataPaths } from "./data_files.ts";
 * console.log(await qemuDataPaths("/usr/bin/qemu-system-x86_64")); // ["/usr/share/qemu"]
 * ```
 */
export async function qemuDataPaths(binary: string): Promise<string[]> {
  const prefix = binary.slice(0, binary.lastIndexOf("/")).replace(/\/bin$/, "");
  const dirs = new Set<string>();
  for (const candidate of [`${prefix}/share/qemu`, "/usr/share/qemu"]) {
    const dir = await realDir(candidate);
    if (dir) dirs.add(dir);
  }
  const out = [...dirs];
  for (const dir of dirs) {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isSymlink) continue;
      const target = await Deno.realPath(`${dir}/${entry.name}`).catch(() => null);
      if (target !== null && ![...dirs].some((d) => target.startsWith(`${d}/`))) out.push(target);
    }
  }
  return out;
}
