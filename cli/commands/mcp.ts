/**
 * `volar mcp`: volantd's MCP server for clients that start their servers as a command and talk
 * over stdio (e.g. `{"command": "volar", "args": ["mcp"]}`). Each JSON-RPC line from stdin is
 * posted to the daemon's `/mcp` endpoint (stateless Streamable HTTP, JSON answers) and the answer
 * is written to stdout as one line; notifications get no answer.
 *
 * @module
 */
import type { Command } from "commander";
import type { VolantClient } from "../client.ts";
import type { Io } from "../io.ts";
import { globalFlags, withClient } from "./_context.ts";
import { bodyLines } from "./_ndjson.ts";

/** Where the JSON-RPC lines come from (a seam for tests). */
export interface McpInput {
  readable: ReadableStream<Uint8Array>;
}

/** Posts one JSON-RPC message to `/mcp`; the answer's text, or undefined for none (202). */
async function forward(client: VolantClient, line: string): Promise<string | undefined> {
  const res = await client.mcp(line);
  const text = await res.text();
  return text.trim() === "" ? undefined : text.trim();
}

/** The JSON-RPC error answer for a message the bridge could not deliver. */
function bridgeError(line: string, err: unknown): string | undefined {
  let id: unknown = null;
  try {
    const msg = JSON.parse(line);
    if (msg === null || typeof msg !== "object" || !("id" in msg)) return undefined;
    id = msg.id;
  } catch {
    // Not JSON: answer with id null.
  }
  return JSON.stringify({
    jsonrpc: "2.0",
    id,
    error: { code: -32603, message: err instanceof Error ? err.message : String(err) },
  });
}

/** Registers `volar mcp`. */
export function registerMcp(program: Command, io: Io, input: McpInput = Deno.stdin): void {
  program.command("mcp").description(
    "serve volantd's MCP tools over stdio (for MCP clients that start a command)",
  )
    .action(async (_flags, cmd) => {
      const globals = globalFlags(cmd);
      await withClient(globals, io, async (client) => {
        for await (const line of bodyLines(new Response(input.readable))) {
          let answer: string | undefined;
          try {
            answer = await forward(client, line);
          } catch (err) {
            answer = bridgeError(line, err);
          }
          if (answer !== undefined) io.out(`${answer.replaceAll("\n", " ")}\n`);
        }
      });
    });
}
