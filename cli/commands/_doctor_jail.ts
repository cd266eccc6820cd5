/**
 * The VMM jail line of `volar doctor`: which cgroup version VMM cgroups would use (v2 when it
 * offers memory, cpu and pids; the legacy v1 hierarchies otherwise, a warning) and whether the
 * root cgroup delegates those controllers to its children. Read-only. Internal to the CLI.
 *
 * @module
 */
import type { ResolvedConfig } from "../../daemon/config.ts";
import {
  type CgroupHost,
  cgroupParentDirs,
  CONTROLLERS,
  detectCgroupHost,
} from "../../hypervisor/jail/mod.ts";
import type { DoctorCheck } from "./_doctor_checks.ts";

/** What the host offers VMM jails. */
export interface JailState {
  /** `security.jail`. */
  enabled: boolean;
  /** The cgroup version VMM cgroups would use; null when neither offers the controllers. */
  cgroup_version: "v1" | "v2" | null;
  /** Where the controllers are, in words. */
  cgroup: string | null;
  /** v2: the controllers the root cgroup delegates to its children (`cgroup.subtree_control`). */
  delegated: string[] | null;
  /** The parent cgroup directories VMM cgroups would be made in (as seen by volar). */
  parent: string[] | null;
  /** Why the host cannot jail VMMs. */
  error: string | null;
}

/**
 * Looks at the cgroup mounts (`/proc/self/mountinfo`) with the config's `security` settings.
 *
 * @example
 * ```ts ignore
 * import { jailState } from "./_doctor_jail.ts";
 * console.log(await jailState(config));
 * ```
 */
export async function jailState(
  config: ResolvedConfig,
  detect: (prefer: "auto" | "v1" | "v2") => Promise<CgroupHost> = detectCgroupHost,
): Promise<JailState> {
  const enabled = config.security.jail === "on";
  try {
    const host = await detect(config.security.cgroup);
    const delegated = host.version === "v2"
      ? (await Deno.readTextFile(`${host.mounts.memory}/cgroup.subtree_control`).catch(() => ""))
        .trim().split(/\s+/).filter((c) => c !== "")
      : null;
    let parent: string[] | null = null;
    try {
      parent = [...new Set(Object.values(cgroupParentDirs(host, config.security.cgroup_parent)))];
    } catch {
      // A bad cgroup_parent: the config check reports it.
    }
    return {
      enabled,
      cgroup_version: host.version,
      cgroup: host.description,
      delegated,
      parent,
      error: null,
    };
  } catch (err) {
    return {
      enabled,
      cgroup_version: null,
      cgroup: null,
      delegated: null,
      parent: null,
      error: err instanceof Error ? err.message : String(err),
    };
  }
}

const V2_FIX = "boot the host with systemd.unified_cgroup_hierarchy=1 (cgroup v2)";

/**
 * The `jail` line: ok with cgroup v2 (saying whether the controllers are delegated yet), a
 * warning with v1 or with the jail off, a failure when the jail is on and cannot be had.
 *
 * @example
 * ```ts
 * import { jailCheck } from "./_doctor_jail.ts";
 * const c = jailCheck({ enabled: true, cgroup_version: null, cgroup: null, delegated: null,
 *   parent: null, error: "no controllers" });
 * console.assert(c.status === "fail");
 * ```
 */
export function jailCheck(state: JailState): DoctorCheck {
  const check = { id: "jail", title: "vmm jail" };
  if (!state.enabled) {
    return {
      ...check,
      status: "warn",
      detail: "security.jail is off: VMMs run as root with no uid, cgroup or mount jail" +
        (state.cgroup ? ` (this host offers ${state.cgroup})` : ""),
      fix: "set security.jail: on",
    };
  }
  if (state.cgroup_version === null) {
    return {
      ...check,
      status: "fail",
      detail: state.error ?? "no cgroup controllers",
      fix: V2_FIX,
    };
  }
  const where = state.parent ? `; VMM cgroups under ${state.parent.join(", ")}` : "";
  if (state.cgroup_version === "v1") {
    return {
      ...check,
      status: "warn",
      detail: `${state.cgroup}: VMM cgroups use cgroup v1${where}`,
      fix: V2_FIX,
    };
  }
  const missing = CONTROLLERS.filter((c) => !(state.delegated ?? []).includes(c));
  const delegation = missing.length === 0
    ? `${CONTROLLERS.join(", ")} delegated below the root`
    : `${missing.join(", ")} not yet delegated below the root (volantd enables them at start)`;
  return { ...check, status: "ok", detail: `${state.cgroup}, ${delegation}${where}`, fix: null };
}
