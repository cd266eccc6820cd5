/**
 * `volar setup`: prepares this host for volantd once, idempotently — the network namespace
 * (when used), the bridge with the gateway address, IPv4 forwarding and the NAT
 * (`prepareHostNetwork`), the group `volant` (volantd gives it its socket, mode 0660, so its
 * members need not be root), the directories, the config file (only the network section and the
 * flags given change; other keys and comments stay) and the systemd unit, enabled when
 * systemd runs here. Prints one line per change, or `nothing to change`; `--dry-run` prints
 * what it would change and changes nothing. Unlike the other commands it does not talk to
 * volantd.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { VolantError } from "../../schema/mod.ts";
import {
  cidrContains,
  definePool,
  formatIpv4,
  getLink,
  netnsExists,
  parseCidr,
  parseIpv4,
  prepareHostNetwork,
  validateHostNetwork,
  withNetns,
} from "../../net/mod.ts";
import { UsageError } from "../errors.ts";
import type { Io } from "../io.ts";
import { globalFlags, printJson } from "./_context.ts";
import {
  type ConfigEdits,
  type DirKey,
  holds,
  readConfigFile,
  renderConfig,
  renderUnit,
  writeFileAtomic,
} from "./_setup_files.ts";

/** Where volantd reads its config unless told otherwise. */
export const DEFAULT_CONFIG_FILE = "/etc/volant/config.yaml";
/** Where the systemd unit goes by default. */
export const DEFAULT_SERVICE_FILE = "/etc/systemd/system/volantd.service";
/** The volantd launcher `./volant up` installs. */
export const DEFAULT_VOLANTD = "/usr/local/bin/volantd";

/** `volar setup`'s flags as commander parses them (absent: not given). */
export interface SetupFlags {
  bridge?: string;
  subnet?: string;
  gateway?: string;
  nat?: boolean;
  netns?: string;
  config?: string;
  stateDir?: string;
  runtimeDir?: string;
  logDir?: string;
  serviceFile?: string;
  volantd?: string;
  group?: string;
  dryRun?: boolean;
}

/** What `volar setup` needs from the host beyond files and the network (fakeable in tests). */
export interface SetupSystem {
  /** The effective user id. */
  uid(): number;
  /** Whether systemd is the running init (`/run/systemd/system` exists). */
  systemdRunning(): boolean;
  /** Directories systemd loads units from; the unit is enabled only when written to one. */
  unitDirs: readonly string[];
  /** Runs `systemctl args…`. */
  systemctl(args: string[]): Promise<{ ok: boolean; output: string }>;
  /** Whether the group exists (`getent group <name>`). */
  groupExists(name: string): Promise<boolean>;
  /** Creates a system group (`groupadd --system <name>`). */
  addGroup(name: string): Promise<{ ok: boolean; output: string }>;
}

/** What `volar setup --json` prints. */
export interface SetupReport {
  /** One line per change made (or, with `dry_run`, that would be made). */
  changes: string[];
  /** Advice that is not a change (how to start volantd, …). */
  notes: string[];
  /** Whether this was a dry run. */
  dry_run: boolean;
}

const UNIT_DIRS = [
  "/etc/systemd/system",
  "/run/systemd/system",
  "/usr/local/lib/systemd/system",
  "/usr/lib/systemd/system",
  "/lib/systemd/system",
];

/**
 * The real host: `Deno.uid()`, `/run/systemd/system`, the `systemctl` binary.
 *
 * @example
 * ```ts
 * import { hostSystem } from "./setup.ts";
 * console.assert(hostSystem().unitDirs.includes("/etc/systemd/system"));
 * ```
 */
export function hostSystem(): SetupSystem {
  const command = async (cmd: string, args: string[]) => {
    try {
      const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
      const text = new TextDecoder();
      return {
        ok: out.success,
        output: (text.decode(out.stdout) + text.decode(out.stderr)).trim(),
      };
    } catch (err) {
      return { ok: false, output: err instanceof Error ? err.message : String(err) };
    }
  };
  return {
    uid: () => Deno.uid() ?? -1,
    systemdRunning: () => {
      try {
        return Deno.statSync("/run/systemd/system").isDirectory;
      } catch {
        return false;
      }
    },
    unitDirs: UNIT_DIRS,
    systemctl: (args) => command("systemctl", args),
    groupExists: async (name) => (await command("getent", ["group", name])).ok,
    addGroup: (name) => command("groupadd", ["--system", name]),
  };
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

function pathFlag(flag: string, value: string | undefined, fallback: string, unit = false): string {
  const text = value ?? fallback;
  if (text === "" || CONTROL.test(text)) {
    throw new UsageError(`${flag}: expected a path, got ${JSON.stringify(text)}`);
  }
  // The unit's lines take paths unquoted; systemd would split on spaces and expand '%'.
  if (unit && /[\s"'\\%]/.test(text)) {
    throw new UsageError(
      `${flag}: ${JSON.stringify(text)} cannot go into a systemd unit (no spaces, quotes, ` +
        "backslashes or '%')",
    );
  }
  return resolve(text);
}

/** The gateway to use when only --subnet is given: the old one if inside, else the first host. */
function gatewayFor(subnet: string, current: string): string {
  try {
    const cidr = parseCidr(subnet);
    return cidrContains(cidr, parseIpv4(current)) ? current : formatIpv4(cidr.network + 1);
  } catch {
    return current; // the subnet is invalid: validation reports it
  }
}

const FIELD_FLAGS: Record<string, string> = {
  "network.bridge": "--bridge",
  "network.subnet": "--subnet",
  "network.gateway": "--gateway",
  "network.namespace": "--netns",
};

/** Re-words a validation error to name the flag, the variable or the config file it came from. */
function usageFrom(err: unknown, given: Record<string, string | undefined>, file: string): never {
  if (!(err instanceof VolantError) || err.code !== "invalid_argument") throw err;
  const field = String(err.details?.field ?? "");
  const source = given[field];
  let message = err.message.replace(/network\.rangeStart/g, "network.range_start")
    .replace(/rangeEnd/g, "range_end");
  if (source !== undefined) message = message.replace(field, source);
  else message = `${file}: ${message}`;
  throw new UsageError(message, {
    command: "volar setup",
    details: { field: field.replace("rangeStart", "range_start").replace("rangeEnd", "range_end") },
  });
}

async function ip(args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new VolantError("network_error", `ip ${args.join(" ")} failed: ${stderr}`, { args });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * Does everything `volar setup` does and returns its report (the command prints it).
 *
 * @example
 * ```ts ignore
 * import { hostSystem, runSetup } from "./setup.ts";
 * const report = await runSetup({ netns: "volant", dryRun: true }, io, hostSystem());
 * for (const line of report.changes) console.log(line);
 * ```
 */
export async function runSetup(
  flags: SetupFlags,
  io: Io,
  system: SetupSystem = hostSystem(),
): Promise<SetupReport> {
  const dryRun = flags.dryRun ?? false;
  if (flags.group !== undefined && !GROUP_NAME.test(flags.group)) {
    throw new UsageError(
      `--group: expected a group name (lower-case letters, digits, '_', '-'), got '${flags.group}'`,
    );
  }
  const configPath = pathFlag("--config", flags.config, DEFAULT_CONFIG_FILE, true);
  const serviceFile = pathFlag("--service-file", flags.serviceFile, DEFAULT_SERVICE_FILE);
  const volantd = pathFlag("--volantd", flags.volantd, DEFAULT_VOLANTD, true);
  const existing = await readConfigFile(configPath);
  const current = existing.config;
  const dirs = {
    state_dir: pathFlag("--state-dir", flags.stateDir, current.state_dir),
    runtime_dir: pathFlag("--runtime-dir", flags.runtimeDir, current.runtime_dir),
    log_dir: pathFlag("--log-dir", flags.logDir, current.log_dir, true),
  };

  const envNetns = io.env("VOLANT_NETNS") || undefined;
  const netns = flags.netns ?? envNetns ?? current.network.namespace ?? undefined;
  const network = {
    bridge: flags.bridge ?? current.network.bridge,
    subnet: flags.subnet ?? current.network.subnet,
    gateway: flags.gateway ??
      (flags.subnet === undefined
        ? current.network.gateway
        : gatewayFor(flags.subnet, current.network.gateway)),
    nat: flags.nat ?? current.network.nat,
  };
  const given: Record<string, string | undefined> = {};
  for (const [field, flag] of Object.entries(FIELD_FLAGS)) {
    const key = flag.slice(2) as keyof SetupFlags;
    if (flags[key] !== undefined) given[field] = flag;
  }
  if (flags.netns === undefined && envNetns !== undefined) {
    given["network.namespace"] = "VOLANT_NETNS";
  }
  if (flags.subnet !== undefined && flags.gateway === undefined) {
    given["network.gateway"] = "--subnet";
  }
  try {
    validateHostNetwork({ ...network, netns });
    definePool({
      subnet: network.subnet,
      gateway: network.gateway,
      rangeStart: current.network.range_start ?? undefined,
      rangeEnd: current.network.range_end ?? undefined,
    }, "network");
  } catch (err) {
    usageFrom(err, given, configPath);
  }

  if (!dryRun && system.uid() !== 0) {
    throw new VolantError(
      "invalid_state",
      "volar setup must run as root: it creates the bridge, changes sysctls and firewall rules " +
        "and writes system files (run it with sudo; --dry-run shows the changes without root)",
    );
  }

  const changes: string[] = [];
  const notes: string[] = [];
  const change = (done: string, planned: string) =>
    changes.push(dryRun ? `would ${planned}` : done);

  if (netns !== undefined) {
    if (!netnsExists(netns)) {
      change(`created network namespace ${netns}`, `create network namespace ${netns}`);
      if (!dryRun) {
        await ip(["netns", "add", netns]);
        await ip(["-n", netns, "link", "set", "lo", "up"]);
      }
    } else if (!withNetns(netns, () => getLink("lo")?.up ?? false)) {
      change(`set lo up in ${netns}`, `set lo up in ${netns}`);
      if (!dryRun) await ip(["-n", netns, "link", "set", "lo", "up"]);
    }
  }
  changes.push(...(await prepareHostNetwork({ ...network, netns, dryRun })).changes);

  const group = flags.group ?? current.api.socket_group;
  if (group !== null) await socketGroup(system, group, { dryRun, change, notes });

  for (const dir of [dirs.state_dir, dirs.runtime_dir, dirs.log_dir]) {
    if (await exists(dir)) continue;
    change(`created directory ${dir}`, `create directory ${dir}`);
    if (!dryRun) await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  }

  const edits: ConfigEdits = {
    dirs: {},
    network: { ...network, ...(netns === undefined ? {} : { namespace: netns }) },
  };
  const dirFlags: [DirKey, string | undefined][] = [
    ["state_dir", flags.stateDir],
    ["runtime_dir", flags.runtimeDir],
    ["log_dir", flags.logDir],
  ];
  for (const [key, flag] of dirFlags) if (flag !== undefined) edits.dirs[key] = dirs[key];
  if (flags.group !== undefined) edits.socketGroup = flags.group;
  const config = renderConfig(existing.text, configPath, edits);
  if (config !== existing.text) {
    change(`wrote ${configPath}`, `write ${configPath}`);
    if (!dryRun) await writeFileAtomic(configPath, config);
  }

  const logFile = `${dirs.log_dir}/volantd.log`;
  const unit = renderUnit({
    volantd,
    config: configPath,
    logFile,
    netns,
    writable: [dirs.state_dir, dirs.runtime_dir, dirs.log_dir],
  });
  const unitChanged = !(await holds(serviceFile, unit));
  if (unitChanged) {
    change(`wrote ${serviceFile}`, `write ${serviceFile}`);
    if (!dryRun) await writeFileAtomic(serviceFile, unit);
  }
  await systemd(system, { serviceFile, unitChanged, dryRun, change, notes });

  if (!(await exists(volantd))) {
    notes.push(`${volantd} does not exist yet: install it (./volant build) or pass --volantd`);
  }
  if (!system.systemdRunning() || !system.unitDirs.includes(dirname(serviceFile))) {
    const env = netns === undefined ? "" : `VOLANT_NETNS=${netns} `;
    notes.push(
      `start volantd by hand: ${env}setsid ${volantd} --config ${configPath} ` +
        `>>${logFile} 2>&1 </dev/null &`,
    );
  }
  return { changes, notes, dry_run: dryRun };
}

const GROUP_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/** The group volantd gives its socket to (mode 0660): created when missing. */
async function socketGroup(
  system: SetupSystem,
  group: string,
  step: {
    dryRun: boolean;
    change: (done: string, planned: string) => void;
    notes: string[];
  },
): Promise<void> {
  if (await system.groupExists(group)) return;
  step.change(
    `created group ${group} (its members may use volantd's socket)`,
    `create group ${group} (its members may use volantd's socket)`,
  );
  if (step.dryRun) return;
  const result = await system.addGroup(group);
  if (!result.ok) {
    throw new VolantError(
      "internal",
      `groupadd --system ${group} failed: ${result.output || "no output"}`,
      { group },
    );
  }
  step.notes.push(
    `let operators use volar without root: usermod -aG ${group} <user> (effective at their next ` +
      "login)",
  );
}

async function systemd(
  system: SetupSystem,
  step: {
    serviceFile: string;
    unitChanged: boolean;
    dryRun: boolean;
    change: (done: string, planned: string) => void;
    notes: string[];
  },
): Promise<void> {
  const { serviceFile, dryRun, change, notes } = step;
  if (!system.systemdRunning()) {
    notes.push("systemd is not running here (no /run/systemd/system): the unit was not enabled");
    return;
  }
  if (!system.unitDirs.includes(dirname(serviceFile))) {
    notes.push(`${serviceFile} is not in a systemd unit directory: the unit was not enabled`);
    return;
  }
  const unit = serviceFile.slice(serviceFile.lastIndexOf("/") + 1);
  const run = async (args: string[]) => {
    const result = await system.systemctl(args);
    if (!result.ok) {
      throw new VolantError(
        "internal",
        `systemctl ${args.join(" ")} failed: ${result.output || "no output"}`,
        { args },
      );
    }
  };
  if (step.unitChanged) {
    change("reloaded systemd (systemctl daemon-reload)", "run systemctl daemon-reload");
    if (!dryRun) await run(["daemon-reload"]);
  }
  if (!(await system.systemctl(["is-enabled", "--quiet", unit])).ok) {
    change(`enabled ${unit}`, `enable ${unit}`);
    if (!dryRun) await run(["enable", unit]);
  }
  notes.push(`start volantd with: systemctl start ${unit} (restart it to apply changes)`);
}

/**
 * Adds the `setup` command to `program`.
 *
 * @example
 * ```ts ignore
 * import { Command } from "commander";
 * import { registerSetup } from "./setup.ts";
 * registerSetup(new Command("volar"), io);
 * ```
 */
export function registerSetup(program: Command, io: Io, system?: SetupSystem): void {
  program.command("setup")
    .description("prepare this host for volantd: bridge, NAT, config file, systemd unit (root)")
    .option("--bridge <name>", "bridge the VMs' taps attach to (default vbr0)")
    .option("--subnet <cidr>", "the VMs' IPv4 subnet (default 192.168.127.0/24)")
    .option("--gateway <ip>", "the host's address on the bridge (default: first of the subnet)")
    .option("--nat", "masquerade the VMs' traffic leaving the host (default)")
    .option("--no-nat", "no masquerade (and remove it if present)")
    .option(
      "--netns <name>",
      "keep bridge, taps and VMMs in this network namespace " +
        "(default $VOLANT_NETNS; created if missing)",
    )
    .option("--config <path>", `volantd's config file (default ${DEFAULT_CONFIG_FILE})`)
    .option("--state-dir <path>", "volantd's state directory (default /var/lib/volant)")
    .option("--runtime-dir <path>", "sockets and pid files (default /run/volant)")
    .option("--log-dir <path>", "volantd's and the VMs' logs (default /var/log/volant)")
    .option("--service-file <path>", `the systemd unit (default ${DEFAULT_SERVICE_FILE})`)
    .option("--volantd <path>", `the volantd launcher (default ${DEFAULT_VOLANTD})`)
    .option(
      "--group <name>",
      "the group whose members may use volantd's socket (default volant; created if missing)",
    )
    .option("--dry-run", "print what would change and change nothing")
    .action(async (flags, cmd) => {
      const report = await runSetup(flags, io, system);
      if (globalFlags(cmd).json) return printJson(io, report);
      io.out(
        report.changes.length === 0 ? "nothing to change\n" : report.changes.join("\n") + "\n",
      );
      for (const note of report.notes) io.err(`note: ${note}\n`);
    });
}
