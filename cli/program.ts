/**
 * The volar command tree (commander), with its failures turned into values: usage mistakes
 * become {@linkcode UsageError}s naming the command, the flag or argument and what was
 * expected; help output ends the run with {@linkcode HelpShown}.
 *
 * @module
 */
import { Command, CommanderError, type CommandUnknownOpts } from "commander";
import { UsageError } from "./errors.ts";
import type { Io } from "./io.ts";
import { registerVersion, VOLAR_VERSION } from "./commands/version.ts";
import { registerVms } from "./commands/vms.ts";
import { registerDeployments } from "./commands/deployments.ts";
import { registerSnapshots } from "./commands/snapshots.ts";
import { registerSetup } from "./commands/setup.ts";
import { registerPlugins } from "./commands/plugins.ts";
import { registerKeys } from "./commands/keys.ts";
import { registerVmAgent } from "./commands/vm_agent.ts";
import { registerImages } from "./commands/images.ts";
import { registerEvents } from "./commands/events.ts";
import { registerMcp } from "./commands/mcp.ts";
import { registerDashboard } from "./commands/dashboard.ts";
import { registerBuild } from "./commands/build.ts";
import { registerDoctor } from "./commands/doctor.ts";
import { registerTokens } from "./commands/tokens.ts";
import { registerRegistry } from "./commands/registry.ts";

/** Help was printed (`--help`, or a command group without its subcommand); not an error. */
export class HelpShown extends Error {
  /** 0 after `--help`, 2 when help stood in for a missing command. */
  readonly exitCode: number;
  /** Creates the marker. */
  constructor(exitCode: number) {
    super("help shown");
    this.name = "HelpShown";
    this.exitCode = exitCode;
  }
}

function commandPath(cmd: CommandUnknownOpts): string {
  const names: string[] = [];
  for (let c: CommandUnknownOpts | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

function toUsageError(err: CommanderError, cmd: CommandUnknownOpts): Error {
  if (err.code === "commander.helpDisplayed" || err.code === "commander.version") {
    return new HelpShown(0);
  }
  if (err.code === "commander.help") return new HelpShown(2);
  const command = commandPath(cmd);
  let message = err.message.replace(/^error: /, "").replace(/ is invalid\. /, " is invalid: ")
    .replace(/\.$/, "");
  const missing = /^missing required argument '([^']+)'/.exec(message);
  if (missing) {
    const arg = cmd.registeredArguments.find((a) => a.name() === missing[1]);
    if (arg?.description) message += `: expected ${arg.description}`;
  }
  // "vms create: …" (the "volar: " prefix is added when printing).
  if (cmd.parent) message = `${command.split(" ").slice(1).join(" ")}: ${message}`;
  return new UsageError(message, {
    command,
    usage: `${command} ${cmd.usage()}`,
    details: { commander_code: err.code },
  });
}

function harden(cmd: CommandUnknownOpts): void {
  cmd.exitOverride((err) => {
    throw toUsageError(err, cmd);
  });
  for (const sub of cmd.commands) harden(sub);
}

/**
 * Builds a fresh volar program writing to `io` (commander keeps parsed values on its
 * commands, so build one per run).
 *
 * @example
 * ```ts ignore
 * import { buildProgram } from "./program.ts";
 * await buildProgram(io).parseAsync(["vms", "list"], { from: "user" });
 * ```
 */
export function buildProgram(io: Io): Command {
  const program = new Command("volar")
    .description(`volar ${VOLAR_VERSION}: the Volant microVM CLI (talks to volantd)`)
    .usage("[--socket <path> | --api <url>] [--json] <command>")
    .option(
      "--socket <path>",
      "volantd's unix socket (default: $VOLANT_SOCKET or /run/volant/volantd.sock)",
    )
    .option(
      "--api <url>",
      "reach volantd over TCP instead, e.g. http://127.0.0.1:7777 " +
        "(default: $VOLANT_API_BASE)",
    )
    .option(
      "--token <token>",
      "bearer token for --api (default: $VOLANT_TOKEN, or the file $VOLANT_TOKEN_FILE names)",
    )
    .option("--json", "print the API's JSON on stdout (errors as JSON on stderr)")
    .configureOutput({
      writeOut: (text) => io.out(text),
      writeErr: (text) => io.err(text),
      outputError: () => {},
      getOutHelpWidth: () => 100,
      getErrHelpWidth: () => 100,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .showSuggestionAfterError(true);
  registerVms(program, io);
  registerVmAgent(program.commands.find((c) => c.name() === "vms")! as unknown as Command, io);
  registerDeployments(program, io);
  registerSnapshots(program, io);
  registerPlugins(program, io);
  registerKeys(program, io);
  registerVersion(program, io);
  registerSetup(program, io);
  registerBuild(program, io);
  registerDoctor(program, io);
  registerImages(program, io);
  registerEvents(program, io);
  registerMcp(program, io);
  registerDashboard(program, io);
  registerTokens(program, io);
  registerRegistry(program, io);
  harden(program);
  return program;
}

/** Whether `args` ask for JSON output (`--json` anywhere before `--`). */
export function wantsJson(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).includes("--json");
}
