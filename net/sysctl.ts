/**
 * Kernel parameters under `/proc/sys`, read and written like `sysctl(8)`: dotted keys
 * (`net.ipv4.ip_forward`), where a `/` inside a segment stands for a literal dot
 * (`net.ipv4.conf.eth0/100.forwarding`).
 *
 * Everything under `net.` belongs to a network namespace: the file `/proc/sys/net/…` shows the
 * namespace of the thread that opens it. With `netns`, the file is opened and read or written
 * synchronously inside {@linkcode withNetns}, so only that namespace changes.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { withNetns } from "./netns.ts";

/** Options of {@linkcode setSysctl} and {@linkcode getSysctl}. */
export interface SysctlOptions {
  /** A named network namespace (`ip netns`) to act in; default the current one. */
  netns?: string;
}

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/;

/**
 * The `/proc/sys` path of a dotted key; throws `invalid_argument` naming the key when it is
 * not one.
 *
 * @example
 * ```ts
 * import { sysctlPath } from "./sysctl.ts";
 * console.assert(sysctlPath("net.ipv4.ip_forward") === "/proc/sys/net/ipv4/ip_forward");
 * console.assert(
 *   sysctlPath("net.ipv4.conf.eth0/100.rp_filter") === "/proc/sys/net/ipv4/conf/eth0.100/rp_filter",
 * );
 * ```
 */
export function sysctlPath(key: string): string {
  const segments = key.split(".");
  const bad = segments.length < 2 ||
    segments.some((s) => !SEGMENT.test(s) || s.split("/").some((p) => p === "" || p === ".."));
  if (bad) {
    throw new VolantError(
      "invalid_argument",
      `sysctl key ${JSON.stringify(key)} is not a dotted name like net.ipv4.ip_forward`,
      { field: "key", value: key },
    );
  }
  return "/proc/sys/" + segments.map((s) => s.replaceAll("/", ".")).join("/");
}

function inNamespace<T>(netns: string | undefined, fn: () => T): T {
  return netns === undefined ? fn() : withNetns(netns, fn as () => never) as T;
}

function failure(op: "read" | "write", key: string, path: string, err: unknown): VolantError {
  const why = err instanceof Error ? err.message : String(err);
  const fix = err instanceof Deno.errors.NotFound
    ? " (no such parameter in this kernel)"
    : err instanceof Deno.errors.PermissionDenied
    ? " (run as root)"
    : "";
  return new VolantError(
    "network_error",
    `Cannot ${op} sysctl ${key} (${path}): ${why}${fix}`,
    { key, path },
    { cause: err },
  );
}

/**
 * Reads a kernel parameter, trimmed (`"1"`); inside `netns` when given.
 *
 * @example
 * ```ts ignore
 * import { getSysctl } from "./sysctl.ts";
 * if (getSysctl("net.ipv4.ip_forward", { netns: "volant" }) !== "1") console.log("off");
 * ```
 */
export function getSysctl(key: string, options: SysctlOptions = {}): string {
  const path = sysctlPath(key);
  try {
    return inNamespace(options.netns, () => Deno.readTextFileSync(path)).trim();
  } catch (err) {
    if (err instanceof VolantError) throw err;
    throw failure("read", key, path, err);
  }
}

/**
 * Writes a kernel parameter (inside `netns` when given) and returns whether it changed: it
 * reads first and writes only a different value.
 *
 * @example
 * ```ts ignore
 * import { setSysctl } from "./sysctl.ts";
 * setSysctl("net.ipv4.ip_forward", "1", { netns: "volant" }); // true the first time
 * ```
 */
export function setSysctl(key: string, value: string, options: SysctlOptions = {}): boolean {
  const path = sysctlPath(key);
  // deno-lint-ignore no-control-regex
  if (value.trim() === "" || /[\x00-\x1f\x7f]/.test(value)) {
    throw new VolantError(
      "invalid_argument",
      `sysctl ${key}: value ${JSON.stringify(value)} must be non-empty text on one line`,
      { field: "value", value },
    );
  }
  let stage: "read" | "write" = "read";
  try {
    return inNamespace(options.netns, () => {
      if (Deno.readTextFileSync(path).trim() === value.trim()) return false;
      stage = "write";
      Deno.writeTextFileSync(path, `${value}\n`);
      return true;
    });
  } catch (err) {
    if (err instanceof VolantError) throw err;
    throw failure(stage, key, path, err);
  }
}
