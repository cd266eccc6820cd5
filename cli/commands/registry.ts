/**
 * `volar registry …`: registry credentials kept by volantd for image pulls — `login` (a user
 * name and password, the password from stdin or a hidden prompt), `logout`, `list` (hosts and
 * user names only). The daemon keeps them in a 0600 file of its own, so pulls no longer depend
 * on whose `~/.docker/config.json` the daemon can read; it still falls back to that file.
 *
 * @module
 */
import type { Command } from "commander";
import { RegistryHost } from "../../schema/mod.ts";
import { ListRegistries, LoginRegistry, LogoutRegistry } from "../../schema/operations/mod.ts";
import { UsageError } from "../errors.ts";
import { formatTable } from "../format.ts";
import type { Io } from "../io.ts";
import { globalFlags, printJson, withClient } from "./_context.ts";

function stdinOf(io: Io): { readable: ReadableStream<Uint8Array>; isTerminal: boolean } {
  return io.stdin ?? { readable: Deno.stdin.readable, isTerminal: Deno.stdin.isTerminal() };
}

/** The password on stdin: all of it, without the line end `echo` adds. */
async function passwordFromStdin(io: Io): Promise<string> {
  const text = await new Response(stdinOf(io).readable).text();
  const password = text.replace(/\r?\n$/, "");
  if (password === "") throw new UsageError("--password-stdin: stdin was empty");
  return password;
}

function parseHost(value: string): string {
  const parsed = RegistryHost.safeParse(value.replace(/^[a-z]+:\/\//i, "").replace(/\/+$/, ""));
  if (!parsed.success) {
    throw new UsageError(`<host>: ${parsed.error.issues[0]!.message}, got '${value}'`);
  }
  return parsed.data;
}

/** Registers `volar registry`. */
export function registerRegistry(program: Command, io: Io): void {
  const registry = program.command("registry").description(
    "registry credentials volantd uses for image pulls",
  );

  registry.command("login").description(
    "store a user name and password for a registry with volantd (never shown again)",
  )
    .argument("<host>", "the registry's host[:port], e.g. ghcr.io or 127.0.0.1:5000")
    .option("-u, --username <name>", "user name (asked for on a terminal when missing)")
    .option("--password-stdin", "read the password (or access token) from stdin")
    .action(async (hostArg, flags, cmd) => {
      const globals = globalFlags(cmd);
      const host = parseHost(hostArg);
      const stdin = stdinOf(io);
      let username = flags.username;
      let password: string;
      if (flags.passwordStdin) {
        if (username === undefined) {
          throw new UsageError("registry login: --password-stdin needs --username");
        }
        password = await passwordFromStdin(io);
      } else if (stdin.isTerminal) {
        const prompts = await import("@inquirer/prompts");
        username ??= await prompts.input({ message: `Username for ${host}:` });
        password = await prompts.password({ message: "Password:" });
      } else {
        throw new UsageError(
          "registry login: no password: pipe it in with --password-stdin (and --username), " +
            "or run on a terminal to be asked",
        );
      }
      if (!username) throw new UsageError("registry login: the user name is empty");
      const stored = await withClient(
        globals,
        io,
        (c) => c.call(LoginRegistry, {}, { host, username, password }),
      );
      if (globals.json) return printJson(io, stored);
      io.out(`stored credentials for ${stored.host} (user ${stored.username})\n`);
    });

  registry.command("logout").description("forget the credentials for a registry")
    .argument("<host>", "the registry's host[:port]")
    .action(async (hostArg, _flags, cmd) => {
      const globals = globalFlags(cmd);
      const host = parseHost(hostArg);
      const removed = await withClient(
        globals,
        io,
        (c) => c.call(LogoutRegistry, { host }),
      );
      if (globals.json) return printJson(io, removed);
      io.out(`removed the credentials for ${removed.host}\n`);
    });

  registry.command("list").alias("ls").description(
    "registries volantd has credentials for (hosts and user names, never passwords)",
  ).action(async (_flags, cmd) => {
    const globals = globalFlags(cmd);
    const list = await withClient(
      globals,
      io,
      (c) => c.call(ListRegistries, {}),
    );
    if (globals.json) return printJson(io, list);
    if (list.registries.length === 0) {
      io.out("no registry credentials (volar registry login <host>)\n");
      return;
    }
    io.out(
      formatTable(
        ["HOST", "USERNAME", "UPDATED"],
        list.registries.map((r) => [r.host, r.username, r.updated_at]),
      ) + "\n",
    );
  });
}
