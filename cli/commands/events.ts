/**
 * `volar events [--vm <name>]`: follows the daemon's event stream (server-sent events) and
 * prints one line per event — state changes, deletions, workload health — until interrupted;
 * `--json` prints each event's JSON instead.
 *
 * @module
 */
import type { Command } from "commander";
import { StreamError, VmEvent } from "../../schema/event.ts";
import { VolantError } from "../../schema/error.ts";
import { paint } from "../format.ts";
import { colorEnabled, type Io } from "../io.ts";
import { globalFlags, withClient } from "./_context.ts";
import { bodyLines } from "./_ndjson.ts";

/**
 * The `data` of each server-sent event in a streamed body (comments and other fields skipped).
 *
 * @example
 * ```ts
 * import { sseData } from "./events.ts";
 * const body = ": hello\n\nevent: x\ndata: {\"a\":1}\n\n";
 * const seen: string[] = [];
 * for await (const data of sseData(new Response(body))) seen.push(data);
 * console.assert(seen[0] === '{"a":1}');
 * ```
 */
export async function* sseData(res: Response): AsyncGenerator<string> {
  for await (const block of bodyLines(res, "\n\n")) {
    const data = block.split("\n").filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(5).trimStart()).join("\n");
    if (data !== "") yield data;
  }
}

/**
 * One event as a line for people.
 *
 * @example
 * ```ts ignore
 * import { formatEvent } from "./events.ts";
 * console.log(formatEvent(event, false)); // 15:04:05  web  starting → running
 * ```
 */
export function formatEvent(event: VmEvent, color: boolean): string {
  const time = event.at.slice(11, 19);
  switch (event.type) {
    case "vm.state": {
      const to = event.to === "crashed"
        ? paint("red", event.to, color)
        : event.to === "running"
        ? paint("green", event.to, color)
        : event.to;
      const why = event.to === "crashed" && event.vm.last_error
        ? `  ${event.vm.last_error.split("\n")[0]}`
        : "";
      return `${time}  ${event.name}  ${event.from ?? "new"} → ${to}${why}`;
    }
    case "vm.deleted":
      return `${time}  ${event.name}  deleted`;
    case "vm.workload":
      return `${time}  ${event.name}  workload ${event.change} (${event.workload.state}, ` +
        `restarts ${event.workload.restarts})${
          event.workload.error ? `  ${event.workload.error}` : ""
        }`;
  }
}

/** Registers `volar events`. */
export function registerEvents(program: Command, io: Io): void {
  program.command("events").description("follow VM events (state changes, workload health)")
    .option("--vm <name>", "only this VM's events")
    .action(async (flags, cmd) => {
      const globals = globalFlags(cmd);
      const color = colorEnabled(io);
      const query = flags.vm === undefined ? "" : `?vm=${encodeURIComponent(flags.vm)}`;
      await withClient(globals, io, async (client) => {
        const res = await client.raw("GET", `/api/v1/events${query}`);
        for await (const data of sseData(res)) {
          const raw = JSON.parse(data);
          const end = StreamError.safeParse(raw);
          if (globals.json) io.out(`${data}\n`);
          if (end.success) {
            throw new VolantError(
              "invalid_state",
              `volantd ended the event stream: ${end.data.message}`,
              { code: end.data.code },
            );
          }
          if (globals.json) continue;
          const parsed = VmEvent.safeParse(raw);
          io.out(parsed.success ? `${formatEvent(parsed.data, color)}\n` : `${data}\n`);
        }
      });
    });
}
