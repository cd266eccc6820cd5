/**
 * kestrel's command-line flags, parsed without `node:util` (loading Deno's Node layer costs
 * ~0.6 s of guest boot under emulation; kestrel has five flags).
 *
 * @module
 */

/** kestrel's flags. */
export interface KestrelFlags {
  /** `--dry-run`. */
  "dry-run"?: boolean;
  /** `--wait`. */
  wait?: boolean;
  /** `--cmdline <text>` or `--cmdline=<text>`. */
  cmdline?: string;
  /** `--version`. */
  version?: boolean;
  /** `-h`, `--help`. */
  help?: boolean;
}

const BOOLEANS: Readonly<Record<string, keyof KestrelFlags>> = {
  "--dry-run": "dry-run",
  "--wait": "wait",
  "--version": "version",
  "--help": "help",
  "-h": "help",
};

/**
 * Parses kestrel's arguments; throws a `TypeError` naming the bad argument.
 *
 * @example
 * ```ts
 * import { parseKestrelArgs } from "./args.ts";
 * const flags = parseKestrelArgs(["--dry-run", "--cmdline=quiet"]);
 * console.assert(flags["dry-run"] === true && flags.cmdline === "quiet");
 * ```
 */
export function parseKestrelArgs(args: readonly string[]): KestrelFlags {
  const flags: KestrelFlags = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const boolean = BOOLEANS[arg];
    if (boolean !== undefined) {
      (flags as Record<string, unknown>)[boolean] = true;
    } else if (arg === "--cmdline") {
      const value = args[++i];
      if (value === undefined) throw new TypeError("Option '--cmdline <value>' argument missing");
      flags.cmdline = value;
    } else if (arg.startsWith("--cmdline=")) {
      flags.cmdline = arg.slice("--cmdline=".length);
    } else if (arg.startsWith("-")) {
      throw new TypeError(`Unknown option '${arg}'`);
    } else {
      throw new TypeError(`Unexpected argument '${arg}'`);
    }
  }
  return flags;
}
