/**
 * What every command needs: the global flags (`--socket`, `--api`, `--json`), the API target
 * they select, a client for it, and JSON output. Internal to the CLI.
 *
 * @module
 */
import { z } from "zod";
import type { CommandUnknownOpts } from "commander";
import { type ApiTarget, DEFAULT_SOCKET, VolantClient } from "../client.ts";
import { UsageError } from "../errors.ts";
import type { Io } from "../io.ts";

/** The global flags, parsed. */
export const GlobalFlags = z.object({
  socket: z.string().optional(),
  api: z.string().optional(),
  token: z.string().optional(),
  json: z.boolean().default(false),
});
/** The global flags, parsed. */
export type GlobalFlags = z.infer<typeof GlobalFlags>;

/** Reads the global flags a command was invoked with (wherever they were on the line). */
export function globalFlags(cmd: CommandUnknownOpts): GlobalFlags {
  return GlobalFlags.parse(cmd.optsWithGlobals());
}

/**
 * The bearer token for a TCP target: `--token`, else `$VOLANT_TOKEN`, else the contents of the
 * file `$VOLANT_TOKEN_FILE` names; none: undefined (the daemon answers 401 saying so).
 */
function tokenFor(flags: GlobalFlags, io: Io): string | undefined {
  if (flags.token !== undefined) {
    if (flags.token.trim() === "") throw new UsageError("--token: expected a token, got ''");
    return flags.token.trim();
  }
  const env = io.env("VOLANT_TOKEN");
  if (env) return env.trim();
  const file = io.env("VOLANT_TOKEN_FILE");
  if (!file) return undefined;
  try {
    return Deno.readTextFileSync(file).trim() || undefined;
  } catch (err) {
    throw new UsageError(
      `VOLANT_TOKEN_FILE: cannot read ${file}: ${err instanceof Error ? err.message : err}`,
    );
  }
}

function apiTarget(base: string, source: string): ApiTarget & { kind: "tcp" } {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new UsageError(`${source}: expected a URL like http://127.0.0.1:7777, got '${base}'`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`${source}: expected an http:// URL, got '${base}'`);
  }
  return { kind: "tcp", base: url.origin + url.pathname.replace(/\/+$/, "") };
}

/**
 * Picks the API target: `--api`, else `--socket`, else `$VOLANT_API_BASE`, else
 * `$VOLANT_SOCKET`, else the default socket. Both flags at once is a usage error. A TCP target
 * carries the token of `--token`, `$VOLANT_TOKEN` or `$VOLANT_TOKEN_FILE`; the unix socket needs
 * none.
 */
export function resolveTarget(flags: GlobalFlags, io: Io): ApiTarget {
  if (flags.api !== undefined && flags.socket !== undefined) {
    throw new UsageError(
      "--socket and --api both given: use --socket <path> for the unix socket or " +
        "--api <url> for TCP, not both",
    );
  }
  const tcp = (base: string, source: string): ApiTarget => {
    const target = apiTarget(base, source);
    const token = tokenFor(flags, io);
    return token === undefined ? target : { ...target, token };
  };
  if (flags.api !== undefined) return tcp(flags.api, "--api");
  if (flags.socket !== undefined) {
    if (flags.socket === "") throw new UsageError("--socket: expected a socket path, got ''");
    return { kind: "unix", socket: flags.socket };
  }
  const envApi = io.env("VOLANT_API_BASE");
  if (envApi) return tcp(envApi, "VOLANT_API_BASE");
  return { kind: "unix", socket: io.env("VOLANT_SOCKET") || DEFAULT_SOCKET };
}

/** Runs `fn` with a client for the target the flags select, closing it afterwards. */
export async function withClient<T>(
  flags: GlobalFlags,
  io: Io,
  fn: (client: VolantClient) => Promise<T>,
): Promise<T> {
  const client = new VolantClient(resolveTarget(flags, io));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** Prints a value as JSON on stdout (two-space indent, trailing newline). */
export function printJson(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, null, 2) + "\n");
}
