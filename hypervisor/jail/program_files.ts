/**
 * The files a VMM binary needs to run in a jail: itself, its ELF interpreter and the
 * directories of its shared libraries (which also hold QEMU's loadable modules), found with
 * `ldd` once per binary. A static binary (Cloud Hypervisor, Firecracker) needs only itself.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";

/**
 * The libraries and interpreter `ldd` lists (absolute paths; none for a static binary).
 *
 * @example
 * ```ts
 * import { parseLdd } from "./program_files.ts";
 * const libs = parseLdd(
 *   "\tlinux-vdso.so.1 (0x7ff)\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x7f)\n" +
 *     "\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n",
 * );
 * console.assert(libs.length === 2 && libs[1] === "/lib64/ld-linux-x86-64.so.2");
 * ```
 */
export function parseLdd(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const arrow = line.match(/=>\s+(\/\S+)/);
    const bare = line.match(/^\s*(\/\S+)\s+\(/);
    const path = arrow?.[1] ?? bare?.[1];
    if (path) out.push(path);
  }
  return out;
}

const cache = new Map<string, Promise<string[]>>();

async function lddOf(binary: string): Promise<string[]> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("ldd", {
      args: [binary],
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin", LC_ALL: "C" },
    }).output();
  } catch (err) {
    throw new VolantError(
      "unsupported",
      `Cannot list the libraries of ${binary} for its jail: ldd: ${(err as Error).message} ` +
        "(Debian package libc-bin)",
      { binary },
    );
  }
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    // A static binary: "not a dynamic executable".
    return [];
  }
  return parseLdd(text);
}

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/**
 * What a jail must hold to run `binary` (absolute): the binary, the directories of its
 * libraries and its interpreter. Cached per binary path.
 *
 * @example
 * ```ts ignore
 * import { programFiles } from "./program_files.ts";
 * console.log(await programFiles("/usr/bin/qemu-system-x86_64"));
 * // ["/usr/bin/qemu-system-x86_64", "/lib/x86_64-linux-gnu", "/lib64/ld-linux-x86-64.so.2"]
 * ```
 */
export function programFiles(binary: string): Promise<string[]> {
  let found = cache.get(binary);
  if (!found) {
    found = (async () => {
      const libs = await lddOf(binary);
      const interpreters = libs.filter((l) => !/\.so(\.\d+)*$/.test(l) || l.includes("/ld-"));
      const dirs = new Set(
        libs.filter((l) => !interpreters.includes(l)).map(dirOf),
      );
      return [binary, ...dirs, ...interpreters];
    })();
    found.catch(() => cache.delete(binary));
    cache.set(binary, found);
  }
  return found;
}
