/** Runs the host tools the guest build needs, with errors that name the Debian package. @module */
import { VolantError } from "../schema/mod.ts";

/** Options of {@linkcode runTool}. */
export interface RunToolOptions {
  /** Debian package that provides the tool (named in the error when it is missing). */
  apt: string;
  /** Working directory. */
  cwd?: string;
  /** Exit codes that count as success besides 0. */
  okCodes?: number[];
}

/** The result of {@linkcode runToolOutput}. */
export interface ToolOutput {
  /** Exit code (0 or one of `okCodes`). */
  code: number;
  /** Standard output, decoded. */
  stdout: string;
  /** Standard error, decoded. */
  stderr: string;
}

/** Runs `cmd args`; resolves to stdout. Throws `internal` naming the package or the stderr tail. */
export async function runTool(
  cmd: string,
  args: string[],
  options: RunToolOptions,
): Promise<string> {
  return (await runToolOutput(cmd, args, options)).stdout;
}

/** Like {@linkcode runTool} but resolves to exit code, stdout and stderr. */
export async function runToolOutput(
  cmd: string,
  args: string[],
  options: RunToolOptions,
): Promise<ToolOutput> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, {
      args,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { LC_ALL: "C" },
    }).output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new VolantError(
        "internal",
        `${cmd} is missing: install it with \`apt-get install ${options.apt}\``,
        { tool: cmd, package: options.apt },
      );
    }
    throw err;
  }
  if (out.code !== 0 && !(options.okCodes ?? []).includes(out.code)) {
    const stderr = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-4).join(" | ");
    throw new VolantError(
      "internal",
      `${cmd} ${args.join(" ")} failed (exit ${out.code}): ${stderr || "no message"}`,
      { tool: cmd, code: out.code },
    );
  }
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}
