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
 * The non-empty records of a streamed body, as they arrive: lines by default (NDJSON: one JSON
 * value a line), or blocks with `separator` `"\n\n"` (server-sent events).
 *
 * @example
 * ```ts
 * import { bodyLines } from "./_ndjson.ts";
 * const lines: string[] = [];
 * for await (const line of bodyLines(new Response("a\n\nb\n"))) lines.push(line);
 * console.assert(lines.join(",") === "a,b");
 * ```
 */
export async function* bodyLines(res: Response, separator = "\n"): AsyncGenerator<string> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let nl: number;
      while ((nl = buffered.indexOf(separator)) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + separator.length);
        if (line.trim() !== "") yield line;
      }
    }
    if (buffered.trim() !== "") yield buffered;
  } finally {
    await reader.cancel().catch(() => {});
  }
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
  for await (const line of bodyLines(res)) {
    const event = JSON.parse(line) as StreamEvent;
    if (event.type === "progress") onProgress(event);
    else if (event.type === "error") {
      throw VolantError.fromBody(event.error as Parameters<typeof VolantError.fromBody>[0]);
    } else if (event.type === "done") return event;
  }
  throw new VolantError("internal", "volantd ended the stream without a result");
}
