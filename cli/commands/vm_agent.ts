/**
 * `volar vms call | logs`: what reaches kestrel inside a VM through the daemon — a manifest
 * action, and the workload's output (`-f` follows it).
 *
 * @module
 */
import type { Command } from "commander";
import { CallAction, GetVmStats, VmLogs } from "../../schema/operations/mod.ts";
import type { GuestStats } from "../../schema/mod.ts";
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

  vms.command("stats").description(
    "the guest's memory in use and kestrel's RSS (anonymous, file-backed, shared), read now",
  )
    .argument("<name>", "the VM", parseName)
    .action(async (name, _flags, cmd) => {
      const globals = globalFlags(cmd);
      const stats = await withClient(globals, io, (client) => client.call(GetVmStats, { name }));
      if (globals.json) io.out(`${JSON.stringify(stats, null, 2)}\n`);
      else io.out(formatStats(name, stats));
    });
}

const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;

/**
 * `volar vms stats` for people.
 *
 * @example
 * ```ts
 * import { formatStats } from "./vm_agent.ts";
 * const text = formatStats("web", {
 *   uptime_ms: 6250,
 *   memory: { total_kb: 223000, available_kb: 175000, used_kb: 48000, free_kb: 150000, cached_kb: 20000, shmem_kb: 3000 },
 *   kestrel: { rss_kb: 50000, hwm_kb: 61000, anon_kb: 18000, file_kb: 31000, shmem_kb: 1000 },
 * });
 * console.assert(text.includes("46.9 MiB in use of 217.8 MiB"));
 * ```
 */
export function formatStats(name: string, s: GuestStats): string {
  const m = s.memory;
  const k = s.kestrel;
  return `${name}: guest memory ${mib(m.used_kb)} in use of ${mib(m.total_kb)} ` +
    `(available ${mib(m.available_kb)}, page cache ${mib(m.cached_kb)}, shared ${
      mib(m.shmem_kb)
    })\n` +
    `kestrel (PID 1): RSS ${mib(k.rss_kb)} = anonymous ${mib(k.anon_kb)} + file-backed ` +
    `${mib(k.file_kb)} + shared ${mib(k.shmem_kb)}; peak ${mib(k.hwm_kb)}\n` +
    `guest uptime ${(s.uptime_ms / 1000).toFixed(2)} s\n`;
}
