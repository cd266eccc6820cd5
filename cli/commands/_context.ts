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
  json: z.boolean().default(false),
});
/** The global flags, parsed. */
export type GlobalFlags = z.infer<typeof GlobalFlags>;

/** Reads the global flags a command was invoked with (wherever they were on the line). */
export function globalFlags(cmd: CommandUnknownOpts): GlobalFlags {
  return GlobalFlags.parse(cmd.optsWithGlobals());
}

function apiTarget(base: string, source: string): ApiTarget {
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
 * `$VOLANT_SOCKET`, else the default socket. Both flags at once is a usage error.
 */
export function resolveTarget(flags: GlobalFlags, io: Io): ApiTarget {
  if (flags.api !== undefined && flags.socket !== undefined) {
    throw new UsageError(
      "--socket and --api both given: use --socket <path> for the unix socket or " +
        "--api <url> for TCP, not both",
    );
  }
  if (flags.api !== undefined) return apiTarget(flags.api, "--api");
  if (flags.socket !== undefined) {
    if (flags.socket === "") throw new UsageError("--socket: expected a socket path, got ''");
    return { kind: "unix", socket: flags.socket };
  }
  const envApi = io.env("VOLANT_API_BASE");
  if (envApi) return apiTarget(envApi, "VOLANT_API_BASE");
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
