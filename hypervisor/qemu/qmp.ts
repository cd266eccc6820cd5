/**
 * A QMP (QEMU Machine Protocol) client over a unix socket: reads the greeting, negotiates
 * capabilities, runs commands matched to their replies by `id`, and sets asynchronous events
 * aside. QEMU's errors become `vmm_failed` {@linkcode VolantError}s carrying QEMU's own `desc`;
 * a command that gets no reply in time is a `timeout`.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";

/** QEMU's version as announced in the greeting. */
export interface QmpVersion {
  major: number;
  minor: number;
  micro: number;
  /** Distribution package string, e.g. `Debian 1:7.2+dfsg-7`. */
  package: string;
}

/** An asynchronous event (`SHUTDOWN`, `STOP`, `RESUME`, `POWERDOWN`, …). */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** Options of {@linkcode QmpClient.connect}. */
export interface QmpConnectOptions {
  /** Limit for the connect, the greeting and `qmp_capabilities`; default 5000 ms. */
  timeoutMs?: number;
  /** Default limit for each command; default 5000 ms. */
  commandTimeoutMs?: number;
  /** Receives every event as it arrives. */
  onEvent?: (event: QmpEvent) => void;
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

type Message = Record<string, unknown>;

/**
 * A connected, negotiated QMP session. One command at a time is typical; concurrent commands
 * are matched to their replies by id.
 *
 * @example
 * ```ts ignore
 * import { QmpClient } from "./qmp.ts";
 * const qmp = await QmpClient.connect("/run/volant/vms/web/qmp.sock");
 * try {
 *   const status = await qmp.execute<{ status: string }>("query-status");
 *   console.log(status.status);
 * } finally {
 *   qmp.close();
 * }
 * ```
 */
export class QmpClient {
  /** QEMU's version from the greeting. */
  readonly version: QmpVersion;
  /** Events received so far (oldest first). */
  readonly events: QmpEvent[] = [];
  #conn: Deno.UnixConn;
  #path: string;
  #commandTimeoutMs: number;
  #onEvent: ((event: QmpEvent) => void) | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  #closedError: Error | null = null;
  #reader: Promise<void>;

  private constructor(
    conn: Deno.UnixConn,
    path: string,
    version: QmpVersion,
    lines: AsyncIterator<Message>,
    options: QmpConnectOptions,
  ) {
    this.#conn = conn;
    this.#path = path;
    this.version = version;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 5_000;
    this.#onEvent = options.onEvent;
    this.#reader = this.#readLoop(lines);
  }

  /**
   * Connects to the QMP socket at `path`, reads the greeting and negotiates capabilities.
   * Errors: `vmm_failed` when nothing listens there or QEMU hangs up, `timeout` when it does
   * not greet in time.
   */
  static async connect(path: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    let conn: Deno.UnixConn;
    try {
      conn = await Deno.connect({ transport: "unix", path });
    } catch (err) {
      throw new VolantError(
        "vmm_failed",
        `Cannot connect to the QMP socket ${path}: ${(err as Error).message}`,
        { socket: path },
        { cause: err },
      );
    }
    const lines = readMessages(conn);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new VolantError(
            "timeout",
            `QEMU did not greet on its QMP socket ${path} within ${timeoutMs} ms`,
            { socket: path },
          ),
        );
      }, timeoutMs);
    });
    try {
      const greeting = await Promise.race([lines.next(), timeout]);
      const version = greetingVersion(greeting.done ? undefined : greeting.value, path);
      const client = new QmpClient(conn, path, version, lines, options);
      await Promise.race([client.execute("qmp_capabilities", undefined, { timeoutMs }), timeout]);
      return client;
    } catch (err) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The socket this client is connected to. */
  get path(): string {
    return this.#path;
  }

  /**
   * Runs `command` and resolves to its `return` value. QEMU's error reply rejects with a
   * `vmm_failed` error whose message carries QEMU's `desc`; no reply within the timeout
   * rejects with `timeout` and closes the session (its state is unknown then).
   */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        this.#closedError ??
          new VolantError("vmm_failed", `QMP session on ${this.#path} is closed`, {
            socket: this.#path,
          }),
      );
    }
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? this.#commandTimeoutMs;
    const message: Message = { execute: command, id };
    if (args !== undefined) message.arguments = args;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new VolantError(
            "timeout",
            `QEMU did not answer ${command} on ${this.#path} within ${timeoutMs} ms`,
            { socket: this.#path, command },
          ),
        );
        this.close();
      }, timeoutMs);
      this.#pending.set(id, {
        command,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer,
      });
      const bytes = new TextEncoder().encode(JSON.stringify(message) + "\n");
      writeAll(this.#conn, bytes).catch((err) => {
        this.#settle(id, undefined, this.#hangup(command, err));
      });
    });
  }

  /** Closes the session; pending commands fail with `vmm_failed`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer.
    }
    this.#failAll(
      this.#closedError ??
        new VolantError("vmm_failed", `QMP session on ${this.#path} was closed`, {
          socket: this.#path,
        }),
    );
  }

  /** Resolves once the reader has stopped (after {@linkcode close} or QEMU hanging up). */
  get done(): Promise<void> {
    return this.#reader;
  }

  #hangup(command: string | null, cause?: unknown): VolantError {
    const what = command ? ` before answering ${command}` : "";
    return new VolantError(
      "vmm_failed",
      `QEMU closed its QMP socket ${this.#path}${what} (it is exiting or has exited)`,
      { socket: this.#path },
      cause === undefined ? undefined : { cause },
    );
  }

  #settle(id: number, value: unknown, error?: Error): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    if (error) pending.reject(error);
    else pending.resolve(value);
  }

  #failAll(error: Error): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id, undefined, error);
  }

  async #readLoop(lines: AsyncIterator<Message>): Promise<void> {
    try {
      while (true) {
        const next = await lines.next();
        if (next.done) break;
        this.#dispatch(next.value);
      }
    } catch (err) {
      if (!this.#closed) this.#closedError = this.#hangup(null, err);
    }
    if (!this.#closed) {
      const first = this.#pending.values().next().value;
      this.#closedError ??= this.#hangup(first?.command ?? null);
      this.close();
    }
  }

  #dispatch(message: Message): void {
    if (typeof message.event === "string") {
      const event = message as unknown as QmpEvent;
      this.events.push(event);
      this.#onEvent?.(event);
      return;
    }
    const id = typeof message.id === "number" ? message.id : undefined;
    // Without an id (a parse error on QEMU's side) the reply belongs to the oldest command.
    const target = id ?? this.#pending.keys().next().value;
    if (target === undefined) return;
    const pending = this.#pending.get(target);
    if (!pending) return;
    if ("return" in message) {
      this.#settle(target, message.return);
      return;
    }
    const error = (message.error ?? {}) as { class?: string; desc?: string };
    this.#settle(
      target,
      undefined,
      new VolantError(
        "vmm_failed",
        `QEMU refused ${pending.command}: ${error.desc ?? JSON.stringify(message)}`,
        { command: pending.command, qmp_class: error.class ?? null },
      ),
    );
  }
}

function greetingVersion(message: Message | undefined, path: string): QmpVersion {
  const qmp = message?.QMP as { version?: { qemu?: Partial<QmpVersion>; package?: string } };
  const v = qmp?.version?.qemu;
  if (!v || typeof v.major !== "number") {
    throw new VolantError(
      "vmm_failed",
      message === undefined
        ? `QEMU closed its QMP socket ${path} before greeting (it is exiting or has exited)`
        : `Unexpected QMP greeting on ${path}: ${JSON.stringify(message).slice(0, 200)}`,
      { socket: path },
    );
  }
  return {
    major: v.major,
    minor: v.minor ?? 0,
    micro: v.micro ?? 0,
    package: (qmp.version?.package ?? "").trim(),
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await conn.write(bytes.subarray(done));
}

/** Splits the byte stream into JSON messages (QEMU ends each with CRLF). */
async function* readMessages(conn: Deno.Conn): AsyncGenerator<Message> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) return;
    text += decoder.decode(buffer.subarray(0, n), { stream: true });
    let newline: number;
    while ((newline = text.indexOf("\n")) >= 0) {
      const line = text.slice(0, newline).trim();
      text = text.slice(newline + 1);
      if (line === "") continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new VolantError("vmm_failed", `Unparsable QMP message: ${line.slice(0, 200)}`);
      }
      if (parsed !== null && typeof parsed === "object") yield parsed as Message;
    }
  }
}

/** Options of {@linkcode qmpExecute}. */
export interface QmpExecuteOptions {
  /** Limit for connecting plus running the command; default 5000 ms. */
  timeoutMs?: number;
}

/**
 * Connects to `path`, runs one command and closes the session.
 *
 * @example
 * ```ts ignore
 * import { qmpExecute } from "./qmp.ts";
 * await qmpExecute("/run/volant/vms/web/qmp.sock", "cont");
 * ```
 */
export async function qmpExecute<T = unknown>(
  path: string,
  command: string,
  args?: Record<string, unknown>,
  options: QmpExecuteOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const client = await QmpClient.connect(path, { timeoutMs, commandTimeoutMs: timeoutMs });
  try {
    return await client.execute<T>(command, args);
  } finally {
    client.close();
    await client.done;
  }
}
