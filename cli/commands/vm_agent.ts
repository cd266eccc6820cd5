/**
 * `volar vms call | logs`: what reaches kestrel inside a VM through the daemon — a manifest
 * action, and the workload's output (`-f` follows it).
 *
 * @module
 */
import type { Command } from "commander";
import { CallAction, VmLogs } from "../../schema/operations/mod.ts";
import { UsageError } from "../errors.ts";
import { paint } from "../format.ts";
import { colorEnabled, type Io } from "../io.ts";
import { globalFlags, withClient } from "./_context.ts";
import { bodyLines } from "./_ndjson.ts";
import { registerVmConsole } from "./vm_console.ts";
import { parseInteger, parseName } from "./vms.ts";

async function bodyFrom(value: string | undefined): Promise<string | undefined> {
  if (value === undefined) return undefined;
  if (!value.startsWith("@")) return value;
  try {
    return await Deno.readTextFile(value.slice(1));
  } catch (err) {
    throw new UsageError(`--body: cannot read ${value.slice(1)}: ${(err as Error).message}`);
  }
}

/** One line of the workload's logs (`VmLogs`). */
interface LogLine {
  seq: number;
  time: string;
  stream: string;
  line: string;
}

/** Registers `vms call`, `vms logs` and `vms console` on the `vms` command. */
export function registerVmAgent(vms: Command, io: Io): void {
  registerVmConsole(vms, io);
  vms.command("call").description("run a manifest action in the VM and print the workload's answer")
    .argument("<name>", "the VM", parseName)
    .argument("<action>", "the action's name (see volar plugins show <plugin>)")
    .option("--body <json|@file>", "request body passed to the workload")
    .action(async (name, action, flags, cmd) => {
      const globals = globalFlags(cmd);
      const body = await bodyFrom(flags.body);
      const res = await withClient(globals, io, async (client) => {
        const r = await client.open(
          CallAction,
          { name, action },
          body,
          body === undefined ? {} : { headers: { "content-type": "application/json" } },
        );
        return { status: r.status, text: await r.text() };
      });
      io.out(res.text.endsWith("\n") || res.text === "" ? res.text : `${res.text}\n`);
      if (res.status >= 400) {
        throw new UsageError(`vms call: the workload answered HTTP ${res.status}`, {
          details: { status: res.status },
        });
      }
    });

  vms.command("logs").description("print the workload's output (-f keeps following it)")
    .argument("<name>", "the VM", parseName)
    .option("-f, --follow", "keep printing new lines until interrupted")
    .option("--tail <lines>", "start with the last N lines (default all kept)", parseInteger)
    .action(async (name, flags, cmd) => {
      const globals = globalFlags(cmd);
      const color = colorEnabled(io);
      await withClient(globals, io, async (client) => {
        const res = await client.open(VmLogs, {
          name,
          ...(flags.follow ? { follow: "1" as const } : {}),
          ...(flags.tail === undefined ? {} : { tail: flags.tail }),
        });
        for await (const raw of bodyLines(res)) {
          if (globals.json) {
            io.out(`${raw}\n`);
            continue;
          }
          const l = JSON.parse(raw) as LogLine;
          io.out(l.stream === "stderr" ? `${paint("yellow", l.line, color)}\n` : `${l.line}\n`);
        }
      });
    });
}
