/**
 * `volar build`: turns a build config (`app.toml`) into a plugin's initramfs appliance and
 * its manifest (`builder/`), with progress on stderr and a summary on stdout (`--json`:
 * `{name, archive, manifest, size, files, sha256, ms}`). `volar build --init [path]` writes a
 * commented starter config instead (never over an existing file). Like `volar setup`, it does
 * not talk to volantd.
 *
 * @module
 */
import type { Command } from "commander";
import { buildAppliance, type BuildResult, writeStarterConfig } from "../../builder/mod.ts";
import { formatKeyValues, formatSeconds } from "../format.ts";
import type { Io } from "../io.ts";
import { startProgress } from "../progress.ts";
import { globalFlags, printJson } from "./_context.ts";

/** The config file `volar build` reads (and `--init` writes) unless told otherwise. */
export const DEFAULT_BUILD_CONFIG = "app.toml";

/** `volar build`'s flags as commander parses them (absent: not given). */
export interface BuildFlags {
  /** `-c, --config <path>`. */
  config?: string;
  /** `-o, --output-dir <dir>`: overrides the config's `output.dir`. */
  outputDir?: string;
  /** `--init [path]`: `true` without a path. */
  init?: string | boolean;
}

/** What `volar build --init --json` prints. */
export interface InitReport {
  /** The starter config written. */
  written: string;
}

/**
 * A size for humans: `812 B`, `14.2 KiB`, `2.4 MiB`.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./build.ts";
 * console.assert(formatBytes(2_467_272) === "2.4 MiB" && formatBytes(812) === "812 B");
 * ```
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * The human summary of a build.
 *
 * @example
 * ```ts
 * import { buildSummary } from "./build.ts";
 * const text = buildSummary({
 *   name: "hello", archive: "/srv/hello.cpio.gz", manifest: "/srv/hello.manifest.json",
 *   size: 1_048_576, files: 12, sha256: "sha256:" + "0".repeat(64), ms: 420,
 * });
 * console.assert(text.startsWith("Built hello in 0.42 s: 12 files, 1.0 MiB\n"));
 * ```
 */
export function buildSummary(result: BuildResult): string {
  return `Built ${result.name} in ${formatSeconds(result.ms)}: ${result.files} files, ` +
    `${formatBytes(result.size)}\n` +
    formatKeyValues([
      ["archive", result.archive],
      ["sha256", result.sha256],
      ["manifest", result.manifest],
    ]);
}

/**
 * Runs `volar build` with parsed flags: writes the starter config with `--init`, else builds
 * and returns the result. Progress goes to stderr unless `quiet`.
 *
 * @example
 * ```ts ignore
 * import { runBuild } from "./build.ts";
 * const result = await runBuild({ config: "app.toml" }, io, { quiet: false });
 * ```
 */
export async function runBuild(
  flags: BuildFlags,
  io: Io,
  options: { quiet: boolean },
): Promise<BuildResult | InitReport> {
  if (flags.init !== undefined && flags.init !== false) {
    const path = typeof flags.init === "string" ? flags.init : flags.config ?? DEFAULT_BUILD_CONFIG;
    await writeStarterConfig(path);
    return { written: path };
  }
  const config = flags.config ?? DEFAULT_BUILD_CONFIG;
  const progress = startProgress(io, `Building from ${config}`, { quiet: options.quiet });
  try {
    return await buildAppliance({
      config,
      outputDir: flags.outputDir,
      onProgress: (step) => progress.update(step),
    });
  } finally {
    progress.stop();
  }
}

/**
 * Adds the `build` command to `program`.
 *
 * @example
 * ```ts ignore
 * import { Command } from "commander";
 * import { registerBuild } from "./build.ts";
 * registerBuild(new Command("volar"), io);
 * ```
 */
export function registerBuild(program: Command, io: Io): void {
  program.command("build")
    .description(
      "build a plugin's initramfs appliance and manifest from a build config (app.toml)",
    )
    .option("-c, --config <path>", `the build config (default ${DEFAULT_BUILD_CONFIG})`)
    .option("-o, --output-dir <dir>", "write the outputs here (default: the config's output.dir)")
    .option(
      "--init [path]",
      `write a commented starter config (default ${DEFAULT_BUILD_CONFIG}; never overwrites)`,
    )
    .action(async (flags, cmd) => {
      const json = globalFlags(cmd).json;
      const result = await runBuild(flags, io, { quiet: json && !io.errIsTerminal });
      if (json) return printJson(io, result);
      if ("written" in result) {
        io.out(
          `Wrote ${result.written}: map your program under [mappings], describe it under ` +
            `[workload], then run volar build -c ${result.written}\n`,
        );
        return;
      }
      io.out(buildSummary(result));
    });
}
