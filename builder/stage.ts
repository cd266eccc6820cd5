/**
 * Assembles an appliance's members from a validated build config: the mappings (files with
 * their modes, directories recursively, symlinks that stay inside their mapped directory), the
 * host's static busybox and its applet links when asked, the loaders and libraries of dynamic
 * programs, the directories and `/etc` files a workload expects, then checks that what the
 * guest will run is there and executable. Everything is decided here, at build time; nothing is
 * left for the guest to do at boot. Never produces `/init` (stage 0's).
 *
 * @module
 */
import { resolve } from "node:path";
import type { CpioEntry } from "../kernels/mod.ts";
import { VolantError } from "../schema/mod.ts";
import { formatKeyPath, type InitramfsConfig } from "./config.ts";
import { addLibraries, LIBRARY_DIRS } from "./libraries.ts";
import { guestPath, segments, Tree } from "./_tree.ts";

/** The host's static busybox (Debian's busybox-static). */
export const HOST_BUSYBOX = "/bin/busybox";

/** Directories every appliance has (mount points and `/tmp`), with their modes. */
export const APPLIANCE_DIRS: readonly (readonly [string, number])[] = [
  ["dev", 0o755],
  ["etc", 0o755],
  ["proc", 0o755],
  ["sys", 0o755],
  ["tmp", 0o1777],
];

/** The uid and gid given to a `workload.user` name when the builder writes `/etc/passwd`. */
export const WORKLOAD_UID = 1000;

/** Options of {@linkcode stageAppliance}. */
export interface StageOptions {
  /** The validated config. */
  config: InitramfsConfig;
  /** The config file's path (named in errors). */
  file: string;
  /** The directory mapping sources are relative to (the config file's). */
  baseDir: string;
  /** Host files never to pick up from mapped directories (the build's own outputs). */
  exclude?: readonly string[];
  /** The busybox binary for `source.busybox`; default {@linkcode HOST_BUSYBOX}. */
  busybox?: string;
  /** System library directories; default {@linkcode LIBRARY_DIRS}. */
  libraryDirs?: readonly string[];
  /** Called with a short label as each step starts. */
  onProgress?: (step: string) => void;
}

/** What {@linkcode stageAppliance} produced. */
export interface StagedAppliance {
  /** The archive members, sorted by path. */
  entries: CpioEntry[];
  /** Guest paths of the loaders and libraries copied from the host. */
  libraries: string[];
  /** Guest paths of the dynamically linked files. */
  dynamic: string[];
}

function mode(info: Deno.FileInfo, fallback: number): number {
  return (info.mode ?? fallback) & 0o7777;
}

function kind(info: Deno.FileInfo): string {
  if (info.isFifo) return "FIFO";
  if (info.isSocket) return "socket";
  if (info.isCharDevice || info.isBlockDevice) return "device node";
  return "special file";
}

/** Whether a symlink target, taken from the link's place in the mapped tree, stays inside it. */
function staysInside(linkDir: readonly string[], target: string): boolean {
  if (target.startsWith("/")) return false;
  const at = [...linkDir];
  for (const part of segments(target)) {
    if (part !== "..") at.push(part);
    else if (at.pop() === undefined) return false;
  }
  return true;
}

interface Walk {
  tree: Tree;
  origin: string;
  root: string;
  exclude: ReadonlySet<string>;
}

async function addDirectory(walk: Walk, host: string, guest: string[], dirMode: number) {
  if (guest.length > 0) {
    walk.tree.put({ type: "dir", path: guest.join("/"), mode: dirMode }, walk.origin);
  }
  const names: string[] = [];
  for await (const entry of Deno.readDir(host)) names.push(entry.name);
  names.sort();
  const relative = segments(host.slice(walk.root.length));
  for (const name of names) {
    const from = `${host}/${name}`;
    if (walk.exclude.has(from)) continue;
    const to = [...guest, name];
    const info = await Deno.lstat(from);
    if (info.isSymlink) {
      const target = await Deno.readLink(from);
      if (!staysInside(relative, target)) {
        throw walk.tree.error(
          walk.origin,
          `${from} is a symlink to ${target}, which leaves the mapped directory ${walk.root}: ` +
            "make it a relative link inside the directory, or map what it points to separately",
          { symlink: from, target },
        );
      }
      walk.tree.put({ type: "symlink", path: to.join("/"), target }, walk.origin);
    } else if (info.isDirectory) {
      await addDirectory(walk, from, to, mode(info, 0o755));
    } else if (info.isFile) {
      const data = await Deno.readFile(from);
      walk.tree.put(
        { type: "file", path: to.join("/"), data, mode: mode(info, 0o644) },
        walk.origin,
        from,
      );
    } else {
      throw walk.tree.error(
        walk.origin,
        `${from} is a ${kind(info)}: only files, directories and symlinks can be mapped`,
      );
    }
  }
}

async function addMapping(
  tree: Tree,
  source: string,
  dest: string,
  options: { baseDir: string; exclude: ReadonlySet<string> },
): Promise<void> {
  const origin = formatKeyPath(["mappings", source]);
  const host = resolve(options.baseDir, source);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(host);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      throw tree.error(origin, `source does not exist (${host})`, { source: host });
    }
    throw tree.error(origin, `cannot read source ${host}: ${(err as Error).message}`);
  }
  const guest = segments(dest);
  if (info.isDirectory) {
    await addDirectory(
      { tree, origin, root: host, exclude: options.exclude },
      host,
      guest,
      mode(info, 0o755),
    );
  } else if (info.isFile) {
    if (guest.length === 0) {
      throw tree.error(origin, "a file cannot be mapped to / (name the file)");
    }
    const data = await Deno.readFile(host);
    tree.put({ type: "file", path: guest.join("/"), data, mode: mode(info, 0o644) }, origin, host);
  } else {
    throw tree.error(origin, `source ${host} is a ${kind(info)}, not a file or directory`);
  }
}

async function addBusybox(tree: Tree, busybox: string): Promise<void> {
  const origin = "source.busybox";
  let data: Uint8Array;
  try {
    data = await Deno.readFile(busybox);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw tree.error(
      origin,
      `${busybox} does not exist: install it with \`apt-get install busybox-static\`, or set ` +
        "source.busybox = false and map your own programs",
    );
  }
  tree.ensure({ type: "file", path: "bin/busybox", data, mode: 0o755 }, origin, busybox);
  const out = await new Deno.Command(busybox, {
    args: ["--list-full"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new VolantError(
      "internal",
      `${busybox} --list-full failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  const list = new TextDecoder().decode(out.stdout);
  for (const line of list.split("\n").map((l) => l.trim()).sort()) {
    const parts = segments(line);
    if (parts.length < 2 || parts.includes("..") || line === "bin/busybox") continue;
    const target = parts.length === 2 && parts[0] === "bin"
      ? "busybox"
      : `${"../".repeat(parts.length - 1)}bin/busybox`;
    tree.ensure({ type: "symlink", path: parts.join("/"), target }, origin);
  }
}

function addDefaults(tree: Tree, config: InitramfsConfig): void {
  for (const [path, dirMode] of APPLIANCE_DIRS) {
    const node = tree.get(path);
    if (!node || node.implicit) tree.put({ type: "dir", path, mode: dirMode }, "(defaults)");
  }
  const workdir = config.workload.workdir;
  if (workdir !== undefined) {
    const found = tree.resolve(workdir);
    if (!found.node && found.path !== "") {
      tree.put({ type: "dir", path: found.path, mode: 0o755 }, "workload.workdir");
    } else if (found.node && found.node.entry.type !== "dir") {
      throw tree.error(
        "workload.workdir",
        `${workdir} is a ${found.node.entry.type} in the appliance, not a directory`,
      );
    }
  }
  const text = (s: string) => new TextEncoder().encode(s);
  const user = config.workload.user;
  const name = user !== undefined && !/^\d/.test(user) ? user : undefined;
  const extra = name !== undefined && name !== "root" && name !== "nobody";
  const home = workdir ?? "/";
  const passwd = tree.resolve("etc/passwd").node;
  if (passwd) {
    const lines = passwd.entry.type === "file" ? new TextDecoder().decode(passwd.entry.data) : "";
    if (name !== undefined && !lines.split("\n").some((l) => l.split(":")[0] === name)) {
      throw tree.error(
        "workload.user",
        `user ${
          JSON.stringify(name)
        } is not in /etc/passwd (from ${passwd.origin}): add it there, ` +
          `or use a numeric uid like "${WORKLOAD_UID}"`,
      );
    }
  } else {
    tree.put({
      type: "file",
      path: "etc/passwd",
      mode: 0o644,
      data: text(
        "root:x:0:0:root:/root:/bin/sh\n" +
          (extra ? `${name}:x:${WORKLOAD_UID}:${WORKLOAD_UID}:${name}:${home}:/bin/sh\n` : "") +
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
      ),
    }, "(defaults)");
  }
  if (!tree.resolve("etc/group").node) {
    tree.put({
      type: "file",
      path: "etc/group",
      mode: 0o644,
      data: text(
        "root:x:0:\n" + (extra && !passwd ? `${name}:x:${WORKLOAD_UID}:\n` : "") +
          "nogroup:x:65534:\n",
      ),
    }, "(defaults)");
  }
  tree.ensure({
    type: "file",
    path: "etc/hosts",
    mode: 0o644,
    data: text("127.0.0.1\tlocalhost\n::1\tlocalhost\n"),
  }, "(defaults)");
}

function requireProgram(tree: Tree, field: string, path: string, busybox: boolean): void {
  const found = tree.resolve(path);
  const node = found.node;
  if (!node) {
    const applet = !busybox && /^\/(usr\/)?s?bin\/[^/]+$/.test(path)
      ? ", or set source.busybox = true if it is a busybox applet"
      : "";
    throw tree.error(
      field,
      `${path} is not in the appliance: map a file there under [mappings] ` +
        `(e.g. "./${path.slice(path.lastIndexOf("/") + 1)}" = "${path}")${applet}`,
    );
  }
  if (node.entry.type !== "file") {
    throw tree.error(field, `${path} is a ${node.entry.type} in the appliance, not a program`);
  }
  const perm = node.entry.mode ?? 0o644;
  if ((perm & 0o111) === 0) {
    throw tree.error(
      field,
      `${path} (${
        guestPath(found.path) === path ? "" : `${guestPath(found.path)}, `
      }from ${node.origin}) is not executable ` +
        `(mode ${perm.toString(8).padStart(4, "0")}): chmod +x its source`,
    );
  }
}

function checkPrograms(tree: Tree, config: InitramfsConfig): void {
  const busybox = config.source.busybox;
  if (config.init.mode === "custom") {
    requireProgram(tree, "init.path", config.init.path!, busybox);
    return;
  }
  const program = config.workload.entrypoint[0]!;
  if (program.startsWith("/")) {
    requireProgram(tree, "workload.entrypoint[0]", program, busybox);
  } else if (config.init.mode === "none") {
    throw tree.error(
      "workload.entrypoint[0]",
      `${JSON.stringify(program)} must be an absolute path when init.mode = "none" ` +
        "(stage 0 execs it directly as PID 1, without a PATH search)",
    );
  }
}

/**
 * Builds the appliance's member list from a validated config (see the module doc). Errors name
 * the config key they come from.
 *
 * @example
 * ```ts ignore
 * import { stageAppliance } from "./stage.ts";
 * const { entries } = await stageAppliance({ config, file: "app.toml", baseDir: "." });
 * ```
 */
export async function stageAppliance(options: StageOptions): Promise<StagedAppliance> {
  const { config, file } = options;
  const progress = options.onProgress ?? (() => {});
  const tree = new Tree(file);
  const exclude = new Set(options.exclude ?? []);
  const mappings = Object.entries(config.mappings).sort(([sa, da], [sb, db]) =>
    da < db ? -1 : da > db ? 1 : sa < sb ? -1 : sa > sb ? 1 : 0
  );
  progress(`Reading ${mappings.length} mapping${mappings.length === 1 ? "" : "s"}`);
  for (const [source, dest] of mappings) {
    await addMapping(tree, source, dest, { baseDir: options.baseDir, exclude });
  }
  if (config.source.busybox) {
    progress("Adding busybox and its applet links");
    await addBusybox(tree, options.busybox ?? HOST_BUSYBOX);
  }
  progress("Resolving shared libraries");
  const libs = await addLibraries(tree, { dirs: options.libraryDirs ?? LIBRARY_DIRS });
  addDefaults(tree, config);
  checkPrograms(tree, config);
  return { entries: tree.entries(), libraries: libs.added, dynamic: libs.dynamic };
}
