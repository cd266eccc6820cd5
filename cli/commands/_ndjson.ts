/**
 * Reading the daemon's NDJSON progress streams (`?progress=ndjson`): `progress` events while it
 * works, then one `done` event with the result, or an `error` event with the daemon's error.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";

/** One line of a progress stream. */
export interface StreamEvent {
  type: "progress" | "done" | "error";
  error?: { code: string; message: string; details?: Record<string, unknown> };
  [key: string]: unknown;
}

/**
 * Calls `onProgress` for each progress event and resolves to the `done` event; rejects with the
 * daemon's error for an `error` event, or `internal` when the stream ends without a result.
 *
 * @example
 * ```ts
 * import { readProgressStream } from "./_ndjson.ts";
 * const body = '{"type":"progress","n":1}\n{"type":"done","value":42}\n';
 * const seen: unknown[] = [];
 * const done = await readProgressStream(new Response(body), (e) => seen.push(e.n));
 * console.assert(done.value === 42 && seen[0] === 1);
 * ```
 */
export async function readProgressStream(
  res: Response,
  onProgress: (event: StreamEvent) => void,
): Promise<StreamEvent> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim() === "") continue;
      const event = JSON.parse(line) as StreamEvent;
      if (event.type === "progress") onProgress(event);
      else if (event.type === "error") {
        await reader.cancel().catch(() => {});
        throw VolantError.fromBody(event.error as Parameters<typeof VolantError.fromBody>[0]);
      } else if (event.type === "done") {
        await reader.cancel().catch(() => {});
        return event;
      }
    }
  }
  throw new VolantError("internal", "volantd ended the stream without a result");
}
