/**
 * Long operations answered as NDJSON (`?progress=ndjson`): `{type: "progress", …}` lines while
 * the work runs (at most one each 100 ms), then `{type: "done", <key>: result}` or
 * `{type: "error", error: {code, message, details}}`. The work finishes even when the client
 * goes away.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";

/**
 * The streaming answer for `run`; its result goes under `key` in the `done` line.
 *
 * @example
 * ```ts
 * import { ndjsonResponse } from "./_ndjson.ts";
 * const res = ndjsonResponse("answer", async (progress) => {
 *   progress({ step: 1 });
 *   return 42;
 * });
 * const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
 * console.assert(lines.at(-1).answer === 42);
 * ```
 */
export function ndjsonResponse(
  key: string,
  run: (onProgress: (p: object) => void) => Promise<unknown>,
): Response {
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      const send = (value: unknown) => {
        try {
          controller.enqueue(encoder.encode(`${JSON.stringify(value)}\n`));
        } catch {
          // The client went away; the work still finishes.
        }
      };
      let last = 0;
      try {
        const result = await run((p) => {
          const now = performance.now();
          if (now - last < 100) return;
          last = now;
          send({ type: "progress", ...p });
        });
        send({ type: "done", [key]: result });
      } catch (err) {
        const body = err instanceof VolantError
          ? err.toJSON()
          : { code: "internal", message: String(err) };
        send({ type: "error", error: body });
      }
      try {
        controller.close();
      } catch {
        // Already closed by the client.
      }
    },
  });
  return new Response(stream, { status: 200, headers: { "content-type": "application/x-ndjson" } });
}
