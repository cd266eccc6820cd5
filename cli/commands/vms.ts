/**
 * `volar vms …`: list, get, create, start, stop, restart, delete (alias `rm`), policy. Flags are
 * validated locally with the shared schemas before any request; create/start/restart wait
 * for `running` unless `--no-wait`.
 *
 * @module
 */
import { type Command, type CommandUnknownOpts, InvalidArgumentError, Option } from "commander";
import {
  KernelName,
  LIMITS,
  NetworkPolicy,
  type PortMapping,
  VmCreateRequest,
  VmName,
  type VmRecord,
  VmRestartPolicy,
  VolantError,
} from "../../schema/mod.ts";
import { absoluteImageSource, parseImageSource } from "../../images/reference.ts";
import type { VolantClient } from "../client.ts";
import { UsageError } from "../errors.ts";
import { formatKeyValues, parseDuration } from "../format.ts";
import { colorEnabled, type Io } from "../io.ts";
import { startProgress } from "../progress.ts";
import { pullImage } from "./images.ts";
import { globalFlags, printJson, withClient } from "./_context.ts";
import { bootAndWait, DEFAULT_WAIT_MS } from "./_wait.ts";
import { timelineView, vmDetails, vmSummary, vmTable } from "./_vm_view.ts";
import {
  collectEgressRules,
  collectHostPorts,
  collectPeers,
  parseEgressMode,
  POLICY_OPTIONS,
  policyFields,
  type PolicyFlags,
  policyPairs,
} from "./_policy_flags.ts";
import { GetImage, SetVmNetworkPolicy } from "../../schema/operations/mod.ts";

const NAME_HELP = "the VM's name: 1-63 lowercase letters, digits or '-' (e.g. web)";

/**
 * Parses a VM name argument with {@linkcode VmName}; commander reports a rejection as a
 * usage error naming the argument.
 *
 * @example
 * ```ts
 * import { parseName } from "./vms.ts";
 * console.assert(parseName("web-1") === "web-1");
 * ```
 */
export function parseName(value: string): string {
  const result = VmName.safeParse(value);
  if (!result.success) throw new InvalidArgumentError(result.error.issues[0]!.message);
  return result.data;
}

/**
 * Parses a whole-number flag value (ranges are checked by the schema).
 *
 * @example
 * ```ts
 * import { parseInteger } from "./vms.ts";
 * console.assert(parseInteger("512") === 512);
 * ```
 */
export function parseInteger(value: string): number {
  if (!/^[0-9]+$/.test(value.trim())) throw new InvalidArgumentError("expected a whole number.");
  return Number(value);
}

/**
 * Parses a `--timeout` value (`90s`, `2m`, `500ms`, or seconds) into milliseconds.
 *
 * @example
 * ```ts
 * import { parseTimeout } from "./vms.ts";
 * console.assert(parseTimeout("2m") === 120_000);
 * ```
 */
export function parseTimeout(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) {
    throw new InvalidArgumentError("expected a duration such as 90s, 2m or 500ms.");
  }
  return ms;
}

const PORT = /^[0-9]{1,5}$/;

function portNumber(text: string, which: string, value: string): number {
  const n = Number(text);
  if (!PORT.test(text) || n < 1 || n > 65535) {
    throw new InvalidArgumentError(
      `the ${which} port in '${value}' must be a number from 1 to 65535 ` +
        "(expected HOST:GUEST or HOST:GUEST/udp, e.g. 8080:80)",
    );
  }
  return n;
}

/**
 * Parses one `--publish` value, `HOST:GUEST` or `HOST:GUEST/tcp|udp` (default tcp).
 *
 * @example
 * ```ts
 * import { parsePublish } from "./vms.ts";
 * const p = parsePublish("8080:80");
 * console.assert(p.host_port === 8080 && p.guest_port === 80 && p.protocol === "tcp");
 * console.assert(parsePublish("5353:53/udp").protocol === "udp");
 * ```
 */
export function parsePublish(value: string): PortMapping {
  const m = /^([^:/]*):([^:/]*)(?:\/(.*))?$/.exec(value.trim());
  if (!m) {
    throw new InvalidArgumentError(
      `expected HOST:GUEST or HOST:GUEST/udp, e.g. 8080:80 (host port 8080 to the VM's port 80)`,
    );
  }
  const protocol = m[3] ?? "tcp";
  if (protocol !== "tcp" && protocol !== "udp") {
    throw new InvalidArgumentError(
      `protocol '${protocol}' in '${value}' is not supported; use tcp or udp`,
    );
  }
  return {
    host_port: portNumber(m[1]!, "host", value),
    guest_port: portNumber(m[2]!, "guest", value),
    protocol,
  };
}

function collectPublish(value: string, previous: PortMapping[] = []): PortMapping[] {
  return [...previous, parsePublish(value)];
}

/** Which flag sets each field of {@linkcode VmCreateRequest}. */
const CREATE_FLAGS: Record<string, string> = {
  name: "<name>",
  plugin: "--plugin",
  cpu_cores: "--cpu",
  memory_mb: "--memory",
  kernel: "--kernel",
  kernel_cmdline: "--kernel-cmdline",
  ip: "--ip",
  publish: "--publish",
  image: "--image",
  insecure_registry: "--insecure-registry",
  env: "--env",
  entrypoint: "--entrypoint",
  cmd: "--cmd",
  network_policy: "--egress/--allow-*",
  restart: "--restart",
  from_snapshot: "--from-snapshot",
  replicas: "<replicas>/--replicas",
  max_unavailable: "--max-unavailable",
};

/** Which flag sets each field of the network policy. */
const POLICY_FLAGS: Record<string, string> = {
  egress: "--egress",
  allow_egress: "--allow-egress",
  allow_from: "--allow-from",
  allow_host_ports: "--allow-host-port",
};

/** The create flags as commander parsed them. */
export interface CreateFlags extends PolicyFlags {
  plugin?: string;
  cpu?: number;
  memory?: number;
  kernel?: string;
  kernelCmdline?: string;
  ip?: string;
  publish?: PortMapping[];
  image?: string;
  insecureRegistry?: boolean;
  env?: string[];
  entrypoint?: string[];
  cmd?: string[];
  restart?: string;
  fromSnapshot?: string;
}

/**
 * A process given on the command line: a JSON array (`'["/bin/sh","-c","id"]'`) or words
 * separated by spaces (`"nginx -g daemon"`).
 *
 * @example
 * ```ts
 * import { parseArgv } from "./vms.ts";
 * console.assert(parseArgv('["sh","-c","echo hi"]').length === 3);
 * console.assert(parseArgv("httpd -f").join("|") === "httpd|-f");
 * ```
 */
export function parseArgv(value: string): string[] {
  const text = value.trim();
  if (text.startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new InvalidArgumentError(`not a JSON array of strings: ${(err as Error).message}`);
    }
    if (!Array.isArray(parsed) || !parsed.every((w) => typeof w === "string")) {
      throw new InvalidArgumentError('expected a JSON array of strings, e.g. \'["sh","-c"]\'');
    }
    return parsed;
  }
  const words = text.split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) throw new InvalidArgumentError("expected a program and its arguments");
  return words;
}

function collectEnv(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * Builds the create request from the flags and validates it with {@linkcode VmCreateRequest};
 * a rejected value is a {@linkcode UsageError} naming its flag.
 *
 * @example
 * ```ts
 * import { createRequest } from "./vms.ts";
 * console.assert(createRequest("web", { memory: 512 }).memory_mb === 512);
 * try {
 *   createRequest("web", { memory: 64 });
 * } catch (err) {
 *   console.assert(String(err).includes("--memory"));
 * }
 * ```
 */
export function createRequest(name: string, flags: CreateFlags): VmCreateRequest {
  const input = {
    name,
    ...templateInput(flags),
    ...(flags.ip !== undefined ? { ip: flags.ip } : {}),
    ...(flags.publish !== undefined ? { publish: flags.publish } : {}),
    ...(flags.restart !== undefined ? { restart: flags.restart } : {}),
    ...(flags.fromSnapshot !== undefined ? { from_snapshot: flags.fromSnapshot } : {}),
  };
  return parseWithFlags(VmCreateRequest, input, flags, "volar vms create");
}

/**
 * The fields of a VM definition the flags give (those a deployment's template shares with a
 * create: not the name, address, host ports or restart policy).
 */
export function templateInput(flags: CreateFlags): Record<string, unknown> {
  return {
    ...(flags.plugin !== undefined ? { plugin: flags.plugin } : {}),
    ...(flags.cpu !== undefined ? { cpu_cores: flags.cpu } : {}),
    ...(flags.memory !== undefined ? { memory_mb: flags.memory } : {}),
    ...(flags.kernel !== undefined ? { kernel: flags.kernel } : {}),
    ...(flags.kernelCmdline !== undefined ? { kernel_cmdline: flags.kernelCmdline } : {}),
    ...(flags.image !== undefined ? { image: flags.image } : {}),
    ...(flags.insecureRegistry ? { insecure_registry: true } : {}),
    ...(flags.env !== undefined ? { env: flags.env } : {}),
    ...(flags.entrypoint !== undefined ? { entrypoint: flags.entrypoint } : {}),
    ...(flags.cmd !== undefined ? { cmd: flags.cmd } : {}),
    ...(Object.keys(policyFields(flags)).length > 0 ? { network_policy: policyFields(flags) } : {}),
  };
}

/**
 * Validates `input` (built from `flags`) with `schema`; a rejected value is a
 * {@linkcode UsageError} naming its flag.
 */
export function parseWithFlags<T>(
  schema: {
    safeParse(
      input: unknown,
    ): { success: true; data: T } | {
      success: false;
      error: { issues: { path: PropertyKey[]; message: string }[] };
    };
  },
  input: Record<string, unknown>,
  flags: CreateFlags,
  command: string,
): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    const field = String(issue.path[0] ?? "");
    const policyField = field === "network_policy" ? String(issue.path[1] ?? "") : undefined;
    const flag = (policyField === undefined ? undefined : POLICY_FLAGS[policyField]) ??
      CREATE_FLAGS[field] ?? field;
    const value = (field === "publish" || field === "env") && typeof issue.path[1] === "number"
      ? (field === "publish" ? flags.publish : flags.env)?.[issue.path[1]]
      : input[field];
    return { flag, field, value, message: issue.message };
  });
  const text = issues.map((i) => `invalid ${i.flag} ${JSON.stringify(i.value)}: ${i.message}`);
  throw new UsageError(text.join("; "), { command, details: { issues } });
}

/**
 * Adds the flags of a VM definition shared by `vms create` and `deployments create|update`:
 * plugin or image (with its process and registry), resources, kernel, network policy.
 */
// deno-lint-ignore no-explicit-any
export function addTemplateOptions<C extends CommandUnknownOpts>(command: C): any {
  return command
    .option("--plugin <name>", "an installed plugin: the workload the VM runs")
    .option(
      "--cpu <count>",
      `vCPUs, ${LIMITS.cpuMin}-${LIMITS.cpuMax} (default: the plugin's, else 1)`,
      parseInteger,
    )
    .option(
      "--memory <MiB>",
      `memory in MiB, ${LIMITS.memoryMinMb}-${LIMITS.memoryMaxMb} (default: the plugin's, else 256)`,
      parseInteger,
    )
    .addOption(
      new Option("--kernel <name>", "guest kernel (default: the daemon's)")
        .choices(KernelName.options),
    )
    .option("--kernel-cmdline <words>", "extra kernel command-line words")
    .option(
      "--image <ref>",
      "an OCI image to run: a registry reference (e.g. 127.0.0.1:5000/demo/nginx:1.0), " +
        "oci:<dir>[:tag] or docker-archive:<file>",
      (value: string) => absoluteImageSource(value, Deno.cwd()),
    )
    .option("--insecure-registry", "pull the image over plain HTTP")
    .option("--env <KEY=value>", "set an environment variable of the image's process", collectEnv)
    .option(
      "--entrypoint <program>",
      "replace the image's Entrypoint (words or a JSON array; drops its Cmd)",
      parseArgv,
    )
    .option("--cmd <args>", "replace the image's Cmd (words or a JSON array)", parseArgv)
    .addOption(new Option(...POLICY_OPTIONS.egress).argParser(parseEgressMode))
    .option(...POLICY_OPTIONS.allowEgress, collectEgressRules)
    .option(...POLICY_OPTIONS.allowFrom, collectPeers)
    .option(...POLICY_OPTIONS.allowHostPort, collectHostPorts);
}

/**
 * Pulls `image` when it is a registry reference not cached yet (as docker run does), with a
 * progress bar per layer; a local source is imported. The create then finds it.
 */
export async function ensureImage(
  client: VolantClient,
  io: Io,
  image: string,
  insecure: boolean,
  json: boolean,
): Promise<void> {
  const cached = parseImageSource(image).kind === "registry" &&
    await client.call(GetImage, { image }).then(() => true, (err) => {
      if (err instanceof VolantError && err.code === "not_found") return false;
      throw err;
    });
  if (!cached) await pullImage(client, io, image, { insecure, json });
}

interface WaitFlags {
  wait: boolean;
  timeout?: number;
}

const NO_WAIT_HELP = "return at state starting instead of waiting for running";
const TIMEOUT_HELP = `how long to wait for running, e.g. 90s or 2m (default ${
  DEFAULT_WAIT_MS / 1000
}s)`;

async function lifecycle(
  io: Io,
  cmd: CommandUnknownOpts,
  name: string,
  verb: string,
  flags: WaitFlags,
  send: (client: VolantClient) => Promise<VmRecord>,
): Promise<void> {
  const globals = globalFlags(cmd);
  const vm = await withClient(globals, io, (client) =>
    bootAndWait(io, client, () => send(client), {
      label: `${verb} ${name}`,
      wait: flags.wait,
      timeoutMs: flags.timeout ?? DEFAULT_WAIT_MS,
      quiet: globals.json,
    }));
  if (globals.json) printJson(io, vm);
  else io.out(vmSummary(vm, colorEnabled(io)));
}

async function simple(
  io: Io,
  cmd: CommandUnknownOpts,
  label: string,
  word: string | undefined,
  send: (client: VolantClient) => Promise<VmRecord>,
): Promise<void> {
  const globals = globalFlags(cmd);
  const vm = await withClient(globals, io, async (client) => {
    const progress = startProgress(io, label, { quiet: globals.json && !io.errIsTerminal });
    try {
      return await send(client);
    } finally {
      progress.stop();
    }
  });
  if (globals.json) printJson(io, vm);
  else io.out(vmSummary(vm, colorEnabled(io), word));
}

/**
 * Adds the `vms` command group to `program`.
 *
 * @example
 * ```ts ignore
 * import { Command } from "commander";
 * import { registerVms } from "./vms.ts";
 * registerVms(new Command("volar"), io);
 * ```
 */
export function registerVms(program: Command, io: Io): void {
  const vms = program.command("vms").description("manage microVMs");

  vms.command("list").alias("ls").description("list VMs").action(async (_opts, cmd) => {
    const globals = globalFlags(cmd);
    const list = await withClient(globals, io, (client) => client.listVms());
    if (globals.json) return printJson(io, list);
    if (list.vms.length === 0) {
      io.out("No VMs yet. Create one: volar vms create <name>\n");
      return;
    }
    io.out(vmTable(list.vms, io.now(), colorEnabled(io)));
  });

  vms.command("get").description("show one VM")
    .argument("<name>", NAME_HELP, parseName)
    .option("--timeline", "show where its last boot's time went, phase by phase")
    .action(async (name, opts, cmd) => {
      const globals = globalFlags(cmd);
      const vm = await withClient(globals, io, (client) => client.getVm(name));
      if (opts.timeline) {
        if (globals.json) {
          printJson(io, { name: vm.name, boot_ms: vm.boot_ms, timeline: vm.timeline });
        } else io.out(timelineView(vm));
      } else if (globals.json) printJson(io, vm);
      else io.out(vmDetails(vm, io.now(), colorEnabled(io)));
    });

  addTemplateOptions(
    vms.command("create").description("create a VM and boot it (waits until it runs)")
      .argument("<name>", NAME_HELP, parseName),
  )
    .option("--ip <address>", "a specific IPv4 address from the pool (default: the lowest free)")
    .option(
      "--from-snapshot <snapshot>",
      "resume a snapshot as this new VM (its own address, MAC, hostname and secret; what it " +
        "runs comes from the snapshot)",
    )
    .option(
      "--publish <host:guest[/udp]>",
      "forward a host port to the VM, e.g. 8080:80 or 5353:53/udp (repeatable)",
      collectPublish,
    )
    .addOption(
      new Option(
        "--restart <policy>",
        "when its VMM dies: never, on-failure (start again with backoff, keeping the address) " +
          "or always (default: the plugin's, else never)",
      ).choices(VmRestartPolicy.options),
    )
    .option("--no-wait", NO_WAIT_HELP)
    .option("--timeout <duration>", TIMEOUT_HELP, parseTimeout)
    .action(async (name: string, flags: CreateFlags & WaitFlags, cmd: CommandUnknownOpts) => {
      const body = createRequest(name, flags);
      if (body.image !== undefined) {
        const globals = globalFlags(cmd);
        const image = body.image;
        await withClient(
          globals,
          io,
          (client) => ensureImage(client, io, image, body.insecure_registry, globals.json),
        );
      }
      await lifecycle(io, cmd, name, "Creating", flags, (client) => client.createVm(body));
    });

  vms.command("start").description("start a stopped or crashed VM (waits until it runs)")
    .argument("<name>", NAME_HELP, parseName)
    .option("--no-wait", NO_WAIT_HELP)
    .option("--timeout <duration>", TIMEOUT_HELP, parseTimeout)
    .action(async (name, flags, cmd) => {
      await lifecycle(io, cmd, name, "Starting", flags, (client) => client.startVm(name));
    });

  vms.command("restart").description("stop (when running) and start a VM (waits until it runs)")
    .argument("<name>", NAME_HELP, parseName)
    .option("--no-wait", NO_WAIT_HELP)
    .option("--timeout <duration>", TIMEOUT_HELP, parseTimeout)
    .action(async (name, flags, cmd) => {
      await lifecycle(io, cmd, name, "Restarting", flags, (client) => client.restartVm(name));
    });

  vms.command("stop").description("stop a VM: power button, then SIGTERM, then SIGKILL")
    .argument("<name>", NAME_HELP, parseName)
    .action(async (name, _opts, cmd) => {
      await simple(io, cmd, `Stopping ${name}`, undefined, (client) => client.stopVm(name));
    });

  vms.command("delete").alias("rm").description("delete a VM (stopping it first)")
    .argument("<name>", NAME_HELP, parseName)
    .action(async (name, _opts, cmd) => {
      await simple(io, cmd, `Deleting ${name}`, "deleted", (client) => client.deleteVm(name));
    });

  vms.command("policy").description(
    "show a VM's network policy, or replace it while the VM runs (flags not given take " +
      "their defaults; applied at once, all or nothing)",
  ).argument("<name>", NAME_HELP, parseName)
    .addOption(new Option(...POLICY_OPTIONS.egress).argParser(parseEgressMode))
    .option(...POLICY_OPTIONS.allowEgress, collectEgressRules)
    .option(...POLICY_OPTIONS.allowFrom, collectPeers)
    .option(...POLICY_OPTIONS.allowHostPort, collectHostPorts)
    .action(async (name, flags, cmd) => {
      const globals = globalFlags(cmd);
      const fields = policyFields(flags);
      const vm = await withClient(
        globals,
        io,
        (client) =>
          Object.keys(fields).length === 0
            ? client.getVm(name)
            : client.call(SetVmNetworkPolicy, { name }, NetworkPolicy.parse(fields)),
      );
      if (globals.json) printJson(io, vm.network_policy);
      else io.out(formatKeyValues(policyPairs(vm.network_policy)));
    });
}
