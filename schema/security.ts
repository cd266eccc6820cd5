/**
 * The `security` section of volantd's config: how VMMs are confined (the jail) and the VMM
 * record of that confinement (`jail` in a VM record).
 *
 * @module
 */
import { z } from "zod";

/** `security.jail`: `on` or `off` (YAML/JSON booleans are accepted too). */
export const JailSwitch = z.preprocess(
  (v) => (v === true ? "on" : v === false ? "off" : v),
  z.enum(["on", "off"]),
);

/** The `security` section of the daemon config. */
export const SecurityConfig = z.strictObject({
  jail: JailSwitch.default("on").describe(
    "Confine every VMM: its own uid/gid, cgroup (memory, cpu, pids) and mount namespace with " +
      "only its VM's files. off runs VMMs as root, unconfined (warned at every start)",
  ),
  uid_range: z.tuple([z.number().int().min(1), z.number().int().min(1)]).default([
    900_000,
    10_000,
  ]).describe(
    "[start, count]: the uids (and gids) VMMs run as, one per VM; no host user or group may " +
      "hold one",
  ),
  cgroup: z.enum(["auto", "v2", "v1"]).default("auto").describe(
    "cgroup version for VMM cgroups; auto: v2 when it offers memory, cpu and pids, else the " +
      "legacy v1 hierarchies (warned at every start)",
  ),
  cgroup_parent: z.string().default("auto").describe(
    "Where VMM cgroups go: an absolute path below the cgroup root (/volant), a relative one " +
      "below volantd's own cgroup; auto: /volant with v2, volant with v1",
  ),
  vmm_memory_overhead_mib: z.number().int().min(16).nullable().default(null).describe(
    "memory.max is guest memory plus this; null: the measured default for the accelerator",
  ),
  pids_max: z.number().int().min(16).default(256).describe(
    "pids.max of each VMM's cgroup (its processes and threads)",
  ),
}).prefault({});
/** The `security` section with defaults applied. */
export type SecurityConfig = z.infer<typeof SecurityConfig>;

/** A VMM's confinement while it runs, as `volar vms get` shows it. */
export const VmJailRecord = z.object({
  uid: z.number().int().describe("The VMM's own uid (gid the same)"),
  gid: z.number().int(),
  root: z.string().describe("Its jail: a mount namespace whose root holds only this VM's files"),
  cgroup: z.object({
    version: z.enum(["v1", "v2"]),
    paths: z.array(z.string()).describe("Its cgroup (v2: one directory; v1: memory, cpu, pids)"),
    memory_max_bytes: z.number().int().describe("Guest memory plus the VMM's own"),
    cpu_max: z.string().describe("CPU quota and period in µs, as in cgroup v2's cpu.max"),
    pids_max: z.number().int(),
  }),
  devices: z.array(z.string()).describe("Device nodes it holds besides null, zero, random"),
});
/** A VMM's confinement while it runs. */
export type VmJailRecord = z.infer<typeof VmJailRecord>;
