/**
 * Plugin manifest v1: what a plugin is (artifacts, resources) and how its workload runs in the
 * guest (entrypoint, env, user, restart policy, health check, actions). The original Volant's
 * fields, plus `workload.user`, `restart`, health checks of kind http | tcp | exec with an
 * interval and thresholds, and an ed25519 `signature` block.
 *
 * Unknown fields are errors (every object is strict), so a typo is reported with its path
 * instead of being ignored. Written with `zod/mini` because kestrel parses it in the guest.
 *
 * @module
 */
import * as z from "zod/mini";
import { NetworkPolicyFields } from "./network_policy.ts";

/** A `sha256:<64 hex>` checksum. */
export const Checksum = z.string().check(
  z.regex(/^sha256:[0-9a-f]{64}$/, "must be sha256:<64 lowercase hex digits>"),
);

/** Where an artifact comes from: `http(s)://`, `file://` or an absolute path. */
export const ArtifactUrl = z.string().check(
  z.regex(
    /^(https?:\/\/[^\s/]+\S*|file:\/\/\/\S*|\/\S*)$/,
    "must be an http(s):// URL, a file:/// URL or an absolute path",
  ),
);

/** A plugin name: a DNS label (lowercase letters, digits, `-`; 1–63 characters). */
export const PluginName = z.string().check(
  z.regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    "must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit",
  ),
);

const AbsolutePath = z.string().check(z.regex(/^\/\S*$/, "must be an absolute path like /srv"));
const HttpPath = z.string().check(z.regex(/^\/\S*$/, "must be a path starting with /"));
const Port = z.int().check(z.minimum(1), z.maximum(65535));
const Millis = (min: number, max: number, fallback: number) =>
  z._default(z.int().check(z.minimum(min), z.maximum(max)), fallback);

/** An initramfs artifact: merged into the guest's root file system at boot. */
export const InitramfsArtifact = z.strictObject({ url: ArtifactUrl, checksum: Checksum });

/** A root file system disk image. */
export const RootfsArtifact = z.strictObject({
  url: ArtifactUrl,
  checksum: Checksum,
  format: z._default(z.enum(["raw", "qcow2"]), "raw"),
});

/** An extra disk given to the guest after the system disks. */
export const DiskArtifact = z.strictObject({
  name: z.string().check(z.regex(/^[a-z0-9_]{1,32}$/, "must be 1-32 of [a-z0-9_]")),
  source: ArtifactUrl,
  checksum: Checksum,
  format: z._default(z.enum(["raw", "qcow2"]), "raw"),
  readonly: z._default(z.boolean(), true),
  target: z.optional(z.string()),
});

/** The signals a workload may ask for after the VM takes a new identity (`restore_signal`). */
export const RestoreSignal = z.enum(["SIGHUP", "SIGUSR1", "SIGUSR2"]);
/** A signal a workload may ask for after the VM takes a new identity. */
export type RestoreSignal = z.infer<typeof RestoreSignal>;

/** How the workload is started. `type: http` means it serves HTTP on `base_url`. */
export const Workload = z.strictObject({
  type: z._default(z.literal("http"), "http"),
  entrypoint: z.array(z.string().check(z.minLength(1))).check(
    z.minLength(1, "must name the program to run"),
  ),
  base_url: z.string().check(
    z.regex(/^http:\/\/[^/\s]+\/?$/, "must be an http:// URL like http://127.0.0.1:80"),
  ),
  env: z._default(z.record(z.string(), z.string()), {}),
  workdir: z.optional(AbsolutePath),
  user: z.optional(
    z.string().check(
      z.regex(/^(\d+(:\d+)?|[a-z_][a-z0-9_-]*)$/, "must be uid, uid:gid or a user name"),
    ),
  ),
  /**
   * The signal kestrel sends the workload's process group after the VM takes a new identity
   * (a clone: new address, MAC, hostname and fresh entropy), e.g. to drop cached addresses or
   * reseed its own random generator. Unset: nothing is sent.
   */
  restore_signal: z.optional(RestoreSignal),
});
/** The workload section. */
export type Workload = z.infer<typeof Workload>;

/** What kestrel does when the workload exits. */
export const RestartPolicy = z.strictObject({
  policy: z._default(z.enum(["always", "on-failure", "never"]), "on-failure"),
  /**
   * What volantd does when the VM's VMM dies (the default of `vms create --restart`; the same
   * values as `VmRestartPolicy` in vm.ts). Absent: never.
   */
  vm: z.optional(z.enum(["never", "on-failure", "always"])),
  max_retries: z._default(z.int().check(z.minimum(0), z.maximum(1_000_000)), 10),
  backoff: z._default(
    z.strictObject({
      initial_ms: Millis(10, 600_000, 500),
      max_ms: Millis(10, 3_600_000, 30_000),
      multiplier: z._default(z.number().check(z.minimum(1), z.maximum(10)), 2),
    }),
    { initial_ms: 500, max_ms: 30_000, multiplier: 2 },
  ),
});
/** The restart section. */
export type RestartPolicy = z.infer<typeof RestartPolicy>;

/** A continuous health check of the workload. */
export const HealthCheck = z.strictObject({
  kind: z._default(z.enum(["http", "tcp", "exec"]), "http"),
  /** http: the path on `workload.base_url` that must answer 2xx/3xx. */
  endpoint: z.optional(HttpPath),
  /** tcp: the port that must accept a connection (default the base_url's port). */
  port: z.optional(Port),
  /** exec: a command run in the workload's root that must exit 0. */
  command: z.optional(z.array(z.string()).check(z.minLength(1))),
  timeout_ms: Millis(10, 600_000, 2_000),
  interval_ms: Millis(100, 3_600_000, 2_000),
  healthy_threshold: z._default(z.int().check(z.minimum(1), z.maximum(100)), 1),
  unhealthy_threshold: z._default(z.int().check(z.minimum(1), z.maximum(100)), 3),
  /** Failures during this time after a (re)start do not count. */
  start_period_ms: Millis(0, 3_600_000, 60_000),
}).check(z.refine(
  (h) =>
    (h.kind !== "exec" || h.command !== undefined) &&
    (h.kind !== "http" || h.endpoint !== undefined),
  { message: "kind http needs endpoint; kind exec needs command" },
));
/** The health_check section. */
export type HealthCheck = z.infer<typeof HealthCheck>;

/** An action: an HTTP call kestrel forwards to the workload. */
export const Action = z.strictObject({
  description: z.optional(z.string()),
  method: z._default(z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]), "POST"),
  path: HttpPath,
  timeout_ms: Millis(1, 3_600_000, 30_000),
});
/** One action. */
export type Action = z.infer<typeof Action>;

/**
 * Who is PID 1 in the guest. `kestrel` (default): Volant's agent supervises the workload.
 * `custom`: stage 0 loads the drivers, configures eth0 and execs `path`. `none`: the same, but
 * the workload's entrypoint itself is PID 1 (smallest footprint; no health, logs or actions).
 */
export const InitConfig = z.strictObject({
  mode: z._default(z.enum(["kestrel", "custom", "none"]), "kestrel"),
  path: z.optional(AbsolutePath),
}).check(z.refine((i) => i.mode !== "custom" || i.path !== undefined, {
  message: "init.mode custom needs init.path (the program to run as PID 1)",
  path: ["path"],
}));
/** The init section. */
export type InitConfig = z.infer<typeof InitConfig>;

/** The manifest's signature: ed25519 over {@linkcode canonicalManifest}'s bytes. */
export const Signature = z.strictObject({
  algorithm: z.literal("ed25519"),
  key_id: z.string().check(z.regex(/^[0-9a-f]{16}$/, "must be 16 lowercase hex digits")),
  value: z.string().check(z.regex(/^[A-Za-z0-9+/]+=*$/, "must be base64")),
});
/** The signature block. */
export type Signature = z.infer<typeof Signature>;

/** Plugin manifest v1. */
export const Manifest = z.strictObject({
  schema_version: z._default(z.enum(["1", "1.0"]), "1.0"),
  name: PluginName,
  version: z.string().check(z.regex(/^[0-9A-Za-z.+_-]{1,64}$/, "must be a version like 1.2.0")),
  runtime: z.optional(z.string().check(z.minLength(1))),
  description: z.optional(z.string()),
  enabled: z._default(z.boolean(), true),
  initramfs: z.optional(InitramfsArtifact),
  rootfs: z.optional(RootfsArtifact),
  disks: z._default(z.array(DiskArtifact), []),
  resources: z.strictObject({
    cpu_cores: z.int().check(z.minimum(1), z.maximum(32)),
    memory_mb: z.int().check(z.minimum(128), z.maximum(262_144)),
  }),
  workload: Workload,
  init: z._default(InitConfig, { mode: "kestrel" }),
  restart: z._default(RestartPolicy, {
    policy: "on-failure",
    max_retries: 10,
    backoff: { initial_ms: 500, max_ms: 30_000, multiplier: 2 },
  }),
  actions: z._default(
    z.record(z.string().check(z.regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "bad action name")), Action),
    {},
  ),
  health_check: z.optional(HealthCheck),
  network: z.optional(z.strictObject({
    mode: z._default(z.literal("bridged"), "bridged"),
    // The VM's network policy unless the create request says otherwise (see network_policy.ts).
    egress: NetworkPolicyFields.shape.egress,
    allow_egress: NetworkPolicyFields.shape.allow_egress,
    allow_host_ports: NetworkPolicyFields.shape.allow_host_ports,
  })),
  devices: z.optional(z.strictObject({
    pci_passthrough: z._default(z.array(z.string()), []),
    allowlist: z._default(z.array(z.string()), []),
  })),
  openapi: z.optional(z.string()),
  labels: z._default(z.record(z.string(), z.string()), {}),
  signature: z.optional(Signature),
}).check(z.refine((m) => m.initramfs !== undefined || m.rootfs !== undefined, {
  message: "a manifest needs an initramfs or a rootfs artifact",
  path: ["initramfs"],
}));
/** A parsed manifest (defaults applied). */
export type Manifest = z.infer<typeof Manifest>;
/** A manifest as written (defaults optional). */
export type ManifestInput = z.input<typeof Manifest>;

/** Every artifact a manifest names, with a stable role (`initramfs`, `rootfs`, `disk:<name>`). */
export interface ManifestArtifact {
  role: string;
  url: string;
  checksum: string;
}

/**
 * Lists a manifest's artifacts in boot order.
 *
 * @example
 * ```ts
 * import { Manifest, manifestArtifacts } from "./manifest.ts";
 * const m = Manifest.parse({
 *   name: "web", version: "1",
 *   initramfs: { url: "/srv/web.cpio.gz", checksum: "sha256:" + "0".repeat(64) },
 *   resources: { cpu_cores: 1, memory_mb: 256 },
 *   workload: { entrypoint: ["/bin/httpd"], base_url: "http://127.0.0.1:80" },
 * });
 * console.assert(manifestArtifacts(m)[0]?.role === "initramfs");
 * ```
 */
export function manifestArtifacts(manifest: Manifest): ManifestArtifact[] {
  const out: ManifestArtifact[] = [];
  if (manifest.initramfs) out.push({ role: "initramfs", ...manifest.initramfs });
  if (manifest.rootfs) {
    out.push({ role: "rootfs", url: manifest.rootfs.url, checksum: manifest.rootfs.checksum });
  }
  for (const d of manifest.disks) {
    out.push({ role: `disk:${d.name}`, url: d.source, checksum: d.checksum });
  }
  return out;
}

/**
 * The manifest's canonical bytes for signing: the manifest as written, without `signature`,
 * serialised as JSON with object keys sorted (code-point order) at every level and no
 * whitespace. Numbers and strings use JSON.stringify's forms (those of RFC 8785 for the
 * values a manifest holds).
 *
 * @example
 * ```ts
 * import { canonicalManifest } from "./manifest.ts";
 * const a = canonicalManifest({ b: 1, a: { d: [1, 2], c: "x" } });
 * console.assert(new TextDecoder().decode(a) === '{"a":{"c":"x","d":[1,2]},"b":1}');
 * ```
 */
export function canonicalManifest(manifest: Record<string, unknown>): Uint8Array {
  const { signature: _signature, ...rest } = manifest;
  return new TextEncoder().encode(canonicalJson(rest));
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new TypeError("a manifest cannot hold NaN or Infinity");
  }
  return JSON.stringify(value);
}
