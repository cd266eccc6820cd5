/**
 * `volar plugins …`: install (from a manifest file or URL, with a progress bar), list, show,
 * enable, disable, remove, and `sign` (local: signs a manifest file with a private key).
 *
 * @module
 */
import type { Command } from "commander";
import { PluginRecord, type PrivateKeyFile, signManifest, VolantError } from "../../schema/mod.ts";
import {
  GetPlugin,
  GetPluginManifest,
  InstallPlugin,
  ListPlugins,
  RemovePlugin,
  SetPluginEnabled,
} from "../../schema/operations/mod.ts";
import { UsageError } from "../errors.ts";
import { formatBytes, formatKeyValues, formatTable, paint, progressBar } from "../format.ts";
import { colorEnabled, type Io } from "../io.ts";
import { readProgressStream } from "./_ndjson.ts";
import { globalFlags, printJson, withClient } from "./_context.ts";
import { parseName } from "./vms.ts";

const PLUGIN_HELP = "the plugin's name (e.g. nginx)";

/** The human form of one plugin (`volar plugins show`). */
export function pluginDetails(p: PluginRecord, color: boolean): string {
  const sig = p.signature.status === "verified"
    ? paint("green", `verified (key ${p.signature.key_id})`, color)
    : paint("yellow", "UNSIGNED (installed with --allow-unsigned)", color);
  const pairs: [string, string][] = [
    ["name", p.name],
    ["version", p.version],
    ["runtime", p.runtime],
    ["description", p.description ?? "-"],
    ["enabled", p.enabled ? "yes" : "no"],
    ["init", p.init],
    ["signature", sig],
    ["source", p.source ?? "(inline)"],
    ["installed", p.installed_at],
    ["actions", p.actions.length > 0 ? p.actions.join(", ") : "-"],
    ["used by", p.used_by.length > 0 ? p.used_by.join(", ") : "-"],
  ];
  for (const a of p.artifacts) {
    pairs.push([a.role, `${a.checksum} ${formatBytes(a.size)} ${a.url}`]);
  }
  return formatKeyValues(pairs) + "\n";
}

/** Reads a JSON file, with errors naming the flag. */
async function readJson(path: string, flag: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error("expected a JSON object");
    }
    return value;
  } catch (err) {
    throw new UsageError(`${flag}: ${path} is not a JSON object: ${(err as Error).message}`);
  }
}

/** Registers `volar plugins`. */
export function registerPlugins(program: Command, io: Io): void {
  const plugins = program.command("plugins").description("install and manage plugins");

  plugins.command("install").description(
    "install a plugin: check its manifest and signature, fetch and verify its artifacts",
  )
    .option("--manifest <file>", "a manifest file on this machine")
    .option("--url <url>", "a manifest the daemon reads (http(s)://, file:///, /path)")
    .option("--allow-unsigned", "install a manifest that carries no signature")
    .action(async (flags, cmd) => {
      const globals = globalFlags(cmd);
      if ((flags.manifest === undefined) === (flags.url === undefined)) {
        throw new UsageError(
          "plugins install: give exactly one of --manifest <file> or --url <url>",
        );
      }
      const body = {
        ...(flags.manifest !== undefined
          ? { manifest: await readJson(flags.manifest, "--manifest") }
          : { url: flags.url }),
        allow_unsigned: flags.allowUnsigned === true,
      };
      const record = await withClient(globals, io, async (client) => {
        const res = await client.open(InstallPlugin, { progress: "ndjson" }, body);
        const live = io.errIsTerminal && !globals.json;
        try {
          const done = await readProgressStream(res, (event) => {
            if (globals.json) return;
            const text = `${event.role} ${
              progressBar(Number(event.received ?? 0), (event.total as number | null) ?? null)
            }`;
            io.err(live ? `\r\x1b[2K${text}` : `${text}\n`);
          });
          return PluginRecord.parse(done.plugin);
        } finally {
          if (live) io.err("\r\x1b[2K");
        }
      });
      if (globals.json) return printJson(io, record);
      io.out(`installed ${record.name} ${record.version} (${record.signature.status})\n`);
    });

  plugins.command("list").alias("ls").description("list installed plugins")
    .action(async (_opts, cmd) => {
      const globals = globalFlags(cmd);
      const list = await withClient(globals, io, (c) => c.call(ListPlugins, {}));
      if (globals.json) return printJson(io, list);
      if (list.plugins.length === 0) {
        io.out("no plugins installed (volar plugins install --manifest <file>)\n");
        return;
      }
      io.out(
        formatTable(
          ["NAME", "VERSION", "ENABLED", "SIGNATURE", "INIT", "USED BY"],
          list.plugins.map((p) => [
            p.name,
            p.version,
            p.enabled ? "yes" : "no",
            p.signature.status,
            p.init,
            p.used_by.join(",") || "-",
          ]),
        ) + "\n",
      );
    });

  plugins.command("show").description("show an installed plugin")
    .argument("<plugin>", PLUGIN_HELP, parseName)
    .option("--manifest", "print the manifest as installed (JSON)")
    .action(async (name, flags, cmd) => {
      const globals = globalFlags(cmd);
      if (flags.manifest) {
        const m = await withClient(
          globals,
          io,
          (c) => c.call(GetPluginManifest, { plugin: name }),
        );
        return printJson(io, m);
      }
      const p = await withClient(globals, io, (c) => c.call(GetPlugin, { plugin: name }));
      if (globals.json) return printJson(io, p);
      io.out(pluginDetails(p, colorEnabled(io)));
    });

  for (const [verb, enabled] of [["enable", true], ["disable", false]] as const) {
    plugins.command(verb).description(`${verb} a plugin`)
      .argument("<plugin>", PLUGIN_HELP, parseName)
      .action(async (name, _opts, cmd) => {
        const globals = globalFlags(cmd);
        const p = await withClient(
          globals,
          io,
          (c) => c.call(SetPluginEnabled, { plugin: name }, { enabled }),
        );
        if (globals.json) return printJson(io, p);
        io.out(`${p.name} ${enabled ? "enabled" : "disabled"}\n`);
      });
  }

  plugins.command("remove").alias("rm").description(
    "remove a plugin (refused while a VM uses it)",
  )
    .argument("<plugin>", PLUGIN_HELP, parseName)
    .action(async (name, _opts, cmd) => {
      const globals = globalFlags(cmd);
      const p = await withClient(globals, io, (c) => c.call(RemovePlugin, { plugin: name }));
      if (globals.json) return printJson(io, p);
      io.out(`removed ${p.name} ${p.version}\n`);
    });

  plugins.command("sign").description(
    "sign a manifest file with a private key (from `volar keys generate`); writes it in place",
  )
    .argument("<manifest>", "the manifest file to sign")
    .requiredOption("--key <file>", "the private key file")
    .option("-o, --output <file>", "write the signed manifest here instead of in place")
    .action(async (file, flags, cmd) => {
      const globals = globalFlags(cmd);
      const manifest = await readJson(file, "<manifest>");
      const key = await readJson(flags.key, "--key") as unknown as PrivateKeyFile;
      const signed = await signManifest(manifest, key).catch((err) => {
        if (err instanceof VolantError) throw new UsageError(`--key: ${err.message}`);
        throw err;
      });
      const out = flags.output ?? file;
      const tmp = `${out}.tmp-${Deno.pid}`;
      await Deno.writeTextFile(tmp, JSON.stringify(signed, null, 2) + "\n");
      await Deno.rename(tmp, out);
      if (globals.json) return printJson(io, { file: out, signature: signed.signature });
      io.out(`signed ${out} with key ${signed.signature.key_id}\n`);
    });
}
