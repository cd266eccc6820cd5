/**
 * `volar vms console <name>`: the VM's serial console in this terminal, through the daemon's
 * WebSocket. On a terminal, keys go to the guest raw (Ctrl-C included) and Ctrl-] detaches; with
 * piped input, the input is typed into the console and volar detaches `--linger` ms after it
 * ends, so scripts can run a command and read its output.
 *
 * @module
 */
import type { Command } from "commander";
import { VmConsole } from "../../schema/operations/mod.ts";
import { UsageError } from "../errors.ts";
import type { Io } from "../io.ts";
import { globalFlags, withClient } from "./_context.ts";
import { parseInteger, parseName } from "./vms.ts";

/** The byte that detaches an interactive console (Ctrl-], as in telnet and virsh). */
export const DETACH_BYTE = 0x1d;

/** The cursor-position query busybox's line editor sends (a terminal answers it). */
const CURSOR_QUERY = "\x1b[6n";

/** Where console input comes from (a seam for tests). */
export interface ConsoleInput {
  readable: ReadableStream<Uint8Array>;
  isTerminal(): boolean;
  setRaw(raw: boolean): void;
}

function opened(ws: WebSocket, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (event) =>
      reject(
        new UsageError(
          `vms console: cannot attach to VM ${name}: ${
            (event as ErrorEvent).message ?? "the WebSocket failed"
          }`,
        ),
      );
  });
}

/** Registers `vms console` on the `vms` command. */
export function registerVmConsole(
  vms: Command,
  io: Io,
  input: ConsoleInput = Deno.stdin,
): void {
  vms.command("console").description(
    "attach to the VM's serial console (Ctrl-] detaches; piped input is typed in)",
  )
    .argument("<name>", "the VM", parseName)
    .option(
      "--linger <ms>",
      "with piped input: how long to keep printing after the input ends",
      parseInteger,
      2000,
    )
    .action(async (name, flags, cmd) => {
      const globals = globalFlags(cmd);
      await withClient(globals, io, async (client) => {
        // The same checks as the upgrade, answered as JSON errors volar can show.
        await client.call(VmConsole, { name });
        const ws = client.websocket(VmConsole, { name });
        ws.binaryType = "arraybuffer";
        await opened(ws, name);
        const interactive = input.isTerminal();
        const closed = new Promise<void>((resolve) => {
          ws.onclose = () => resolve();
        });
        const decoder = new TextDecoder();
        ws.onmessage = (event) => {
          const data = event.data instanceof ArrayBuffer
            ? decoder.decode(new Uint8Array(event.data), { stream: true })
            : String(event.data);
          // Without a terminal nothing answers the guest shell's cursor-position query.
          io.out(io.outIsTerminal ? data : data.replaceAll(CURSOR_QUERY, ""));
        };
        if (interactive) {
          io.err(`Connected to the console of ${name}; Ctrl-] detaches.\r\n`);
          input.setRaw(true);
        }
        const reader = input.readable.getReader();
        const pump = (async () => {
          try {
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              const stop = interactive ? value.indexOf(DETACH_BYTE) : -1;
              if (stop >= 0) {
                if (stop > 0) ws.send(value.subarray(0, stop));
                return "detached" as const;
              }
              if (ws.readyState !== WebSocket.OPEN) return "closed" as const;
              ws.send(value);
            }
          } catch {
            // Input went away.
          }
          return "eof" as const;
        })();
        try {
          const first = await Promise.race([pump, closed.then(() => "closed" as const)]);
          if (first === "eof") {
            await Promise.race([closed, new Promise((r) => setTimeout(r, flags.linger))]);
          }
        } finally {
          if (interactive) input.setRaw(false);
          reader.releaseLock();
          if (ws.readyState === WebSocket.OPEN) ws.close(1000, "detached");
          await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
          io.out(decoder.decode());
          if (interactive) io.err(`\r\nDetached from the console of ${name}.\n`);
        }
      });
    });
}
