/** Reading VM logs: waiting for kestrel's ready line, and the tail of a log for errors. @module */
import { fileSize, readRange } from "../../hypervisor/process/mod.ts";
import { READY_MARKER, ReadyReport } from "../../schema/mod.ts";

/** What {@linkcode waitForReadyLine} found. */
export type ReadyResult =
  | { kind: "ready"; report: ReadyReport | null; line: string }
  | { kind: "timeout" }
  | { kind: "aborted" };

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

/** Serial output read per poll, at most (a guest may write without end). */
const READ_BYTES = 1 << 20;
/** An unterminated line is kept up to this many characters (a ready line is far shorter). */
const MAX_LINE = 64 * 1024;

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
    const bytes = await readRange(path, position, READ_BYTES);
    position += bytes.length;
    partial += decoder.decode(bytes, { stream: true });
    const lines = partial.split("\n");
    partial = (lines.pop() ?? "").slice(-MAX_LINE);
    for (const raw of lines) {
      const line = raw.replace(/\r$/, "").replace(/^\r/, "");
      if (line.startsWith(READY_MARKER)) {
        return { kind: "ready", report: parseReadyLine(line), line };
      }
    }
    const left = deadline - performance.now();
    if (left <= 0) return { kind: "timeout" };
    // A full read means more is waiting: read on at once.
    if (bytes.length < READ_BYTES) await sleep(Math.min(pollMs, left), options.signal);
  }
}

/** The last `maxLines` non-empty lines of a text file (at most 16 KiB read); "" when missing. */
export async function tailLines(path: string, maxLines = 5): Promise<string> {
  const size = await fileSize(path);
  const start = Math.max(0, size - 16 * 1024);
  const text = new TextDecoder().decode(await readRange(path, start, 16 * 1024));
  return text.split("\n").map((l) => l.replace(/\r/g, "").trimEnd()).filter((l) => l !== "")
    .slice(-maxLines).join("\n");
}

/**
 * Rotates `path` when it is larger than `maxBytes`: `path.1` … `path.<files-1>` shift up, the
 * last `maxBytes` of `path` become `path.1`, and `path` is truncated in place. The VMM keeps
 * its descriptor: QEMU appends (`O_APPEND`), so its next write lands at the new end. (A VMM that
 * does not append writes past a hole: the file's apparent size grows, its disk use does not.)
 * With `files` 1 nothing is kept. Resolves to whether it rotated. Never throws.
 */
export async function rotateLog(path: string, maxBytes: number, files: number): Promise<boolean> {
  try {
    const size = await fileSize(path);
    if (size <= maxBytes) return false;
    for (let i = files - 1; i >= 2; i--) {
      await Deno.rename(`${path}.${i - 1}`, `${path}.${i}`).catch(() => {});
    }
    if (files >= 2) {
      const keep = await readRange(path, Math.max(0, size - maxBytes), maxBytes);
      await Deno.writeFile(`${path}.1`, keep, { mode: 0o640 });
    }
    await Deno.truncate(path, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks `path` every `everyMs` and rotates it past `maxBytes` (see {@linkcode rotateLog}) until
 * `signal` aborts: a guest that writes to its console without end cannot fill the host's disk.
 */
export function capLog(
  path: string,
  options: { maxBytes: number; files: number; everyMs: number; signal: AbortSignal },
): void {
  const timer = setInterval(() => {
    rotateLog(path, options.maxBytes, options.files);
  }, options.everyMs);
  options.signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
