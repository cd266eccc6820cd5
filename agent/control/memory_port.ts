/**
 * An in-memory control port for tests. While the host end is not connected a read returns end
 * of file at once (the channel must wait and read again, as on a port whose other end went
 * away); once connected, a read waits for the host's bytes. Records whether a write ever overlapped a read.
 *
 * @module
 */
import type { OpenPort } from "./service.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The host's end of a {@linkcode memoryPort}, and what the test can observe. */
export interface MemoryHost {
  /** Connects the host end (reads stop returning end of file). */
  connect(): void;
  /** Disconnects it (a pending read returns end of file). */
  disconnect(): void;
  /** Sends bytes (or text) to the guest. */
  send(data: string | Uint8Array): void;
  /**
   * The next complete line the guest wrote, without its newline; waits for it, and rejects
   * after `timeoutMs` (default 5000) so that a test fails instead of hanging.
   */
  nextLine(timeoutMs?: number): Promise<string>;
  /** Everything the guest wrote so far. */
  written(): string;
  /** How many reads returned end of file. */
  readonly eofs: number;
  /** Whether the guest ever wrote while one of its reads was pending. */
  readonly overlapped: boolean;
  /** Whether the guest closed the port. */
  readonly closed: boolean;
}

/** A port whose guest end is `port` and host end `host`; `readSize` caps each read. */
export function memoryPort(readSize = Infinity): { port: OpenPort; host: MemoryHost } {
  let connected = false;
  let inbox = new Uint8Array(0);
  let wake: (() => void) | undefined;
  let out = "";
  let outWake: (() => void) | undefined;
  let reading = false;
  const state = { eofs: 0, overlapped: false, closed: false };
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const port: OpenPort = {
    async read(p) {
      reading = true;
      try {
        while (connected && inbox.length === 0) await new Promise<void>((r) => wake = r);
        if (inbox.length === 0) {
          state.eofs++;
          return null;
        }
        const n = Math.min(p.length, inbox.length, readSize);
        p.set(inbox.subarray(0, n));
        inbox = inbox.slice(n);
        return n;
      } finally {
        reading = false;
      }
    },
    write(p) {
      if (reading) state.overlapped = true;
      out += decoder.decode(p);
      const w = outWake;
      outWake = undefined;
      w?.();
      return Promise.resolve(p.length);
    },
    close() {
      state.closed = true;
    },
  };
  let consumed = 0;
  const host: MemoryHost = {
    connect() {
      connected = true;
    },
    disconnect() {
      connected = false;
      notify();
    },
    send(data) {
      const bytes = typeof data === "string" ? encoder.encode(data) : data;
      const next = new Uint8Array(inbox.length + bytes.length);
      next.set(inbox);
      next.set(bytes, inbox.length);
      inbox = next;
      notify();
    },
    async nextLine(timeoutMs = 5000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const nl = out.indexOf("\n", consumed);
        if (nl >= 0) {
          const line = out.slice(consumed, nl);
          consumed = nl + 1;
          return line;
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const woken = await new Promise<boolean>((r) => {
          outWake = () => r(true);
          timer = setTimeout(() => r(false), Math.max(0, deadline - performance.now()));
        });
        clearTimeout(timer);
        if (!woken) {
          outWake = undefined;
          throw new Error(
            `no line from the guest within ${timeoutMs} ms (wrote ${JSON.stringify(out)})`,
          );
        }
      }
    },
    written: () => out,
    get eofs() {
      return state.eofs;
    },
    get overlapped() {
      return state.overlapped;
    },
    get closed() {
      return state.closed;
    },
  };
  return { port, host };
}
