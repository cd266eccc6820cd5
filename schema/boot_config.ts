/**
 * The boot configuration the daemon hands to kestrel, and kestrel's readiness report.
 * Both sides import these types so the guest and the host cannot disagree. Written with
 * `zod/mini` to keep kestrel's bundle small (see error.ts).
 *
 * @module
 */
import * as z from "zod/mini";
import { Manifest } from "./manifest.ts";

/** Kernel command-line key that carries the base64url-encoded boot config. */
export const BOOT_CONFIG_KEY = "volant.boot";

/**
 * Where the boot config sits in the guest's initramfs (a per-VM cpio archive appended to the
 * shared one: no kernel command-line size limit). kestrel sees the initramfs root at
 * {@linkcode GUEST_ROOT_DIR}.
 */
export const BOOT_CONFIG_PATH = "/volant/boot.json";

/** Where stage 0 makes the initramfs root (the workload's root on the initramfs path) visible to kestrel. */
export const GUEST_ROOT_DIR = "/run/volant/root";

/**
 * Where kestrel finds what stage 0 started before it (on the runtime root's `/run` tmpfs, out of
 * the workload's root): the workload's pid, and the FIFOs its stdout and stderr go to.
 */
export const EARLY_WORKLOAD_FILES = {
  pid: "/run/volant/workload.pid",
  stdout: "/run/volant/workload.out",
  stderr: "/run/volant/workload.err",
} as const;

/** The file descriptors stage 0 holds the FIFOs open on (kestrel closes them once it reads). */
export const EARLY_WORKLOAD_FDS = { stdout: 3, stderr: 4 } as const;

/**
 * Where stage 0 moves kestrel's boot config (it holds the API secret) before anything of the
 * workload runs: the runtime root's `/run` tmpfs, which the workload's root does not contain.
 */
export const KESTREL_BOOT_CONFIG = "/run/volant/boot.json";

/** Line prefix kestrel prints on the serial console when it is ready. */
export const READY_MARKER = "KESTREL_READY";

/** Guest network settings (kestrel configures eth0 itself: the kernel ignores `ip=`). */
export const GuestNetwork = z.strictObject({
  ip: z.string(),
  prefix: z.int().check(z.minimum(0), z.maximum(32)),
  gateway: z.optional(z.string()),
  mac: z.optional(z.string()),
});
/** Guest network settings. */
export type GuestNetwork = z.infer<typeof GuestNetwork>;

/**
 * An OCI image's root for the workload: the image's shared read-only filesystem and the VM's
 * own writable disk, joined by overlayfs at `workload_root`.
 */
export const ImageRoot = z.strictObject({
  /** The image's read-only root filesystem (e.g. `/dev/vdb`). */
  lower: z.string(),
  /** Its filesystem type (default erofs). */
  lower_fstype: z.optional(z.string()),
  /** The VM's writable disk (ext4, e.g. `/dev/vdc`): holds the overlay's upper and work dirs. */
  upper: z.string(),
});
/** An OCI image's root for the workload. */
export type ImageRoot = z.infer<typeof ImageRoot>;

/**
 * How kestrel serves its HTTP API: the port, and the VM's secret every request must carry
 * (`Authorization: Bearer <secret>`). The secret travels only in the initramfs boot config
 * ({@linkcode BOOT_CONFIG_PATH}, mode 0600), never on the kernel command line
 * ({@linkcode encodeBootConfig} leaves it out); kestrel removes that file once it has read it.
 */
export const AgentAccess = z.strictObject({
  /** TCP port on the guest's eth0 address. */
  port: z.int().check(z.minimum(1), z.maximum(65_535)),
  /** base64url of at least 32 random bytes; without it kestrel refuses every request. */
  secret: z.optional(z.string().check(z.regex(/^[A-Za-z0-9_-]{43,512}$/))),
});
/** How kestrel serves its HTTP API. */
export type AgentAccess = z.infer<typeof AgentAccess>;

/** Boot configuration for kestrel (version 1). */
export const BootConfig = z.strictObject({
  v: z.literal(1),
  name: z.string(),
  hostname: z.string(),
  network: z.optional(GuestNetwork),
  /** The plugin's manifest: the workload kestrel supervises. */
  manifest: z.optional(Manifest),
  /** The workload's root directory in kestrel's view (default {@linkcode GUEST_ROOT_DIR}). */
  workload_root: z.optional(z.string()),
  /** Assemble the workload's root from an image (mounted at `workload_root`). */
  image_root: z.optional(ImageRoot),
  /** Run a root shell on the serial console (what `volar vms console` reaches). */
  console_shell: z.optional(z.boolean()),
  /** kestrel's API port and secret (default: port `AGENT_PORT`, no secret: every request refused). */
  agent: z.optional(AgentAccess),
  /**
   * The guest device of the control channel (`schema/guest_control.ts`), when the VMM wires
   * one: a serial port kestrel opens raw and exclusive (`/dev/ttyS1` under QEMU).
   */
  control_device: z.optional(z.string().check(z.regex(/^\/dev\/[A-Za-z0-9]+$/))),
});
/** Boot configuration for kestrel (version 1). */
export type BootConfig = z.infer<typeof BootConfig>;

/**
 * Where a boot's time went, in guest uptime milliseconds (kestrel's report; phases a boot did
 * not have are absent): the kernel handing over to stage 0, stage 0 handing over to the
 * runtime (drivers loaded, runtime disk mounted), Deno running kestrel's code, kestrel's mounts,
 * the guest network, the workload started, and kestrel ready (its API listening).
 */
export const BootTimeline = z.object({
  kernel_ms: z.optional(z.number().check(z.minimum(0), z.maximum(86_400_000))),
  stage0_ms: z.optional(z.number().check(z.minimum(0), z.maximum(86_400_000))),
  runtime_ms: z.optional(z.number().check(z.minimum(0), z.maximum(86_400_000))),
  kestrel_ms: z.optional(z.number().check(z.minimum(0), z.maximum(86_400_000))),
  mounts_ms: z.optional(z.number().check(z.minimum(0), z.maximum(86_400_000))),
  network_ms: z.optional(z.number().check(z.minimum(0), z.maximum(86_400_000))),
  workload_ms: z.optional(z.number().check(z.minimum(0), z.maximum(86_400_000))),
  ready_ms: z.optional(z.number().check(z.minimum(0), z.maximum(86_400_000))),
});
/** {@linkcode BootTimeline}. */
export type BootTimeline = z.infer<typeof BootTimeline>;

/**
 * The phases of a {@linkcode BootTimeline}, in kestrel's boot order. When stage 0 starts the
 * workload itself, `network_ms` and `workload_ms` come before `stage0_ms` instead (see
 * {@linkcode TIMELINE_CHAINS}).
 */
export const TIMELINE_PHASES = [
  "kernel_ms",
  "stage0_ms",
  "runtime_ms",
  "kestrel_ms",
  "mounts_ms",
  "network_ms",
  "workload_ms",
  "ready_ms",
] as const;

/**
 * The orders every boot keeps, whoever starts the workload: kestrel's own path, and the
 * workload's (its network before it, both before kestrel is ready).
 */
export const TIMELINE_CHAINS = [
  ["kernel_ms", "stage0_ms", "runtime_ms", "kestrel_ms", "mounts_ms", "ready_ms"],
  ["kernel_ms", "network_ms", "workload_ms", "ready_ms"],
] as const satisfies ReadonlyArray<ReadonlyArray<typeof TIMELINE_PHASES[number]>>;

/** What kestrel reports after the marker: version, uptime, memory use read inside the guest, timeline. */
export const ReadyReport = z.object({
  name: z.string(),
  kestrel_version: z.string(),
  uptime_ms: z.number(),
  mem_total_kb: z.number(),
  mem_available_kb: z.number(),
  /** kestrel's own resident memory (VmRSS of PID 1), when it could read it. */
  kestrel_rss_kb: z.optional(z.number()),
  /** The guest's IPv4 address (no prefix), when kestrel configured the network. */
  ip: z.optional(z.string()),
  /** Where the boot's time went (guest uptime). */
  timeline: z.optional(BootTimeline),
});
/** kestrel's readiness report. */
export type ReadyReport = z.infer<typeof ReadyReport>;

/**
 * Encodes a boot config as a kernel command-line word `volant.boot=<base64url>`. The agent's
 * secret is left out: the command line is readable by every process in the guest
 * (`/proc/cmdline`) and printed in logs.
 *
 * @example
 * ```ts
 * import { encodeBootConfig, decodeBootConfig } from "./boot_config.ts";
 * const secret = "s".repeat(43);
 * const word = encodeBootConfig({ v: 1, name: "web", hostname: "web", agent: { port: 9, secret } });
 * console.assert(decodeBootConfig(`quiet ${word}`)?.name === "web");
 * console.assert(decodeBootConfig(`quiet ${word}`)?.agent?.secret === undefined);
 * ```
 */
export function encodeBootConfig(config: BootConfig): string {
  const parsed = BootConfig.parse(config);
  const shown = parsed.agent === undefined
    ? parsed
    : { ...parsed, agent: { port: parsed.agent.port } };
  const json = new TextEncoder().encode(JSON.stringify(shown));
  let bin = "";
  for (const byte of json) bin += String.fromCharCode(byte);
  const b64 = btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  return `${BOOT_CONFIG_KEY}=${b64}`;
}

/**
 * Finds and decodes the boot config in a kernel command line; `undefined` when absent.
 * Throws a zod error when present but malformed.
 *
 * @example
 * ```ts
 * import { decodeBootConfig } from "./boot_config.ts";
 * console.assert(decodeBootConfig("console=ttyS0 quiet") === undefined);
 * ```
 */
export function decodeBootConfig(cmdline: string): BootConfig | undefined {
  const word = cmdline.split(/\s+/).find((w) => w.startsWith(`${BOOT_CONFIG_KEY}=`));
  if (word === undefined) return undefined;
  const b64 = word.slice(BOOT_CONFIG_KEY.length + 1).replaceAll("-", "+").replaceAll("_", "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return BootConfig.parse(JSON.parse(new TextDecoder().decode(bytes)));
}
