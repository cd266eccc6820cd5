/**
 * What a jail's root holds, as a list of steps the launch script performs: every file the VMM
 * may open is bind-mounted at the same absolute path it has on the host (so the VMM's command
 * line and the sockets the daemon talks to keep their paths), symlinks on the way are
 * recreated, and the few device nodes it needs are made.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type { JailDevice } from "./types.ts";

/** How a bind mount is remounted: read-only data, read-only programs, or writable data. */
export type BindMode = "ro" | "exec" | "rw";

/** One step of building a jail's root (paths inside the jail are absolute). */
export type JailOp =
  | { op: "link"; target: string; path: string }
  | { op: "bind"; mode: BindMode; source: string; path: string; dir: boolean }
  | { op: "dev"; path: string; major: number; minor: number; mode: number; owned: boolean };

/** The paths a VMM may reach, by how. */
export interface JailPaths {
  /** Its binary, libraries, modules, firmware: read-only, executable. */
  exec: readonly string[];
  /** Kernel, initramfs, read-only disks, backing files: read-only. */
  readOnly: readonly string[];
  /** Its runtime dir (sockets), writable disks, serial log: writable, never executable. */
  readWrite: readonly string[];
}

const MAX_LINKS = 40;

function parent(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/**
 * The symlink-free path of `path` on the host, recording each symlink met on the way in
 * `links` (path → target as written), so the jail can recreate them.
 */
async function resolve(path: string, links: Map<string, string>, hops = 0): Promise<string> {
  if (!path.startsWith("/")) {
    throw new VolantError("invalid_argument", `Jail path ${path} is not absolute`, { path });
  }
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  let at = "";
  for (const [i, part] of parts.entries()) {
    if (part === "..") {
      at = at === "" ? "" : parent(at) === "/" ? "" : parent(at);
      continue;
    }
    const next = `${at}/${part}`;
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(next);
    } catch (err) {
      throw new VolantError(
        "invalid_argument",
        `Cannot put ${path} in the VMM's jail: ${next}: ${(err as Error).message}`,
        { path },
        { cause: err },
      );
    }
    if (info.isSymlink) {
      if (hops >= MAX_LINKS) {
        throw new VolantError("invalid_argument", `Too many symlinks in ${path}`, { path });
      }
      const target = await Deno.readLink(next);
      links.set(next, target);
      const base = target.startsWith("/") ? target : `${at}/${target}`;
      return await resolve([base, ...parts.slice(i + 1)].join("/"), links, hops + 1);
    }
    at = next;
  }
  return at === "" ? "/" : at;
}

function inside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);
}

/** `major:minor` of a device number as `stat` reports it. */
function devNumbers(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

const DEVICES: ReadonlyArray<{ host: string; mode: number; owned: boolean; needs?: JailDevice }> = [
  { host: "/dev/null", mode: 0o666, owned: false },
  { host: "/dev/zero", mode: 0o666, owned: false },
  { host: "/dev/random", mode: 0o666, owned: false },
  { host: "/dev/urandom", mode: 0o666, owned: false },
  { host: "/dev/kvm", mode: 0o600, owned: true, needs: "kvm" },
  { host: "/dev/net/tun", mode: 0o600, owned: true, needs: "tun" },
];

/**
 * The steps that build a jail root holding `paths` (each at its own absolute path) and the
 * devices in `devices` (`/dev/kvm`, `/dev/net/tun`, made owned by the VMM; `null`, `zero`,
 * `random` and `urandom` always). A path inside another one bound the same way is covered by
 * it; a writable path inside a read-only directory is bound on top of it.
 *
 * @example
 * ```ts
 * import { planJail } from "./plan.ts";
 * const ops = await planJail({ exec: ["/bin/sh"], readOnly: [], readWrite: ["/tmp"] }, []);
 * console.assert(ops.some((o) => o.op === "bind" && o.path === "/tmp" && o.mode === "rw"));
 * console.assert(ops.some((o) => o.op === "dev" && o.path === "/dev/null"));
 * ```
 */
export async function planJail(
  paths: JailPaths,
  devices: readonly JailDevice[],
): Promise<JailOp[]> {
  const links = new Map<string, string>();
  const wanted: Array<{ mode: BindMode; path: string; dir: boolean }> = [];
  const add = async (mode: BindMode, list: readonly string[]) => {
    for (const path of list) {
      const real = await resolve(path, links);
      wanted.push({ mode, path: real, dir: (await Deno.stat(real)).isDirectory });
    }
  };
  await add("exec", paths.exec);
  await add("ro", paths.readOnly);
  await add("rw", paths.readWrite);
  // Parents before children; a child bound like its parent is already there.
  wanted.sort((a, b) => a.path.length - b.path.length || a.path.localeCompare(b.path));
  const binds: Array<{ mode: BindMode; path: string; dir: boolean }> = [];
  for (const w of wanted) {
    const covering = [...binds].reverse().find((b) => b.dir && inside(w.path, b.path));
    if (binds.some((b) => b.path === w.path)) {
      const same = binds.find((b) => b.path === w.path)!;
      // The same path asked for twice: the most permissive wins.
      if (w.mode === "rw") same.mode = "rw";
      continue;
    }
    if (covering && covering.mode === w.mode) continue;
    binds.push({ ...w });
  }
  const ops: JailOp[] = [];
  for (const [path, target] of [...links].sort(([a], [b]) => a.length - b.length)) {
    // A symlink inside a bound directory comes with it.
    if (binds.some((b) => b.dir && inside(path, b.path) && path !== b.path)) continue;
    ops.push({ op: "link", target, path });
  }
  for (const b of binds) {
    ops.push({ op: "bind", mode: b.mode, source: b.path, path: b.path, dir: b.dir });
  }
  for (const d of DEVICES) {
    if (d.needs && !devices.includes(d.needs)) continue;
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(d.host);
    } catch (err) {
      throw new VolantError(
        "unsupported",
        `The VMM's jail needs ${d.host}, which this host lacks: ${(err as Error).message}`,
        { device: d.host },
      );
    }
    if (!info.isCharDevice || info.rdev === null) {
      throw new VolantError("unsupported", `${d.host} is not a character device`, {
        device: d.host,
      });
    }
    ops.push({ op: "dev", path: d.host, ...devNumbers(info.rdev), mode: d.mode, owned: d.owned });
  }
  return ops;
}
