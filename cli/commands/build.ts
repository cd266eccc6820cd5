/**
 * `volar build`: turns a build config (`app.toml`) into a plugin artifact and its manifest
 * (`builder/`): an initramfs appliance from host files (`strategy = "initramfs"`) or an OCI
 * image's erofs root filesystem (`strategy = "oci_rootfs"`, images cached in `--image-cache`,
 * `$VOLANT_IMAGE_CACHE` or `~/.cache/volant/images`). Progress goes to stderr and a summary to
 * stdout (`--json`: `{strategy, name, archive, manifest, size, files, sha256, ms}`, plus
 * `image` and `cache` for `oci_rootfs`). `volar build --init [path] [--strategy <name>]` writes
 * a commented starter config instead (never over an existing file). Like `volar setup`, it does
 * not talk to volantd.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import {
  buildPlugin,
  type BuildResult,
  STRATEGIES,
  type Strategy,
  writeStarterConfig,
} from "../../builder/mod.ts";
import { UsageError } from "../errors.ts";
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
  /** `--strategy <name>`: which starter config `--init` writes. */
  strategy?: string;
  /** `--image-cache <dir>`: the image cache of `oci_rootfs` builds. */
  imageCache?: string;
}

/** What `volar build --init --json` prints. */
export interface InitReport {
  /** The starter config written. */
  written: string;
  /** Its strategy. */
  strategy: Strategy;
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
 *   strategy: "initramfs",
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
      [result.strategy === "oci_rootfs" ? "rootfs" : "archive", result.archive],
      ["sha256", result.sha256],
      ["manifest", result.manifest],
      ...(result.strategy === "oci_rootfs"
        ? [["image", `${result.image.ref} (${result.image.digest})`] as [string, string]]
        : []),
    ]);
}

function strategyFlag(flags: BuildFlags): Strategy {
  const init = flags.init !== undefined && flags.init !== false;
  if (flags.strategy === undefined) return "initramfs";
  if (!init) {
    throw new UsageError(
      "--strategy only chooses the starter config of --init; a build takes its strategy from " +
        "the config's strategy key",
      { command: "volar build", details: { flag: "--strategy" } },
    );
  }
  if (!(STRATEGIES as readonly string[]).includes(flags.strategy)) {
    throw new UsageError(
      `--strategy: expected one of ${STRATEGIES.join(", ")}, got '${flags.strategy}'`,
      { command: "volar build", details: { flag: "--strategy", value: flags.strategy } },
    );
  }
  return flags.strategy as Strategy;
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
  const strategy = strategyFlag(flags);
  if (flags.init !== undefined && flags.init !== false) {
    const path = typeof flags.init === "string" ? flags.init : flags.config ?? DEFAULT_BUILD_CONFIG;
    await writeStarterConfig(path, strategy);
    return { written: path, strategy };
  }
  if (flags.imageCache === "") {
    throw new UsageError("--image-cache: expected a directory, got ''", {
      command: "volar build",
    });
  }
  const config = flags.config ?? DEFAULT_BUILD_CONFIG;
  const progress = startProgress(io, `Building from ${config}`, { quiet: options.quiet });
  try {
    return await buildPlugin({
      config,
      outputDir: flags.outputDir,
      ...(flags.imageCache === undefined ? {} : { imageCache: resolve(flags.imageCache) }),
      env: (key) => io.env(key),
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
      "build a plugin (an initramfs appliance, or an OCI image's rootfs) and its manifest " +
        "from a build config (app.toml)",
    )
    .option("-c, --config <path>", `the build config (default ${DEFAULT_BUILD_CONFIG})`)
    .option("-o, --output-dir <dir>", "write the outputs here (default: the config's output.dir)")
    .option(
      "--image-cache <dir>",
      "where oci_rootfs builds keep images (default $VOLANT_IMAGE_CACHE, else " +
        "~/.cache/volant/images)",
    )
    .option(
      "--init [path]",
      `write a commented starter config (default ${DEFAULT_BUILD_CONFIG}; never overwrites)`,
    )
    .option(
      "--strategy <name>",
      `with --init: the starter's strategy (${STRATEGIES.join(" or ")}; default initramfs)`,
    )
    .action(async (flags, cmd) => {
      const json = globalFlags(cmd).json;
      const result = await runBuild(flags, io, { quiet: json && !io.errIsTerminal });
      if (json) return printJson(io, result);
      if ("written" in result) {
        io.out(
          result.strategy === "oci_rootfs"
            ? `Wrote ${result.written}: name the image under [source], override what it runs ` +
              `under [workload], then run volar build -c ${result.written}\n`
            : `Wrote ${result.written}: map your program under [mappings], describe it under ` +
              `[workload], then run volar build -c ${result.written}\n`,
        );
        return;
      }
      io.out(buildSummary(result));
    });
}
