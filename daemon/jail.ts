/**
 * VMM jails at daemon start (`security` in the config): find the cgroup controllers (v2, else
 * the v1 hierarchies, logged as a warning), check the uid range against the host's users and
 * groups, make the parent cgroup and delegate the controllers to it, and check the tools the
 * launch uses. A host where this fails gets a refusal naming the cause and `security.jail:
 * off`; `off` itself is logged as a warning at every start. Never a silent downgrade.
 *
 * @module
 */
import type { SecurityConfig } from "../schema/mod.ts";
import { VolantError } from "../schema/mod.ts";
import type { Driver } from "../hypervisor/driver.ts";
import { findExecutable } from "../hypervisor/process/find_executable.ts";
import {
  type CgroupHost,
  cgroupParentDirs,
  checkUidRangeOnHost,
  type Controller,
  detectCgroupHost,
  ensureCgroupMounts,
  prepareCgroupParent,
  type UidRange,
} from "../hypervisor/jail/mod.ts";
import type { Logger } from "./log.ts";

/** What the VM service needs to jail VMMs, resolved once at start. */
export interface JailSettings {
  host: CgroupHost;
  /** Where VMM cgroups are made, per controller. */
  parentDirs: Record<Controller, string>;
  uidRange: UidRange;
  /** `<runtime_dir>/jails`: one empty directory per running VMM, its root. */
  jailsDir: string;
  /** `security.vmm_memory_overhead_mib` (null: the measured default). */
  overheadMib: number | null;
  pidsMax: number;
}

/** The programs a jailed launch runs, with their Debian packages. */
export const JAIL_TOOLS: ReadonlyArray<{ name: string; package: string }> = [
  { name: "unshare", package: "util-linux" },
  { name: "setpriv", package: "util-linux" },
  { name: "mount", package: "mount" },
  { name: "chroot", package: "coreutils" },
  { name: "mknod", package: "coreutils" },
  { name: "ldd", package: "libc-bin" },
];

const OFF = "set security.jail: off to run VMMs unconfined (as root)";

/** Seams of {@linkcode setupJail}. */
export interface SetupJailOptions {
  /** Finds the cgroup controllers; default {@linkcode detectCgroupHost}. */
  detect?: (prefer: SecurityConfig["cgroup"]) => Promise<CgroupHost>;
  /** `PATH` the tools are looked up on. */
  searchPath?: string;
}

/**
 * The jail settings for this daemon, or `undefined` when VMMs run unconfined (`security.jail:
 * off`, warned; or a driver that runs no VMM process, e.g. the tests' fake). Throws a
 * VolantError naming the setting when the host cannot jail VMMs.
 *
 * @example
 * ```ts ignore
 * import { setupJail } from "./jail.ts";
 * const jail = await setupJail(config.security, config.runtime_dir, driver, logger);
 * ```
 */
export async function setupJail(
  security: SecurityConfig,
  runtimeDir: string,
  driver: Driver,
  logger: Logger,
  options: SetupJailOptions = {},
): Promise<JailSettings | undefined> {
  if (security.jail === "off") {
    logger.warn("security.jail is off: VMMs run as root with no uid, cgroup or mount jail", {
      setting: "security.jail",
    });
    return undefined;
  }
  if (!driver.confines) {
    logger.info("the driver runs no VMM process to jail", { driver: driver.name });
    return undefined;
  }
  const [start, count] = security.uid_range;
  const uidRange = { start, count };
  await checkUidRangeOnHost(uidRange);
  for (const tool of JAIL_TOOLS) {
    if ((await findExecutable(tool.name, options.searchPath)) === null) {
      throw new VolantError(
        "unsupported",
        `The VMM jail runs ${tool.name}, which is not installed (Debian package ` +
          `${tool.package}); install it, or ${OFF}`,
        { tool: tool.name, setting: "security.jail" },
      );
    }
  }
  const mounted = await ensureCgroupMounts();
  if (mounted.length > 0) logger.debug("cgroup mounts made visible", { mounts: mounted });
  const host = await (options.detect ?? detectCgroupHost)(security.cgroup);
  if (host.version === "v1") {
    logger.warn("VMM cgroups use cgroup v1 (this host has no usable cgroup v2)", {
      cgroup: host.description,
      fix: "boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2",
    });
  }
  const parentDirs = cgroupParentDirs(host, security.cgroup_parent);
  await prepareCgroupParent(host, parentDirs);
  const jailsDir = `${runtimeDir}/jails`;
  await Deno.mkdir(jailsDir, { recursive: true, mode: 0o755 });
  logger.info("vmm jail ready", {
    cgroup: host.description,
    parent: [...new Set(Object.values(parentDirs))],
    uid_range: security.uid_range,
  });
  return {
    host,
    parentDirs,
    uidRange,
    jailsDir,
    overheadMib: security.vmm_memory_overhead_mib,
    pidsMax: security.pids_max,
  };
}
