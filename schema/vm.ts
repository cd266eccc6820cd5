/**
 * VM schemas: the create request, the VM record returned by the API and printed by
 * `volar vms … --json`, and the lifecycle states.
 *
 * @module
 */
import { z } from "zod";
import { EnvAssignment, ImageRef } from "./image.ts";
import { VmJailRecord } from "./security.ts";
import { DEFAULT_NETWORK_POLICY, NetworkPolicy, NetworkPolicyFields } from "./network_policy.ts";

/** Lifecycle states of a VM as the daemon reports them. */
export const VmState = z.enum(["pending", "starting", "running", "stopping", "stopped", "crashed"]);
/** One of {@linkcode VmState}'s values. */
export type VmState = z.infer<typeof VmState>;

/** A VM name: a DNS label (lowercase letters, digits, `-`; 1–63 characters). */
export const VmName = z.string().regex(
  /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
  "must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit",
);

/** Hypervisor names. `auto` lets the daemon pick the best one the host has. */
export const HypervisorName = z.enum(["qemu", "cloud-hypervisor", "firecracker"]);
/** One of {@linkcode HypervisorName}'s values. */
export type HypervisorName = z.infer<typeof HypervisorName>;

/** Guest kernel names (the seeds' dual-kernel strategy). */
export const KernelName = z.enum(["vmlinux-generic", "bzImage-volant"]);
/** One of {@linkcode KernelName}'s values. */
export type KernelName = z.infer<typeof KernelName>;

/** Limits on resources a VM may ask for. */
export const LIMITS = {
  cpuMin: 1,
  cpuMax: 32,
  memoryMinMb: 128,
  memoryMaxMb: 262144,
  cmdlineMax: 1024,
} as const;

/** An IPv4 address in dotted-quad form. */
export const Ipv4Address = z.string().regex(
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/,
  "must be an IPv4 address like 192.168.127.50",
);

/** A host port forwarded to a port of the VM (kernel-level DNAT). */
export const PortMapping = z.strictObject({
  host_port: z.number().int().min(1).max(65535),
  guest_port: z.number().int().min(1).max(65535),
  protocol: z.enum(["tcp", "udp"]).default("tcp"),
});
/** A host port forwarded to a port of the VM. */
export type PortMapping = z.infer<typeof PortMapping>;

/**
 * What volantd does when a VM's VMM dies without being asked (a crash, a kill, a guest that
 * powered itself off): `never` leaves it `crashed`; `on-failure` starts it again with backoff,
 * keeping its address, until `restart.max_retries` consecutive crashes; `always` never gives up.
 */
export const VmRestartPolicy = z.enum(["never", "on-failure", "always"]);
/** One of {@linkcode VmRestartPolicy}'s values. */
export type VmRestartPolicy = z.infer<typeof VmRestartPolicy>;

/** The fields of a VM's definition a deployment's replicas share (all of a create but its name, address and host ports). */
export const VmTemplateFields = {
  plugin: VmName.optional().describe("The installed plugin whose workload the VM runs"),
  cpu_cores: z.number().int().min(LIMITS.cpuMin).max(LIMITS.cpuMax).optional().describe(
    "vCPUs (default: the plugin's resources.cpu_cores, else 1)",
  ),
  memory_mb: z.number().int().min(LIMITS.memoryMinMb).max(LIMITS.memoryMaxMb).optional()
    .describe("Memory in MiB (default: the plugin's resources.memory_mb, else 256)"),
  kernel: KernelName.optional(),
  kernel_cmdline: z.string().max(LIMITS.cmdlineMax).regex(
    /^[\x20-\x7e]*$/,
    "must be printable ASCII",
  ).optional(),
  image: ImageRef.optional().describe(
    "An OCI image to run: a registry reference (pulled when not cached), oci:<dir>[:tag] or " +
      "docker-archive:<file> (imported); its Entrypoint + Cmd, Env, WorkingDir and User become " +
      "the workload",
  ),
  insecure_registry: z.boolean().default(false).describe(
    "Pull the image over plain HTTP",
  ),
  env: z.array(EnvAssignment).max(256).default([]).describe(
    "KEY=value added to (or replacing in) the image's Env",
  ),
  entrypoint: z.array(z.string()).min(1).optional().describe(
    "Replaces the image's Entrypoint (and drops its Cmd, as docker run does)",
  ),
  cmd: z.array(z.string()).min(1).optional().describe("Replaces the image's Cmd"),
  network_policy: z.optional(NetworkPolicyFields).describe(
    "What the guest may reach and who may reach it; each field given replaces the plugin " +
      "manifest's (default: internet egress through NAT, nothing else)",
  ),
};

/** The checks across fields of a VM definition (create request or deployment template). */
export function checkVmTemplate(
  r: {
    plugin?: string | undefined;
    image?: string | undefined;
    entrypoint?: string[] | undefined;
    cmd?: string[] | undefined;
    env: string[];
  },
  ctx: z.core.$RefinementCtx,
): void {
  if (r.image !== undefined && r.plugin !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["image"],
      message: "give a plugin or an image, not both",
    });
  }
  if (r.image === undefined) {
    for (const field of ["entrypoint", "cmd"] as const) {
      if (r[field] !== undefined) {
        ctx.addIssue({ code: "custom", path: [field], message: "only applies with image" });
      }
    }
    if (r.env.length > 0) {
      ctx.addIssue({ code: "custom", path: ["env"], message: "only applies with image" });
    }
  }
}

/** Body of `POST /api/v1/vms`. */
export const VmCreateRequest = z.strictObject({
  name: VmName,
  ...VmTemplateFields,
  from_snapshot: VmName.optional().describe(
    "Resume a snapshot (of any VM) as this new VM instead of booting: its memory, processes " +
      "and disks as they were, with its own address, MAC, hostname and kestrel secret; the " +
      "plugin or image, CPUs, memory and kernel come from the snapshot",
  ),
  ip: Ipv4Address.optional().describe("A specific address from the pool (default: lowest free)"),
  publish: z.array(PortMapping).max(64).default([]).describe("Host ports forwarded to the VM"),
  restart: VmRestartPolicy.optional().describe(
    "When its VMM dies without being asked: never (stay crashed), on-failure (start again with " +
      "backoff, keeping the address, up to restart.max_retries times in a row) or always " +
      "(default: the plugin's restart.vm, else never)",
  ),
}).superRefine((r, ctx) => {
  if (r.from_snapshot !== undefined) {
    for (
      const field of [
        "plugin",
        "image",
        "cpu_cores",
        "memory_mb",
        "kernel",
        "kernel_cmdline",
        "entrypoint",
        "cmd",
      ] as const
    ) {
      if (r[field] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [field],
          message: "comes from the snapshot with from_snapshot; leave it out",
        });
      }
    }
    if (r.env.length > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["env"],
        message: "comes from the snapshot with from_snapshot; leave it out",
      });
    }
    return;
  }
  checkVmTemplate(r, ctx);
});
/** Parsed body of `POST /api/v1/vms` (defaults applied). */
export type VmCreateRequest = z.infer<typeof VmCreateRequest>;
/** What a client may send to `POST /api/v1/vms` (defaults optional). */
export type VmCreateInput = z.input<typeof VmCreateRequest>;

/** A VM's restart policy and its restarts (see {@linkcode VmRestartPolicy}). */
export const VmRestartState = z.object({
  policy: VmRestartPolicy,
  restarts: z.number().int().describe("Times volantd started it again after a crash"),
  streak: z.number().int().describe(
    "Crashes in a row (reset once it has run restart.stable_ms)",
  ),
  status: z.enum(["idle", "waiting", "crash_loop", "gave_up"]).describe(
    "idle: nothing to do; waiting: a restart is due at next_at; crash_loop: it crashed " +
      "restart.crash_loop_after times in a row (restarts go on with the longest backoff); " +
      "gave_up: on-failure stopped after restart.max_retries crashes in a row",
  ),
  next_at: z.string().nullable().describe("When the next restart is due (RFC 3339), or null"),
});
/** {@linkcode VmRestartState}. */
export type VmRestartState = z.infer<typeof VmRestartState>;

/** The restart state of a VM that never crashed under a policy. */
export const NO_RESTARTS: VmRestartState = Object.freeze({
  policy: "never",
  restarts: 0,
  streak: 0,
  status: "idle",
  next_at: null,
}) as VmRestartState;

/** A VM as the API returns it. */
export const VmRecord = z.object({
  name: VmName,
  state: VmState,
  plugin: z.string().nullable().describe("The plugin the VM runs, or null (kestrel only)"),
  image: z.string().nullable().describe("The OCI image the VM runs, or null"),
  image_digest: z.string().nullable().describe("The image's manifest digest at create time"),
  cpu_cores: z.number().int(),
  memory_mb: z.number().int(),
  kernel: KernelName,
  kernel_cmdline: z.string().nullable(),
  hypervisor: HypervisorName,
  kvm: z.boolean().describe("Whether the VM runs with hardware KVM acceleration"),
  pid: z.number().int().nullable().describe("PID of the VMM process while it runs"),
  created_at: z.string().describe("RFC 3339 time the VM was created"),
  updated_at: z.string(),
  started_at: z.string().nullable().describe("Time of the last start request"),
  ready_at: z.string().nullable().describe("Time kestrel reported ready after the last start"),
  boot_ms: z.number().int().nullable().describe("Milliseconds from start request to kestrel ready"),
  last_error: z.string().nullable(),
  ip: z.string().nullable().describe("The VM's static IPv4 address (its lease)"),
  mac: z.string().nullable().describe("The guest NIC's MAC address"),
  tap: z.string().nullable().describe("The host tap device while the VMM runs"),
  ports: z.array(PortMapping).describe("Host ports forwarded to the VM"),
  network_policy: z.object(NetworkPolicy.shape).default(() =>
    structuredClone(DEFAULT_NETWORK_POLICY)
  ).describe(
    "What the guest may reach and who may reach it, enforced on the host per tap (absent " +
      "from daemons older than network policies: the default)",
  ),
  workload: z.object({
    state: z.string().describe("kestrel's supervisor state: running, backoff, failed, …"),
    healthy: z.boolean(),
    restarts: z.number().int().describe("Restarts of the workload by kestrel since boot"),
    checked_at: z.string(),
    error: z.string().nullable(),
  }).nullable().describe("The plugin's workload as kestrel last reported it"),
  timeline: z.object({
    kernel_ms: z.number().optional(),
    stage0_ms: z.number().optional(),
    runtime_ms: z.number().optional(),
    kestrel_ms: z.number().optional(),
    mounts_ms: z.number().optional(),
    network_ms: z.number().optional(),
    workload_ms: z.number().optional(),
    ready_ms: z.number().optional(),
  }).nullable().default(null).describe(
    "The last boot's phases in guest uptime ms, as kestrel reported them: kernel → stage 0 " +
      "→ runtime (Deno) → kestrel → mounts → network → workload started → ready (null: not " +
      "reported yet); boot_ms is the host's start request → running",
  ),
  deployment: z.string().nullable().default(null).describe(
    "The deployment this VM is a replica of, or null",
  ),
  restart: VmRestartState.default(() => ({ ...NO_RESTARTS })).describe(
    "Its restart policy and what volantd did about crashes",
  ),
  jail: VmJailRecord.nullable().default(null).describe(
    "The VMM's confinement while it runs: uid, cgroup and limits (null: not running, or " +
      "security.jail is off)",
  ),
});
/** A VM as the API returns it. */
export type VmRecord = z.infer<typeof VmRecord>;

/** Body of `GET /api/v1/vms`. */
export const VmList = z.object({ vms: z.array(VmRecord) });
/** Body of `GET /api/v1/vms`. */
export type VmList = z.infer<typeof VmList>;
