/**
 * `volar tokens …`: bearer tokens for volantd's TCP listener — `create` (prints the token once),
 * `list`, `revoke`. The daemon serves these on its unix socket only, so run them on its host.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { TokenScope } from "../../schema/mod.ts";
import { CreateToken, ListTokens, RevokeToken } from "../../schema/operations/mod.ts";
import { formatTable } from "../format.ts";
import type { Io } from "../io.ts";
import { globalFlags, printJson, withClient } from "./_context.ts";

/** Registers `volar tokens`. */
export function registerTokens(program: Command, io: Io): void {
  const tokens = program.command("tokens").description(
    "bearer tokens for volantd's TCP API (managed on its unix socket)",
  );

  tokens.command("create").description(
    "create a token: printed once on stdout (only its hash is kept); read scope by default",
  )
    .argument("<name>", "a name for it (letters, digits, '.', '_', '-')")
    .addOption(
      new Option("--scope <scope>", "read: GET requests only; admin: everything")
        .choices(TokenScope.options).default("read"),
    )
    .action(async (name, flags, cmd) => {
      const globals = globalFlags(cmd);
      const created = await withClient(
        globals,
        io,
        (c) => c.call(CreateToken, {}, { name, scope: flags.scope }),
      );
      if (globals.json) return printJson(io, created);
      io.out(`${created.token}\n`);
      io.err(
        `token ${created.name} (id ${created.id}, scope ${created.scope}) created: it is shown ` +
          "this once, keep it secret\nuse it with: VOLANT_TOKEN=<token> volar --api " +
          "http://127.0.0.1:7777 vms list\n",
      );
    });

  tokens.command("list").alias("ls").description("list tokens (never the tokens themselves)")
    .option("--all", "revoked tokens too")
    .action(async (flags, cmd) => {
      const globals = globalFlags(cmd);
      const list = await withClient(
        globals,
        io,
        (c) => c.call(ListTokens, flags.all ? { all: "1" } : {}),
      );
      if (globals.json) return printJson(io, list);
      if (list.tokens.length === 0) {
        io.out("no API tokens (volar tokens create <name>)\n");
        return;
      }
      const headers = ["NAME", "ID", "SCOPE", "CREATED", "LAST USED"];
      io.out(
        formatTable(
          flags.all ? [...headers, "REVOKED"] : headers,
          list.tokens.map((t) => {
            const row = [t.name, t.id, t.scope, t.created_at, t.last_used_at ?? "never"];
            return flags.all ? [...row, t.revoked_at ?? "-"] : row;
          }),
        ) + "\n",
      );
    });

  tokens.command("revoke").alias("rm").description(
    "revoke a token: requests with it are refused (401) from now on",
  )
    .argument("<name-or-id>", "the token's name, or its id as `volar tokens list` shows it")
    .action(async (ref, _flags, cmd) => {
      const globals = globalFlags(cmd);
      const token = await withClient(
        globals,
        io,
        (c) => c.call(RevokeToken, { token: ref }),
      );
      if (globals.json) return printJson(io, token);
      io.out(`revoked token ${token.name} (${token.id})\n`);
    });
}
