/**
 * How a plugin's workload is launched, shared by the daemon (which tells stage 0 what to start
 * before kestrel runs) and kestrel (which starts it itself, or adopts the one stage 0 started):
 * the workload's environment, and when stage 0 may start it ({@linkcode earlyWorkloadFor}).
 *
 * @module
 */
import type { Manifest } from "./manifest.ts";

/** `PATH` of the workload when its manifest sets none. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The workload's environment: exactly `env`, plus `PATH` = {@linkcode DEFAULT_PATH} unless set.
 *
 * @example
 * ```ts
 * import { workloadEnv } from "./workload_launch.ts";
 * console.assert(workloadEnv({ A: "1" }).PATH?.startsWith("/usr/local/sbin"));
 * console.assert(workloadEnv({ PATH: "/x" }).PATH === "/x");
 * ```
 */
export function workloadEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: DEFAULT_PATH, ...env };
}

/** What stage 0 starts before kestrel: the same launch kestrel would make. */
export interface EarlyWorkload {
  /** The entrypoint; the program's path is absolute. */
  argv: string[];
  /** The complete environment ({@linkcode workloadEnv}). */
  env: Record<string, string>;
  /** Working directory inside the workload's root. */
  workdir: string;
  /** Numeric ids (both or neither). */
  uid?: number;
  gid?: number;
}

const MAX_ID = 0xffffffff;

/**
 * Whether stage 0 can start `manifest`'s workload exactly as kestrel would, and how: init mode
 * `kestrel`, the workload's root is the initramfs (no rootfs artifact and not an image; the
 * caller says), the program is an absolute path (a bare name needs kestrel's `PATH` lookup in
 * the root), the user is unset or numeric `uid:gid` (a name needs the root's `/etc/passwd`),
 * and nothing holds a NUL byte or an environment name `env` cannot set. Anything else is left to
 * kestrel, which starts it once it runs — the same outcome, later.
 *
 * @example
 * ```ts
 * import { earlyWorkloadFor } from "./workload_launch.ts";
 * import { Manifest } from "./manifest.ts";
 * const m = Manifest.parse({
 *   name: "web", version: "1",
 *   initramfs: { url: "/srv/web.cpio.gz", checksum: "sha256:" + "0".repeat(64) },
 *   resources: { cpu_cores: 1, memory_mb: 256 },
 *   workload: { entrypoint: ["/bin/httpd", "-f"], base_url: "http://127.0.0.1:80", user: "33:33" },
 * });
 * console.assert(earlyWorkloadFor(m, { image: false })?.uid === 33);
 * console.assert(earlyWorkloadFor(m, { image: true }) === undefined);
 * ```
 */
export function earlyWorkloadFor(
  manifest: Manifest,
  where: { image: boolean },
): EarlyWorkload | undefined {
  if (manifest.init.mode !== "kestrel" || manifest.rootfs !== undefined || where.image) {
    return undefined;
  }
  const w = manifest.workload;
  const argv = [...w.entrypoint];
  if (!argv[0]?.startsWith("/")) return undefined;
  const env = workloadEnv(w.env);
  const words = [...argv, ...Object.entries(env).flat(), w.workdir ?? "/"];
  if (words.some((word) => word.includes("\0"))) return undefined;
  if (Object.keys(env).some((k) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))) return undefined;
  let ids: { uid: number; gid: number } | undefined;
  if (w.user !== undefined) {
    const m = /^(\d{1,10}):(\d{1,10})$/.exec(w.user);
    if (m === null) return undefined;
    ids = { uid: Number(m[1]), gid: Number(m[2]) };
    if (ids.uid > MAX_ID || ids.gid > MAX_ID) return undefined;
  }
  return { argv, env, workdir: w.workdir ?? "/", ...(ids ?? {}) };
}
