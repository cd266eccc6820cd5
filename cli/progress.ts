/**
 * Progress on stderr while volar waits: a spinner with the elapsed time when stderr is a
 * terminal, plain lines otherwise (logs, CI), nothing when quiet. stdout stays clean for the
 * result.
 *
 * @module
 */
import type { Io } from "./io.ts";

/** A running progress display. */
export interface Progress {
  /** Shows a new step (a new line in plain mode; the spinner's label on a terminal). */
  update(label: string): void;
  /** Stops the display and clears the spinner line. Safe to call twice. */
  stop(): void;
}

/** Options of {@linkcode startProgress}. */
export interface ProgressOptions {
  /** Print nothing (e.g. `--json` when stderr is not a terminal). */
  quiet?: boolean;
  /** Spinner frame interval in ms; default 100. */
  intervalMs?: number;
}

/** The spinner's frames. */
export const SPINNER_FRAMES: readonly string[] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

const CLEAR_LINE = "\r\x1b[2K";

/**
 * Starts showing `label` on stderr.
 *
 * @example
 * ```ts
 * import { startProgress } from "./progress.ts";
 * import type { Io } from "./io.ts";
 * let text = "";
 * const io: Io = {
 *   out: () => {},
 *   err: (t) => void (text += t),
 *   outIsTerminal: false,
 *   errIsTerminal: false,
 *   env: () => undefined,
 *   now: Date.now,
 * };
 * const p = startProgress(io, "Creating web");
 * p.update("Waiting for web to be running");
 * p.stop();
 * console.assert(text === "Creating web…\nWaiting for web to be running…\n");
 * ```
 */
export function startProgress(io: Io, label: string, options: ProgressOptions = {}): Progress {
  if (options.quiet) return { update() {}, stop() {} };
  if (!io.errIsTerminal) {
    io.err(`${label}…\n`);
    return { update: (next) => io.err(`${next}…\n`), stop() {} };
  }
  const started = io.now();
  let frame = 0;
  let current = label;
  const render = () => {
    const elapsed = ((io.now() - started) / 1000).toFixed(1);
    io.err(`${CLEAR_LINE}${SPINNER_FRAMES[frame % SPINNER_FRAMES.length]} ${current}… ${elapsed}s`);
    frame++;
  };
  render();
  let timer: ReturnType<typeof setInterval> | undefined = setInterval(
    render,
    options.intervalMs ?? 100,
  );
  return {
    update(next) {
      current = next;
      if (timer !== undefined) render();
    },
    stop() {
      if (timer === undefined) return;
      clearInterval(timer);
      timer = undefined;
      io.err(CLEAR_LINE);
    },
  };
}
