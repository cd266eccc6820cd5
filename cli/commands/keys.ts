/**
 * `volar keys …`: `generate` (local: an ed25519 key pair, the private half in a 0600 file),
 * `trust`, `list`, `untrust` (the daemon's trusted keys).
 *
 * @module
 */
import type { Command } from "commander";
import { generateKeyPair } from "../../schema/mod.ts";
import { ListKeys, TrustKey, UntrustKey } from "../../schema/operations/mod.ts";
import { UsageError } from "../errors.ts";
import { formatTable } from "../format.ts";
import type { Io } from "../io.ts";
import { globalFlags, printJson, withClient } from "./_context.ts";

/** Registers `volar keys`. */
export function registerKeys(program: Command, io: Io): void {
  const keys = program.command("keys").description("signing keys for plugin manifests");

  keys.command("generate").description(
    "make an ed25519 key pair: writes the private key file (0600) and prints the public key",
  )
    .requiredOption("-o, --output <file>", "where to write the private key (must not exist)")
    .action(async (flags, cmd) => {
      const globals = globalFlags(cmd);
      const { privateKey, publicKey } = await generateKeyPair();
      try {
        await Deno.writeTextFile(flags.output, JSON.stringify(privateKey, null, 2) + "\n", {
          createNew: true,
          mode: 0o600,
        });
      } catch (err) {
        throw new UsageError(
          `--output: cannot create ${flags.output}: ${(err as Error).message}` +
            (err instanceof Deno.errors.AlreadyExists ? " (refusing to overwrite a key)" : ""),
        );
      }
      if (globals.json) return printJson(io, { file: flags.output, ...publicKey });
      io.out(
        `private key: ${flags.output} (keep it secret)\nkey id:      ${publicKey.key_id}\n` +
          `public key:  ${publicKey.public_key}\n` +
          `trust it on a daemon with: volar keys trust ${publicKey.public_key}\n`,
      );
    });

  keys.command("trust").description("trust a public key for plugin signatures")
    .argument("<public-key>", "ed25519:<base64>, as `volar keys generate` prints")
    .option("--comment <text>", "who the key belongs to")
    .action(async (publicKey, flags, cmd) => {
      const globals = globalFlags(cmd);
      const key = await withClient(
        globals,
        io,
        (c) =>
          c.call(TrustKey, {}, {
            public_key: publicKey,
            ...(flags.comment !== undefined ? { comment: flags.comment } : {}),
          }),
      );
      if (globals.json) return printJson(io, key);
      io.out(`trusted key ${key.key_id}\n`);
    });

  keys.command("list").alias("ls").description("list trusted keys").action(async (_o, cmd) => {
    const globals = globalFlags(cmd);
    const list = await withClient(globals, io, (c) => c.call(ListKeys, {}));
    if (globals.json) return printJson(io, list);
    if (list.keys.length === 0) {
      io.out("no trusted keys (volar keys trust <public key>)\n");
      return;
    }
    io.out(
      formatTable(
        ["KEY ID", "PUBLIC KEY", "COMMENT", "ADDED"],
        list.keys.map((k) => [k.key_id, k.public_key, k.comment ?? "-", k.added_at]),
      ) + "\n",
    );
  });

  keys.command("untrust").alias("rm").description("stop trusting a key")
    .argument("<key-id>", "16 hex digits, as `volar keys list` shows")
    .action(async (keyId, _o, cmd) => {
      const globals = globalFlags(cmd);
      const key = await withClient(
        globals,
        io,
        (c) => c.call(UntrustKey, { key_id: keyId }),
      );
      if (globals.json) return printJson(io, key);
      io.out(`no longer trusting key ${key.key_id}\n`);
    });
}
