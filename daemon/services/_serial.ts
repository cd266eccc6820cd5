/** Reading VM logs: waiting for kestrel's ready line, and the tail of a log for errors. @module */
import { concatBytes } from "../_bytes.ts";
import { READY_MARKER, ReadyReport } from "../../schema/mod.ts";

/** What {@linkcode waitForReadyLine} found. */
export type ReadyResult =
  | { kind: "ready"; report: ReadyReport | null; line: string }
  | { kind: "timeout" }
  | { kind: "aborted" };

/** Size of a file in bytes; 0 when it does not exist. */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(id);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const id = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

async function readFrom(path: string, offset: number): Promise<Uint8Array> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return new Uint8Array();
  }
  try {
    await file.seek(offset, Deno.SeekMode.Start);
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(64 * 1024);
    while (true) {
      const n = await file.read(buf);
      if (n === null || n === 0) break;
      chunks.push(buf.slice(0, n));
    }
    return concatBytes(chunks);
  } finally {
    file.close();
  }
}

/** Parses a ready line: `null` report when the JSON after the marker is not a ReadyReport. */
export function parseReadyLine(line: string): ReadyReport | null {
  const rest = line.slice(READY_MARKER.length).trim();
  try {
    const parsed = ReadyReport.safeParse(JSON.parse(rest));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * Polls `path` from byte `offset` for a line starting with `KESTREL_READY`, until `timeoutMs`
 * passes or `signal` aborts. A file that shrinks below the read position is read again from
 * the start. The file is read at least once, even when `timeoutMs` is already spent.
 */
export async function waitForReadyLine(
  path: string,
  offset: number,
  options: { timeoutMs: number; signal: AbortSignal; pollMs?: number },
): Promise<ReadyResult> {
  const deadline = performance.now() + options.timeoutMs;
  const pollMs = options.pollMs ?? 50;
  const decoder = new TextDecoder();
  let position = offset;
  let partial = "";
  while (true) {
    if (options.signal.aborted) return { kind: "aborted" };
    if (position > 0 && (await fileSize(path)) < position) {
      // The log was truncated or replaced (a VMM that does not append): read it from the start.
      position = 0;
      partial = "";
    }
    const bytes = await readFrom(path, position);
    position += bytes.length;
    partial += decoder.decode(bytes, { stream: true });
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const raw of lines) {
      const line = raw.replace(/\r$/, "").replace(/^\r/, "");
      if (line.startsWith(READY_MARKER)) {
        return { kind: "ready", report: parseReadyLine(line), line };
      }
    }
    const left = deadline - performance.now();
    if (left <= 0) return { kind: "timeout" };
    await sleep(Math.min(pollMs, left), options.signal);
  }
}

/** The last `maxLines` non-empty lines of a text file (at most 16 KiB read); "" when missing. */
export async function tailLines(path: string, maxLines = 5): Promise<string> {
  const size = await fileSize(path);
  const start = Math.max(0, size - 16 * 1024);
  const text = new TextDecoder().decode(await readFrom(path, start));
  return text.split("\n").map((l) => l.replace(/\r/g, "").trimEnd()).filter((l) => l !== "")
    .slice(-maxLines).join("\n");
}
