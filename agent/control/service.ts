/**
 * The control channel as kestrel runs it: find the port, open it once for kestrel's whole life
 * (raw and exclusive, `tty.ts`: the workload cannot open it beside kestrel), and serve
 * identities on it until power-off. Without the port (a VMM that offers none) nothing happens.
 *
 * @module
 */
import {
  type ControlStream,
  type IdentityHandler,
  serveControl,
  type ServeControlOptions,
} from "./channel.ts";
import { findControlPort, type FindPortOptions } from "./port.ts";
import { openRawTty } from "./tty.ts";

/** An open port: the stream and how to close it. */
export type OpenPort = ControlStream & { close(): void };

/** Options of {@linkcode startControl}. */
export interface StartControlOptions
  extends FindPortOptions, Pick<ServeControlOptions, "eofRetryMs" | "sleep" | "maxLine"> {
  /** kestrel's console log. */
  log: (message: string) => void;
  /** Only say whether the port exists. */
  dryRun?: boolean;
  /** Opens the port (tests); default {@linkcode openRawTty}. */
  open?: (path: string) => Promise<OpenPort>;
}

/** A control channel being served. */
export interface ControlChannel {
  /** The port's device (`/dev/ttyS1`). */
  readonly path: string;
  /** Stops serving (an identity being applied finishes first) and closes the port. */
  stop(): Promise<void>;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Finds the control port and serves `handle` on it; resolves to the channel, or `undefined`
 * when there is no port, it cannot be opened (logged), or in a dry run (which logs whether the
 * port exists). Never throws.
 *
 * @example
 * ```ts ignore
 * import { startControl } from "./service.ts";
 * const channel = await startControl((msg) => applyIdentity(msg, deps), { log: system.log });
 * await channel?.stop();
 * ```
 */
export async function startControl(
  handle: IdentityHandler,
  options: StartControlOptions,
): Promise<ControlChannel | undefined> {
  const { log } = options;
  const path = await findControlPort(options);
  if (options.dryRun) {
    log(
      path === undefined
        ? "dry run: no control port: a clone of this VM could not take a new identity"
        : `dry run: would take new identities (clones) on control port ${path}`,
    );
    return undefined;
  }
  if (path === undefined) return undefined;
  const open = options.open ?? ((p) => Promise.resolve().then(() => openRawTty(p)));
  let port: OpenPort;
  try {
    port = await open(path);
  } catch (err) {
    log(
      `control port ${path}: cannot open it (${message(err)}); a clone of this VM cannot take ` +
        "a new identity",
    );
    return undefined;
  }
  log(`control port ${path}`);
  const abort = new AbortController();
  const served = serveControl(port, handle, {
    signal: abort.signal,
    log,
    ...(options.eofRetryMs === undefined ? {} : { eofRetryMs: options.eofRetryMs }),
    ...(options.sleep === undefined ? {} : { sleep: options.sleep }),
    ...(options.maxLine === undefined ? {} : { maxLine: options.maxLine }),
  });
  let stopping: Promise<void> | undefined;
  return {
    path,
    stop() {
      stopping ??= (async () => {
        abort.abort();
        await served;
        try {
          port.close();
        } catch {
          // Already closed.
        }
      })();
      return stopping;
    },
  };
}
