/**
 * The host checks of `volar doctor`, each read-only: the bridge in its namespace, free space
 * under the state dir (`df -Pk`), the Debian tools Volant runs, and whether volantd answers.
 * Internal to the CLI.
 *
 * @module
 */
import { Health, VolantError } from "../../schema/mod.ts";
import { GetHealth } from "../../schema/operations/mod.ts";
import type { ResolvedConfig } from "../../daemon/config.ts";
import { findExecutable } from "../../hypervisor/process/find_executable.ts";
import { getLink, netnsExists, withNetns } from "../../net/mod.ts";
import { type ApiTarget, describeTarget, VolantClient } from "../client.ts";
import { type DoctorCheck, formatSize, splitFix } from "./_doctor_checks.ts";

// ---------------------------------------------------------------------------------------------
// Bridge

/** The bridge as found in its namespace. */
export interface BridgeState {
  name: string;
  /** `network.namespace`; null for the namespace volar runs in. */
  namespace: string | null;
  /** null when it could not be looked at (no namespace, no permission). */
  exists: boolean | null;
  /** The link's kind (`bridge` expected), when it exists. */
  kind: string | null;
  up: boolean | null;
  /** Why it could not be looked at. */
  error: string | null;
}

const SETUP_FIX = "volantd creates it when it starts (as root); or prepare the host now with " +
  "`sudo volar setup`";

/**
 * Looks the bridge up over netlink, inside `network.namespace` when one is set.
 *
 * @example
 * ```ts ignore
 * import { bridgeState } from "./_doctor_host.ts";
 * console.log(bridgeState(config));
 * ```
 */
export function bridgeState(config: ResolvedConfig): BridgeState {
  const { bridge: name, namespace } = config.network;
  const base = { name, namespace, exists: null, kind: null, up: null };
  try {
    if (namespace !== null && !netnsExists(namespace)) {
      return { ...base, error: `network namespace ${namespace} does not exist` };
    }
    const link = namespace === null ? getLink(name) : withNetns(namespace, () => getLink(name));
    return link === undefined
      ? { ...base, exists: false, error: null }
      : { ...base, exists: true, kind: link.kind ?? "device", up: link.up, error: null };
  } catch (err) {
    return { ...base, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The bridge line: missing is a warning (volantd creates it), a non-bridge link a failure.
 *
 * @example
 * ```ts ignore
 * import { bridgeCheck, bridgeState } from "./_doctor_host.ts";
 * console.log(bridgeCheck(bridgeState(config)));
 * ```
 */
export function bridgeCheck(state: BridgeState): DoctorCheck {
  const where = state.namespace === null
    ? "this network namespace"
    : `network namespace ${state.namespace}`;
  const check = { id: "bridge", title: `bridge ${state.name}` };
  if (state.exists === null) {
    const missingNs = state.error?.endsWith("does not exist") ?? false;
    return {
      ...check,
      status: "warn",
      detail: missingNs ? `${state.error}` : `cannot look in ${where}: ${state.error}`,
      fix: missingNs ? SETUP_FIX : "run volar doctor as root to look inside the namespace",
    };
  }
  if (!state.exists) {
    return { ...check, status: "warn", detail: `not in ${where}`, fix: SETUP_FIX };
  }
  if (state.kind !== "bridge") {
    return {
      ...check,
      status: "fail",
      detail: `${state.name} in ${where} is a ${state.kind}, not a bridge`,
      fix: `delete it (ip link del ${state.name}) or set network.bridge to another name`,
    };
  }
  return {
    ...check,
    status: "ok",
    detail: `in ${where}, ${state.up ? "up" : "down (volantd sets it up when it starts)"}`,
    fix: null,
  };
}

// ---------------------------------------------------------------------------------------------
// Disk space

/** Below this, a VM's logs and runtime files may not fit: the check fails. */
export const MIN_FREE_BYTES = 256 * 1024 ** 2;
/** Below this the check warns (plugin images and overlays need room). */
export const LOW_FREE_BYTES = 2 * 1024 ** 3;

/**
 * Reads `df -Pk` output: the free space (bytes) and mount point of its one filesystem line;
 * null when the text is not `df -P` output.
 *
 * @example
 * ```ts
 * import { parseDfOutput } from "./_doctor_host.ts";
 * const out = "Filesystem 1024-blocks Used Available Capacity Mounted on\n" +
 *   "/dev/vda1 1000 400 600 40% /\n";
 * console.assert(parseDfOutput(out)?.free_bytes === 600 * 1024);
 * ```
 */
export function parseDfOutput(text: string): { free_bytes: number; mount: string } | null {
  const line = text.trim().split("\n").slice(1).find((l) => l.trim() !== "");
  const m = line?.match(/^.*?\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s+(\/.*)$/);
  if (!m) return null;
  return { free_bytes: Number(m[3]) * 1024, mount: m[4]! };
}

/** Free space where the state dir is (or would be: its nearest existing parent). */
export interface DiskState {
  dir: string;
  /** The directory measured: `dir`, or its nearest existing parent. */
  measured: string;
  free_bytes: number | null;
  mount: string | null;
  error: string | null;
}

async function nearestExisting(dir: string): Promise<string> {
  let path = dir;
  while (path !== "/" && path !== "") {
    try {
      if ((await Deno.stat(path)).isDirectory) return path;
    } catch {
      // Not there yet: volantd creates it.
    }
    path = path.slice(0, path.lastIndexOf("/")) || "/";
  }
  return "/";
}

/**
 * Runs `df -Pk` on the state dir (or its nearest existing parent).
 *
 * @example
 * ```ts ignore
 * import { diskState } from "./_doctor_host.ts";
 * console.log(await diskState("/var/lib/volant"));
 * ```
 */
export async function diskState(dir: string): Promise<DiskState> {
  const measured = await nearestExisting(dir);
  const base = { dir, measured, free_bytes: null, mount: null };
  try {
    const out = await new Deno.Command("df", {
      args: ["-Pk", measured],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { LC_ALL: "C" },
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim();
      return { ...base, error: `df -Pk ${measured} failed: ${err}` };
    }
    const parsed = parseDfOutput(text);
    return parsed
      ? { ...base, ...parsed, error: null }
      : { ...base, error: `df -Pk ${measured} printed no filesystem line` };
  } catch (err) {
    return { ...base, error: `cannot run df: ${(err as Error).message}` };
  }
}

/**
 * The disk line: fails under {@linkcode MIN_FREE_BYTES}, warns under {@linkcode LOW_FREE_BYTES}.
 *
 * @example
 * ```ts ignore
 * import { diskCheck, diskState } from "./_doctor_host.ts";
 * console.log(diskCheck(await diskState("/var/lib/volant")));
 * ```
 */
export function diskCheck(state: DiskState): DoctorCheck {
  const check = { id: "disk", title: "disk space" };
  if (state.free_bytes === null) {
    return { ...check, status: "warn", detail: state.error ?? "unknown", fix: null };
  }
  const where = state.measured === state.dir
    ? state.dir
    : `${state.dir} (not created yet; measured ${state.measured})`;
  const detail = `${formatSize(state.free_bytes)} free for ${where} on ${state.mount}`;
  const fix = "free space on that filesystem, or set state_dir to a larger one";
  if (state.free_bytes < MIN_FREE_BYTES) return { ...check, status: "fail", detail, fix };
  if (state.free_bytes < LOW_FREE_BYTES) return { ...check, status: "warn", detail, fix };
  return { ...check, status: "ok", detail, fix: null };
}

// ---------------------------------------------------------------------------------------------
// Tools

/** The Debian tools Volant runs, the package each comes in, and what it is for. */
export const TOOLS: ReadonlyArray<{ name: string; package: string; purpose: string }> = [
  { name: "qemu-img", package: "qemu-utils", purpose: "plugin disk overlays" },
  { name: "mkfs.erofs", package: "erofs-utils", purpose: "the guest's runtime image" },
  { name: "busybox", package: "busybox-static", purpose: "the guest's stage-0 initramfs" },
  { name: "ip", package: "iproute2", purpose: "network namespaces" },
  { name: "nft", package: "nftables", purpose: "NAT and published ports" },
];

/** The system directories searched after `PATH` (where root's tools live). */
export const SYSTEM_DIRS = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** A tool as found. */
export interface ToolState {
  name: string;
  package: string;
  path: string | null;
}

/**
 * Looks each of {@linkcode TOOLS} up on `searchPath`.
 *
 * @example
 * ```ts ignore
 * import { SYSTEM_DIRS, toolStates } from "./_doctor_host.ts";
 * console.log(await toolStates(`${Deno.env.get("PATH")}:${SYSTEM_DIRS}`));
 * ```
 */
export async function toolStates(searchPath: string): Promise<ToolState[]> {
  return await Promise.all(TOOLS.map(async (t) => ({
    name: t.name,
    package: t.package,
    path: await findExecutable(t.name, searchPath),
  })));
}

/**
 * One line per tool; a missing one fails with its apt command.
 *
 * @example
 * ```ts ignore
 * import { SYSTEM_DIRS, toolChecks, toolStates } from "./_doctor_host.ts";
 * console.log(toolChecks(await toolStates(SYSTEM_DIRS)));
 * ```
 */
export function toolChecks(tools: readonly ToolState[]): DoctorCheck[] {
  return tools.map((t) => {
    const purpose = TOOLS.find((x) => x.name === t.name)?.purpose ?? "";
    return t.path
      ? { id: `tool.${t.name}`, status: "ok", title: t.name, detail: t.path, fix: null }
      : {
        id: `tool.${t.name}`,
        status: "fail",
        title: t.name,
        detail: `not found (needed for ${purpose})`,
        fix: `apt-get install --no-install-recommends ${t.package}`,
      };
  });
}

// ---------------------------------------------------------------------------------------------
// Daemon

/** How long `GET /healthz` may take before volantd counts as not answering. */
export const HEALTH_TIMEOUT_MS = 2_000;

/** What `GET /healthz` gave. */
export interface DaemonState {
  target: string;
  reachable: boolean;
  health: Health | null;
  error: string | null;
}

/**
 * Asks volantd for `GET /healthz` through the CLI's client, for at most `timeoutMs`.
 *
 * @example
 * ```ts ignore
 * import { daemonState } from "./_doctor_host.ts";
 * console.log(await daemonState({ kind: "unix", socket: "/run/volant/volantd.sock" }));
 * ```
 */
export async function daemonState(
  target: ApiTarget,
  timeoutMs = HEALTH_TIMEOUT_MS,
): Promise<DaemonState> {
  const where = describeTarget(target);
  const base = { target: target.kind === "unix" ? target.socket : target.base };
  const client = new VolantClient(target);
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await client.open(GetHealth, {}, undefined, { signal });
    const parsed = Health.safeParse(await res.json().catch(() => null));
    if (!res.ok || !parsed.success) {
      return {
        ...base,
        reachable: false,
        health: null,
        error: `${where} answered GET /healthz with HTTP ${res.status} and no health document`,
      };
    }
    return { ...base, reachable: true, health: parsed.data, error: null };
  } catch (err) {
    const message = signal.aborted
      ? `volantd at ${where} did not answer GET /healthz within ${timeoutMs} ms`
      : err instanceof VolantError
      ? err.message
      : String(err);
    return { ...base, reachable: false, health: null, error: message };
  } finally {
    client.close();
  }
}

/**
 * The daemon line: not answering is a warning (doctor needs no daemon).
 *
 * @example
 * ```ts ignore
 * import { daemonCheck, daemonState } from "./_doctor_host.ts";
 * console.log(daemonCheck(await daemonState({ kind: "unix", socket: "/run/volant/volantd.sock" })));
 * ```
 */
export function daemonCheck(state: DaemonState): DoctorCheck {
  const check = { id: "daemon", title: "volantd" };
  if (state.health) {
    const h = state.health;
    const hv = `${h.hypervisor.name}${h.hypervisor.version ? ` ${h.hypervisor.version}` : ""}`;
    return {
      ...check,
      status: "ok",
      detail: `${h.version} answers at ${state.target}: ${hv}, ` +
        `${h.hypervisor.kvm ? "KVM" : "TCG (no KVM)"}, ${h.vms} VM${h.vms === 1 ? "" : "s"}`,
      fix: null,
    };
  }
  const { detail, fix } = splitFix(state.error ?? "not reachable");
  return { ...check, status: "warn", detail, fix };
}
