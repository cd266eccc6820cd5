/**
 * The workload root's `/etc/hostname` and `/etc/hosts` after a new identity. kestrel writes
 * both into an image root at boot (`image_root.ts`: the hostname, and `<ip or 127.0.1.1>\t<name>`
 * as the last line of `/etc/hosts`); on a new identity it rewrites exactly what it wrote and
 * leaves every other line, and files it did not write, alone.
 *
 * @module
 */

/** A name and address as kestrel writes them into `/etc/hosts`. */
export interface HostEntry {
  /** The hostname. */
  hostname: string;
  /** The guest's address; kestrel writes `127.0.1.1` when it has none. */
  ip: string | undefined;
}

/** The `/etc/hosts` line kestrel writes for `entry`. */
export function hostsLine(entry: HostEntry): string {
  return `${entry.ip ?? "127.0.1.1"}\t${entry.hostname}`;
}

/**
 * `text` (an `/etc/hosts`) with kestrel's line for `old` replaced by the one for `next`; other
 * lines are kept as they are.
 *
 * @example
 * ```ts
 * import { rewriteHosts } from "./hosts.ts";
 * const text = "127.0.0.1\tlocalhost\n10.0.0.2\tweb\n";
 * const next = rewriteHosts(text, { hostname: "web", ip: "10.0.0.2" }, { hostname: "w2", ip: "10.0.0.3" });
 * console.assert(next === "127.0.0.1\tlocalhost\n10.0.0.3\tw2\n");
 * ```
 */
export function rewriteHosts(text: string, old: HostEntry, next: HostEntry): string {
  const before = hostsLine(old);
  return text.split("\n").map((line) => line === before ? hostsLine(next) : line).join("\n");
}

/** What {@linkcode rewriteHostFiles} changed (paths inside the root). */
export type RewrittenFile = "/etc/hostname" | "/etc/hosts";

/**
 * The text of `root` + `file`, or undefined when it is missing or not a plain file inside the
 * root: the workload owns its root, so a symlink (the file's or `/etc`'s) is never followed
 * out of it by kestrel, which runs as root.
 */
async function readOwnFile(root: string, file: RewrittenFile): Promise<string | undefined> {
  const path = `${root}${file}`;
  try {
    const info = await Deno.lstat(path);
    if (!info.isFile) return undefined;
    const [realRoot, realDir] = await Promise.all([
      Deno.realPath(root),
      Deno.realPath(`${root}/etc`),
    ]);
    if (realDir !== `${realRoot === "/" ? "" : realRoot}/etc`) return undefined;
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Rewrites `root`'s `/etc/hostname` when it holds `old.hostname` (kestrel wrote it), and its
 * `/etc/hosts` line for `old`; returns the files changed. A missing file is left missing, and
 * a symlink (of the file or of `/etc`) is left alone. Throws (naming the file) when one cannot
 * be read or written.
 *
 * @example
 * ```ts ignore
 * import { rewriteHostFiles } from "./hosts.ts";
 * await rewriteHostFiles("/run/volant/root", { hostname: "web", ip: "10.0.0.2" },
 *   { hostname: "web-2", ip: "10.0.0.3" });
 * ```
 */
export async function rewriteHostFiles(
  root: string,
  old: HostEntry,
  next: HostEntry,
): Promise<RewrittenFile[]> {
  const changed: RewrittenFile[] = [];
  const write = async (file: RewrittenFile, before: string | undefined, after: string) => {
    if (before === undefined || before === after) return;
    try {
      await Deno.writeTextFile(`${root}${file}`, after);
    } catch (err) {
      throw new Error(`cannot write ${root}${file}: ${(err as Error).message}`, { cause: err });
    }
    changed.push(file);
  };
  const hostname = await readOwnFile(root, "/etc/hostname");
  if (hostname?.trim() === old.hostname) {
    await write("/etc/hostname", hostname, `${next.hostname}\n`);
  }
  const hosts = await readOwnFile(root, "/etc/hosts");
  if (hosts !== undefined) await write("/etc/hosts", hosts, rewriteHosts(hosts, old, next));
  return changed;
}
