/**
 * The files `volar setup` writes: volantd's config (an existing file's other keys and comments
 * kept, YAML through the `yaml` document API, or JSON for a `.json` path) and the systemd
 * unit, each written atomically and only when its text changes. Internal to the CLI.
 *
 * @module
 */
import { Document, isMap, parseDocument } from "yaml";
import { DaemonConfig, VolantError } from "../../schema/mod.ts";

/** The config file as found: its text (`undefined` when absent) and its validated values. */
export interface ExistingConfig {
  /** The file's text, or `undefined` when there is no file. */
  text: string | undefined;
  /** Its values with the defaults applied. */
  config: DaemonConfig;
}

/** The top-level directory keys `volar setup` can set. */
export type DirKey = "state_dir" | "runtime_dir" | "log_dir";

/** What `volar setup` puts in the config. */
export interface ConfigEdits {
  /** Directory keys given on the command line (written unless equal to an absent default). */
  dirs: Partial<Record<DirKey, string>>;
  /** The network section (always written). */
  network: { bridge: string; subnet: string; gateway: string; nat: boolean; namespace?: string };
  /** `api.socket_group`, when given (written unless equal to an absent default). */
  socketGroup?: string;
}

const HEADER = " volantd configuration, written by `volar setup`; every key has a default";

function isJsonPath(path: string): boolean {
  return path.toLowerCase().endsWith(".json");
}

/**
 * Reads and validates the config file at `path`; a missing file gives the defaults. A file
 * that is not YAML/JSON, or that {@linkcode DaemonConfig} rejects, is an `invalid_argument`
 * error naming the file and the keys.
 *
 * @example
 * ```ts ignore
 * import { readConfigFile } from "./_setup_files.ts";
 * const { config } = await readConfigFile("/etc/volant/config.yaml");
 * console.log(config.network.bridge);
 * ```
 */
export async function readConfigFile(path: string): Promise<ExistingConfig> {
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new VolantError("invalid_argument", `Cannot read the config file ${path}: ${err}`, {
        path,
      });
    }
  }
  const doc = parseDocument(text ?? "");
  if (doc.errors.length > 0) {
    throw new VolantError(
      "invalid_argument",
      `The config file ${path} is not valid YAML (${doc.errors[0]!.message.split("\n")[0]}); ` +
        "fix it or move it away",
      { path },
    );
  }
  const parsed = DaemonConfig.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) =>
      `${i.path.join(".") || "(top level)"}: ${i.message}`
    );
    throw new VolantError(
      "invalid_argument",
      `The config file ${path} is invalid: ${issues.join("; ")}; fix it or move it away`,
      { path, issues },
    );
  }
  return { text, config: parsed.data };
}

/**
 * The config file's new text: the existing document with the network section and the given
 * directory keys set (comments and other keys kept), or a fresh document.
 *
 * @example
 * ```ts
 * import { renderConfig } from "./_setup_files.ts";
 * const text = renderConfig(undefined, "/etc/volant/config.yaml", {
 *   dirs: {},
 *   network: { bridge: "vbr0", subnet: "10.9.0.0/24", gateway: "10.9.0.1", nat: true },
 * });
 * console.assert(text.includes("subnet: 10.9.0.0/24"));
 * ```
 */
export function renderConfig(
  existing: string | undefined,
  path: string,
  edits: ConfigEdits,
): string {
  const defaults = DaemonConfig.parse({});
  const network: Record<string, unknown> = { ...edits.network };
  if (edits.network.namespace === undefined) delete network.namespace;
  if (isJsonPath(path)) {
    const raw = existing === undefined || existing.trim() === "" ? {} : JSON.parse(existing);
    for (const [key, value] of Object.entries(edits.dirs)) {
      if (value !== defaults[key as DirKey] || key in raw) raw[key] = value;
    }
    raw.network = { ...raw.network, ...network };
    if (
      edits.socketGroup !== undefined &&
      (edits.socketGroup !== defaults.api.socket_group || raw.api?.socket_group !== undefined)
    ) {
      raw.api = { ...raw.api, socket_group: edits.socketGroup };
    }
    return JSON.stringify(raw, null, 2) + "\n";
  }
  const doc = existing === undefined || existing.trim() === ""
    ? new Document({})
    : parseDocument(existing);
  if (!isMap(doc.contents)) doc.contents = doc.createNode({});
  if (existing === undefined || existing.trim() === "") doc.commentBefore = HEADER;
  for (const [key, value] of Object.entries(edits.dirs)) {
    if (value !== defaults[key as DirKey] || doc.hasIn([key])) doc.setIn([key], value);
  }
  for (const [key, value] of Object.entries(network)) doc.setIn(["network", key], value);
  if (
    edits.socketGroup !== undefined &&
    (edits.socketGroup !== defaults.api.socket_group || doc.hasIn(["api", "socket_group"]))
  ) {
    doc.setIn(["api", "socket_group"], edits.socketGroup);
  }
  return doc.toString({ lineWidth: 0 });
}

/** What the systemd unit runs. */
export interface UnitSpec {
  /** The volantd launcher. */
  volantd: string;
  /** The config file it gets with `--config`. */
  config: string;
  /** Where stdout and stderr are appended (`<log-dir>/volantd.log`). */
  logFile: string;
  /** `VOLANT_NETNS` for the daemon, when it runs in a namespace. */
  netns?: string;
  /** The directories volantd writes (state, runtime, logs); default the standard ones. */
  writable?: readonly string[];
}

/** What volantd writes besides its own three: named network namespaces (when present). */
const SYSTEM_WRITABLE = ["-/run/netns"];

/**
 * The sandbox the unit puts volantd in. volantd itself must stay root with the capabilities its
 * job takes — netlink, taps and nftables (NET_ADMIN), namespaces, bind mounts and VMM jails
 * (SYS_ADMIN, SYS_CHROOT, SETUID/SETGID), image unpack (MKNOD, CHOWN, FOWNER, FSETID), adopting
 * and ending VMMs of other uids (KILL, SYS_PTRACE for /proc/<pid>/exe) — and it forwards guest
 * traffic, writes net.ipv4.ip_forward and spawns VMMs that JIT (Deno, QEMU TCG), so
 * PrivateNetwork, ProtectKernelTunables, MemoryDenyWriteExecute and RestrictSUIDSGID (image
 * setuid files) stay off. Everything else is closed: `systemd-analyze security` rates it 5.0
 * (was 9.6), checked by a test.
 */
export const UNIT_SANDBOX: readonly string[] = [
  "UMask=0027",
  "NoNewPrivileges=yes",
  "ProtectSystem=strict",
  "ProtectHome=read-only",
  "PrivateTmp=yes",
  "ProtectClock=yes",
  "ProtectHostname=yes",
  "ProtectKernelLogs=yes",
  "ProtectKernelModules=yes",
  "RestrictRealtime=yes",
  "LockPersonality=yes",
  "SystemCallArchitectures=native",
  "SystemCallFilter=~@clock @cpu-emulation @debug @obsolete @raw-io @reboot @swap @module",
  "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
  "RestrictNamespaces=net mnt",
  "KeyringMode=private",
  "RemoveIPC=yes",
  "DevicePolicy=closed",
  "DeviceAllow=/dev/kvm rw",
  "DeviceAllow=/dev/net/tun rw",
  "DeviceAllow=/dev/null rw",
  "DeviceAllow=/dev/zero rw",
  "DeviceAllow=/dev/urandom r",
  "DeviceAllow=/dev/random r",
  "CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYS_ADMIN CAP_SETUID CAP_SETGID CAP_SETPCAP " +
  "CAP_CHOWN CAP_FOWNER CAP_FSETID CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_KILL CAP_MKNOD " +
  "CAP_SYS_CHROOT CAP_SYS_RESOURCE CAP_SYS_PTRACE",
];

/**
 * The volantd systemd unit: restarted always, `KillMode=process` so the VMMs (its children)
 * outlive a daemon restart and are adopted again, output appended to the log file.
 *
 * @example
 * ```ts
 * import { renderUnit } from "./_setup_files.ts";
 * const unit = renderUnit({
 *   volantd: "/usr/local/bin/volantd",
 *   config: "/etc/volant/config.yaml",
 *   logFile: "/var/log/volant/volantd.log",
 * });
 * console.assert(unit.includes("KillMode=process"));
 * ```
 */
export function renderUnit(spec: UnitSpec): string {
  return [
    "# Written by `volar setup`.",
    "[Unit]",
    "Description=Volant microVM control plane (volantd)",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    ...(spec.netns === undefined ? [] : [`Environment=VOLANT_NETNS=${spec.netns}`]),
    `ExecStart=${spec.volantd} --config ${spec.config}`,
    "Restart=always",
    "RestartSec=2",
    "KillMode=process",
    `StandardOutput=append:${spec.logFile}`,
    `StandardError=append:${spec.logFile}`,
    ...UNIT_SANDBOX,
    `ReadWritePaths=${
      [
        ...(spec.writable ?? ["/var/lib/volant", "/run/volant", "/var/log/volant"]),
        ...SYSTEM_WRITABLE,
      ]
        .join(" ")
    }`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/**
 * Writes `text` to `path` through a temporary file in the same directory and a rename, so a
 * reader never sees half a file; creates the directory. Returns whether the file changed
 * (`false`, writing nothing, when it already holds `text`).
 *
 * @example
 * ```ts ignore
 * import { writeFileAtomic } from "./_setup_files.ts";
 * await writeFileAtomic("/etc/volant/config.yaml", "network:\n  nat: true\n");
 * ```
 */
export async function writeFileAtomic(path: string, text: string, mode = 0o644): Promise<boolean> {
  try {
    if (await Deno.readTextFile(path) === text) return false;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(tmp, text, { mode });
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  return true;
}

/** Whether `path` holds exactly `text` (a missing file does not). */
export async function holds(path: string, text: string): Promise<boolean> {
  try {
    return await Deno.readTextFile(path) === text;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
