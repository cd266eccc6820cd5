/**
 * volantd's configuration file (YAML or JSON). Every key has a default, so an empty file
 * (or none) gives a working daemon; tests point the directories elsewhere.
 *
 * @module
 */
import { z } from "zod";
import { SecurityConfig } from "./security.ts";
import { AGENT_PORT } from "./agent.ts";

/** Hypervisor choice: `auto` picks cloud-hypervisor, then firecracker, then qemu. */
export const HypervisorChoice = z.enum(["auto", "qemu", "cloud-hypervisor", "firecracker"]);

/**
 * Acceleration: `auto` uses hardware KVM when the guest kernel is proven to boot under it (a
 * probe boot at start, cached), TCG otherwise; `kvm` requires that proof; `tcg` skips it.
 */
export const AccelChoice = z.enum(["auto", "kvm", "tcg"]);

/** The guest kernel VMs boot unless they name one: `auto` follows the hypervisor. */
export const DefaultKernelChoice = z.enum(["auto", "vmlinux-generic", "bzImage-volant"]);

/** The daemon configuration. */
export const DaemonConfig = z.strictObject({
  state_dir: z.string().default("/var/lib/volant"),
  runtime_dir: z.string().default("/run/volant"),
  log_dir: z.string().default("/var/log/volant"),
  api: z.strictObject({
    socket: z.string().optional().describe("Unix socket path; default <runtime_dir>/volantd.sock"),
    socket_mode: z.number().int().default(0o660),
    socket_group: z.string().nullable().default("volant").describe(
      "Group the socket is given to when it exists (volar setup creates it); null: leave it",
    ),
    tcp: z.string().nullable().default(null).describe(
      "host:port for TCP, e.g. 127.0.0.1:7777; every request needs a bearer token " +
        "(volar tokens create)",
    ),
    tcp_insecure: z.boolean().default(false).describe(
      "Accept TCP requests without a token (a loopback api.tcp only; warned at every start)",
    ),
    max_body_bytes: z.number().int().min(1024).default(1024 * 1024).describe(
      "JSON request bodies larger than this are refused with 413",
    ),
    allowed_hosts: z.array(z.string().min(1)).default([]).describe(
      "Host names requests may name besides loopback ones (localhost, 127.0.0.1, ::1), " +
        "e.g. volant.example.internal",
    ),
  }).prefault({}),
  hypervisor: z.strictObject({
    name: HypervisorChoice.default("auto"),
    accel: AccelChoice.default("auto"),
    qemu_binary: z.string().default("qemu-system-x86_64"),
    cloud_hypervisor_binary: z.string().default("cloud-hypervisor"),
    firecracker_binary: z.string().default("firecracker"),
    boot_probe_timeout_ms: z.number().int().min(1_000).max(300_000).default(15_000).describe(
      "How long the probe boot that proves KVM may take before KVM is judged unusable",
    ),
    boot_verdicts: z.string().optional().describe(
      "Where probe verdicts are cached; default <state_dir>/boot-verdicts.json",
    ),
  }).prefault({}),
  guest: z.strictObject({
    dir: z.string().optional().describe("Kernels and guest images; default <state_dir>/guest"),
    default_kernel: DefaultKernelChoice.default("auto").describe(
      "auto: vmlinux-generic under Cloud Hypervisor and Firecracker, bzImage-volant under QEMU",
    ),
    agent_port: z.number().int().min(1).max(65_535).default(AGENT_PORT).describe(
      "The port kestrel's API listens on, on each guest's eth0 address (taken at each VM start; " +
        "never publishable)",
    ),
  }).prefault({}),
  network: z.strictObject({
    namespace: z.string().nullable().default(null).describe(
      "Run volantd (bridge, taps, VMMs) inside this network namespace",
    ),
    bridge: z.string().default("vbr0").describe("Linux bridge the VMs' taps attach to"),
    subnet: z.string().default("192.168.127.0/24").describe("IPv4 subnet of the VMs (CIDR)"),
    gateway: z.string().default("192.168.127.1").describe(
      "The host's address on the bridge: the VMs' default gateway",
    ),
    range_start: z.string().nullable().default(null).describe(
      "First address leased to VMs; default the first usable address of the subnet",
    ),
    range_end: z.string().nullable().default(null).describe(
      "Last address leased to VMs; default the last usable address of the subnet",
    ),
    nat: z.boolean().default(true).describe("Masquerade guest traffic leaving the subnet"),
    isolation: z.boolean().default(true).describe(
      "Enforce each VM's network policy on its tap (nftables); false: the bridge forwards " +
        "everything, as before network policies (warned at every start)",
    ),
  }).prefault({}),
  images: z.strictObject({
    insecure_registries: z.array(z.string()).default([]).describe(
      "Registries (host[:port]) pulled from over plain HTTP, e.g. 127.0.0.1:5000",
    ),
    max_unpacked_bytes: z.number().int().min(1024 * 1024).default(32 * 1024 ** 3).describe(
      "The most file bytes an image's layers may unpack to (a small layer can hold a huge file)",
    ),
  }).prefault({}),
  security: SecurityConfig,
  timeouts: z.strictObject({
    ready_ms: z.number().int().positive().default(60_000),
    stop_graceful_ms: z.number().int().positive().default(10_000),
    stop_term_ms: z.number().int().positive().default(5_000),
  }).prefault({}),
  events: z.strictObject({
    retention_days: z.number().positive().max(3650).default(7).describe(
      "Events older than this many days are pruned from the event log (fractions allowed)",
    ),
    max_rows: z.number().int().min(100).max(100_000_000).default(100_000).describe(
      "The event log keeps at most this many events; the oldest go first",
    ),
    prune_interval_ms: z.number().int().min(1_000).default(600_000).describe(
      "How often retention runs (it also runs at every start)",
    ),
  }).prefault({}),
  deployments: z.strictObject({
    max_replicas: z.number().int().min(1).max(10_000).default(100).describe(
      "A deployment may ask for at most this many replicas",
    ),
    parallel: z.number().int().min(1).max(64).default(2).describe(
      "Replicas one deployment creates, replaces or deletes at the same time",
    ),
    unhealthy_after_ms: z.number().int().min(1_000).default(60_000).describe(
      "A replica whose workload stays unhealthy this long is restarted in place",
    ),
    resync_ms: z.number().int().min(100).default(2_000).describe(
      "The reconciler looks at every deployment at least this often (besides on events)",
    ),
  }).prefault({}),
  restart: z.strictObject({
    initial_ms: z.number().int().min(10).default(1_000).describe(
      "A VM restarted by its restart policy waits this long before its first restart",
    ),
    max_ms: z.number().int().min(10).default(60_000).describe(
      "… doubling after each consecutive crash, up to this",
    ),
    stable_ms: z.number().int().min(100).default(60_000).describe(
      "A VM running this long has its consecutive-crash count reset",
    ),
    max_retries: z.number().int().min(1).max(1_000_000).default(10).describe(
      "restart on-failure gives up after this many consecutive crashes (always never does)",
    ),
    crash_loop_after: z.number().int().min(1).default(5).describe(
      "A VM that crashed this many times in a row is shown as crash-looping",
    ),
  }).prefault({}),
  limits: z.strictObject({
    serial_log_bytes: z.number().int().min(64 * 1024).default(8 * 1024 * 1024).describe(
      "A VM's serial log is rotated when it grows past this many bytes",
    ),
    max_artifact_bytes: z.number().int().min(1024 * 1024).default(16 * 1024 ** 3).describe(
      "A plugin artifact (initramfs, rootfs, disk) larger than this is refused while it downloads",
    ),
    serial_log_files: z.number().int().min(1).max(10).default(2).describe(
      "Serial log files kept per VM, the current one included (serial.log, serial.log.1, …)",
    ),
  }).prefault({}),
});
/** The daemon configuration with defaults applied. */
export type DaemonConfig = z.infer<typeof DaemonConfig>;
/** The daemon configuration as written in a file. */
export type DaemonConfigInput = z.input<typeof DaemonConfig>;
