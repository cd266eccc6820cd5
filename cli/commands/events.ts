/**
 * `volar events [--vm <name>] [--since <id>]`: follows the daemon's event stream (server-sent
 * events) and prints one line per event — VM state changes, deletions, workload health, plugin
 * and image changes — until interrupted; `--json` prints each event's JSON instead. `--since`
 * replays the events after that id first. When the stream breaks (volantd restarting), it
 * reconnects with the last id it saw, so no event is missed or printed twice.
 *
 * @module
 */
import { type Command, InvalidArgumentError } from "commander";
import { type NewEvent, parseEventId, StreamError, VolantEvent } from "../../schema/event.ts";
import { VolantError } from "../../schema/error.ts";
import { paint } from "../format.ts";
import { colorEnabled, type Io } from "../io.ts";
import { globalFlags, withClient } from "./_context.ts";
import { followEvents, sseBlocks } from "./_event_follow.ts";

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
  for await (const block of sseBlocks(res)) if (block.data !== "") yield block.data;
}

/**
 * `--since`'s value: an event id (a whole number).
 *
 * @example
 * ```ts
 * import { parseSince } from "./events.ts";
 * console.assert(parseSince("42") === 42);
 * ```
 */
export function parseSince(value: string): number {
  const id = parseEventId(value);
  if (id === null) throw new InvalidArgumentError("expected an event id (a whole number).");
  return id;
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
export function formatEvent(event: NewEvent, color: boolean): string {
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
    case "plugin.installed":
    case "plugin.enabled":
    case "plugin.disabled":
    case "plugin.removed":
      return `${time}  plugin ${event.name}  ${event.type.slice(7)} (version ` +
        `${event.plugin.version})`;
    case "image.pulled":
    case "image.removed":
      return `${time}  image ${event.name}  ${event.type.slice(6)} (${event.image.digest})`;
    case "deployment.created":
    case "deployment.scaled":
    case "deployment.updated":
    case "deployment.deleting":
    case "deployment.deleted": {
      const d = event.deployment;
      return `${time}  deployment ${event.name}  ${event.type.slice(11)} (replicas ` +
        `${d.replicas}, generation ${d.generation})`;
    }
    case "snapshot.created":
    case "snapshot.deleted":
      return `${time}  snapshot ${event.name}  ${event.type.slice(9)} (of VM ` +
        `${event.snapshot.vm}, ${(event.snapshot.bytes / 2 ** 20).toFixed(1)} MiB)`;
    case "deployment.replica": {
      const change = event.change === "failed" ? paint("red", event.change, color) : event.change;
      return `${time}  deployment ${event.name}  ${event.replica} ${change}${
        event.message ? `  ${event.message.split("\n")[0]}` : ""
      }`;
    }
  }
}

/** Registers `volar events`. */
export function registerEvents(program: Command, io: Io): void {
  program.command("events").description(
    "follow events (VM state changes and workload health, deployments, plugins, images, " +
      "snapshots)",
  )
    .option("--vm <name>", "only this VM's events")
    .option(
      "--since <id>",
      "replay the events after this id first (0: every event kept)",
      parseSince,
    )
    .action(async (flags, cmd) => {
      const globals = globalFlags(cmd);
      const color = colorEnabled(io);
      /** Why the daemon last ended the stream itself, when it said. */
      let ended: string | null = null;
      await withClient(globals, io, (client) =>
        followEvents(client, {
          ...(flags.vm === undefined ? {} : { vm: flags.vm }),
          since: flags.since ?? null,
          onEvent(data) {
            const raw = JSON.parse(data);
            const end = StreamError.safeParse(raw);
            if (end.success && end.data.code === "slow_consumer") {
              // Nothing is lost: the reconnection resumes from the last id printed.
              ended = "volantd dropped this reader for reading too slowly";
              return;
            }
            if (globals.json) io.out(`${data}\n`);
            if (end.success) {
              throw new VolantError(
                "invalid_state",
                `volantd ended the event stream: ${end.data.message}`,
                { code: end.data.code },
              );
            }
            if (globals.json) return;
            const parsed = VolantEvent.safeParse(raw);
            io.out(parsed.success ? `${formatEvent(parsed.data, color)}\n` : `${data}\n`);
          },
          onReconnect(reason, last, attempt) {
            const why = ended ?? reason;
            ended = null;
            if (attempt !== 1) return;
            const from = last === null ? "" : ` (Last-Event-ID: ${last})`;
            io.err(`volar: ${why}; reconnecting${from}\n`);
          },
        }));
    });
}
