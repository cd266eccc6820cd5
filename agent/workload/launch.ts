/**
 * How kestrel starts a program of the workload (the entrypoint, or an exec health check) inside
 * the workload's root: with `root` `/` directly (`Deno.Command` with `cwd`, `uid`, `gid`),
 * otherwise through busybox's `nsenter -F -r<root> -w<root><workdir> -S <uid> -G <gid>`, which
 * chroots, changes directory, drops groups and ids and execs the program without forking (so the
 * pid kestrel watches is the program's own).
 *
 * @module
 */
import { VolantError } from "../../schema/error.ts";
import { resolveUser, type UserIds } from "./user.ts";

import { DEFAULT_PATH, workloadEnv } from "../../schema/workload_launch.ts";
export { DEFAULT_PATH, workloadEnv };

/** Where busybox is in the guest's runtime image. */
export const DEFAULT_BUSYBOX = "/usr/bin/busybox";

/** The parts of the manifest's `workload` a launch uses. */
export interface LaunchTarget {
  /** `workload.env`. */
  env: Record<string, string>;
  /** `workload.workdir` (absolute, inside the root); default `/`. */
  workdir?: string | undefined;
  /** `workload.user`: uid, uid:gid or a name in the root's /etc/passwd; default root. */
  user?: string | undefined;
}

/** Where and how to launch. */
export interface LaunchPlace {
  /** The workload's root directory (`/` for the guest's own). */
  root: string;
  /** busybox used for `nsenter` when `root` is not `/`; default {@linkcode DEFAULT_BUSYBOX}. */
  busybox?: string;
}

/** Spawns a program; kestrel passes its reaper's `spawn` (see `Supervisor`). */
export type Spawn = (command: string, options: Deno.CommandOptions) => Deno.ChildProcess;

/** A resolved launch: what to hand to `Deno.Command`. */
export interface LaunchSpec {
  /** The program to spawn (the entrypoint itself, or busybox). */
  command: string;
  /** Its arguments. */
  args: string[];
  /** The complete environment (spawn with `clearEnv`). */
  env: Record<string, string>;
  /** Working directory for the spawn. */
  cwd: string;
  /** Ids for a direct spawn (`root` `/` with a user); nsenter sets them itself. */
  ids: UserIds | undefined;
}

/** `root` without a trailing slash (`/` stays `/`). */
function cleanRoot(root: string): string {
  if (!root.startsWith("/")) {
    throw new VolantError(
      "invalid_argument",
      `workload root ${JSON.stringify(root)} must be an absolute directory`,
      { root },
    );
  }
  const trimmed = root.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

/** `inner` (absolute, inside the root) as seen from outside the root. */
function outside(root: string, inner: string): string {
  return root === "/" ? inner : `${root}${inner === "/" ? "" : inner}`;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** lstat without following a final symlink (one inside a root may point anywhere). */
async function lstatOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch {
    return undefined;
  }
}

/** Finds `name` in `path` (a `PATH` value) below `root`; absolute names are returned as is. */
async function findProgram(name: string, path: string, root: string): Promise<string> {
  if (name.includes("/")) {
    if (await lstatOrUndefined(outside(root, name)) === undefined) {
      throw new VolantError(
        "invalid_argument",
        `workload.entrypoint[0] ${JSON.stringify(name)} does not exist in the workload's root ` +
          `(${root})`,
        { field: "workload.entrypoint", program: name, root },
      );
    }
    return name;
  }
  for (const dir of path.split(":")) {
    if (!dir.startsWith("/")) continue;
    const candidate = `${dir.replace(/\/+$/, "")}/${name}`;
    if (await lstatOrUndefined(outside(root, candidate)) !== undefined) return candidate;
  }
  throw new VolantError(
    "invalid_argument",
    `workload.entrypoint[0] ${JSON.stringify(name)} is not in PATH (${path}) of the ` +
      `workload's root (${root}); give an absolute path or set workload.env.PATH`,
    { field: "workload.entrypoint", program: name, root, path },
  );
}

/**
 * Resolves how to run `argv` for `target` in `place`: the user (reading `<root>/etc/passwd`
 * for a name), the environment, the working directory, and the program. Throws
 * `invalid_argument` naming the manifest field for what can never work (an unknown user, a
 * missing workdir or program), so the caller does not retry a configuration error.
 *
 * @example
 * ```ts ignore
 * import { planLaunch } from "./launch.ts";
 * const spec = await planLaunch(["/bin/httpd", "-f"], { env: {}, user: "www" }, { root: "/srv/app" });
 * // spec.command === "/usr/bin/busybox", spec.args = ["nsenter", "-F", "-r/srv/app", ...]
 * ```
 */
export async function planLaunch(
  argv: readonly string[],
  target: LaunchTarget,
  place: LaunchPlace,
): Promise<LaunchSpec> {
  const root = cleanRoot(place.root);
  const env = workloadEnv(target.env);
  const passwdPath = outside(root, "/etc/passwd");
  const ids = target.user === undefined
    ? undefined
    : resolveUser(target.user, await readOptional(passwdPath), passwdPath);
  const workdir = target.workdir ?? "/";
  const dir = await lstatOrUndefined(outside(root, workdir));
  if (dir === undefined || !(dir.isDirectory || dir.isSymlink)) {
    throw new VolantError(
      "invalid_argument",
      `workload.workdir ${JSON.stringify(workdir)} is not a directory in the workload's root ` +
        `(${root})`,
      { field: "workload.workdir", workdir, root },
    );
  }
  const [first, ...rest] = argv;
  if (first === undefined || first === "") {
    throw new VolantError("invalid_argument", "workload.entrypoint is empty; name the program", {
      field: "workload.entrypoint",
    });
  }
  const program = await findProgram(first, env.PATH ?? DEFAULT_PATH, root);
  if (root === "/") return { command: program, args: rest, env, cwd: workdir, ids };
  const busybox = place.busybox ?? DEFAULT_BUSYBOX;
  const idArgs = ids === undefined ? [] : ["-S", String(ids.uid), "-G", String(ids.gid)];
  return {
    command: busybox,
    args: [
      "nsenter",
      "-F",
      `-r${root}`,
      `-w${outside(root, workdir)}`,
      ...idArgs,
      "--",
      program,
      ...rest,
    ],
    env,
    cwd: "/",
    ids: undefined,
  };
}

/**
 * `Deno.Command` options for a spec: a clean environment, no stdin, stdout/stderr as asked,
 * and a session of its own (`detached`) so kestrel can signal the workload's whole process
 * group and console signals never reach it.
 *
 * @example
 * ```ts
 * import { commandOptions } from "./launch.ts";
 * const o = commandOptions({ command: "/bin/true", args: [], env: {}, cwd: "/", ids: { uid: 1, gid: 2 } }, "null");
 * console.assert(o.clearEnv === true && o.uid === 1 && o.detached === true);
 * ```
 */
export function commandOptions(
  spec: LaunchSpec,
  output: "piped" | "null",
): Deno.CommandOptions {
  return {
    args: spec.args,
    env: spec.env,
    clearEnv: true,
    cwd: spec.cwd,
    ...(spec.ids === undefined ? {} : { uid: spec.ids.uid, gid: spec.ids.gid }),
    stdin: "null",
    stdout: output,
    stderr: output,
    detached: true,
  };
}

/**
 * Signals the process group led by `pid` (every workload and probe runs in a session of its
 * own, so its pid is its group's id). Only the group: after the leader was collected its pid
 * may belong to someone else, but a group id stays reserved while any member lives. A group
 * that is gone already is fine.
 *
 * @example
 * ```ts ignore
 * import { killGroup } from "./launch.ts";
 * killGroup(1234, "SIGTERM");
 * ```
 */
export function killGroup(pid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(-pid, signal);
    return true;
  } catch {
    return false; // ESRCH: nobody left in the group
  }
}
