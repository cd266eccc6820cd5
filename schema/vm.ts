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

/** Body of `POST /api/v1/vms`. */
export const VmCreateRequest = z.strictObject({
  name: VmName,
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
  ip: Ipv4Address.optional().describe("A specific address from the pool (default: lowest free)"),
  publish: z.array(PortMapping).max(64).default([]).describe("Host ports forwarded to the VM"),
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
}).superRefine((r, ctx) => {
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
});
/** Parsed body of `POST /api/v1/vms` (defaults applied). */
export type VmCreateRequest = z.infer<typeof VmCreateRequest>;
/** What a client may send to `POST /api/v1/vms` (defaults optional). */
export type VmCreateInput = z.input<typeof VmCreateRequest>;

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
