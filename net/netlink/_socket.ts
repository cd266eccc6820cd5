/**
 * A synchronous rtnetlink socket: sends one request at a time, matches replies by sequence
 * number, waits for the ACK (or error), and collects multi-part dumps up to `NLMSG_DONE`.
 * The socket belongs to the network namespace of the thread that opened it.
 *
 * @module
 */
import { closeQuietly, errno, libc, SOCK_CLOEXEC } from "../libc.ts";
import {
  AF_NETLINK,
  MSG_PEEK,
  MSG_TRUNC,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_ROUTE,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  SO_RCVTIMEO,
  SOCK_RAW,
  SOL_NETLINK,
  SOL_SOCKET,
} from "./_constants.ts";
import {
  type MessageBuilder,
  type NetlinkMessage,
  parseMessages,
  readDone,
  readError,
} from "./_message.ts";

const EINTR = 4;
const EAGAIN = 11;
const ETIMEDOUT = 110;
const EPROTO = 71;
const DUMP_RETRIES = 5;

/** A request the kernel refused, or a socket call that failed: errno plus the kernel's text. */
export class KernelError extends Error {
  /** Positive errno. */
  readonly errno: number;
  /** The kernel's extended ack message, if any. */
  readonly extack: string | undefined;

  /** Creates the error. */
  constructor(errno: number, message: string, extack?: string) {
    super(message);
    this.name = "KernelError";
    this.errno = Math.abs(errno);
    this.extack = extack;
  }
}

function setIntOption(fd: number, level: number, option: number, value: number): void {
  const v = new Uint8Array(new Int32Array([value]).buffer);
  libc().setsockopt(fd, level, option, v, 4);
}

/**
 * An rtnetlink socket. Use {@linkcode withNetlink} rather than opening one by hand.
 *
 * @example
 * ```ts ignore
 * import { NetlinkSocket } from "./_socket.ts";
 * using sock = NetlinkSocket.open();
 * ```
 */
export class NetlinkSocket {
  #fd: number;
  #seq: number;
  #buf = new Uint8Array(32 * 1024);
  #timeoutMs: number;
  #datagrams = 0;

  private constructor(fd: number, timeoutMs: number) {
    this.#fd = fd;
    this.#timeoutMs = timeoutMs;
    this.#seq = (Date.now() & 0xffff) << 8;
  }

  /**
   * Opens a `NETLINK_ROUTE` socket in the calling thread's network namespace, with extended
   * acks on and a receive timeout of `timeoutMs` (a safety net: rtnetlink answers at once).
   */
  static open(timeoutMs = 5000): NetlinkSocket {
    const fd = libc().socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
      const e = errno();
      throw new KernelError(e, `socket(AF_NETLINK, NETLINK_ROUTE) failed`);
    }
    setIntOption(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
    setIntOption(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
    const tv = new BigInt64Array([
      BigInt(Math.floor(timeoutMs / 1000)),
      BigInt((timeoutMs % 1000) * 1000),
    ]);
    libc().setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, new Uint8Array(tv.buffer), 16);
    return new NetlinkSocket(fd, timeoutMs);
  }

  /** Sends a request that changes something and waits for its ACK; throws on an error reply. */
  request(message: MessageBuilder): void {
    this.#exchange(message, NLM_F_REQUEST | NLM_F_ACK);
  }

  /** Sends a `GET` for one object and returns the reply messages (before the ACK). */
  get(message: MessageBuilder): NetlinkMessage[] {
    return this.#exchange(message, NLM_F_REQUEST | NLM_F_ACK).messages;
  }

  /** Sends an `NLM_F_DUMP` request and returns every message up to `NLMSG_DONE`. */
  dump(message: MessageBuilder): NetlinkMessage[] {
    for (let attempt = 0;; attempt++) {
      const { messages, interrupted } = this.#exchange(message, NLM_F_REQUEST | NLM_F_DUMP);
      if (!interrupted || attempt >= DUMP_RETRIES) return messages;
    }
  }

  #exchange(
    message: MessageBuilder,
    flags: number,
  ): { messages: NetlinkMessage[]; interrupted: boolean } {
    const seq = this.#seq = (this.#seq + 1) >>> 0;
    const bytes = message.flags(flags).finish(seq);
    const sent = Number(libc().send(this.#fd, bytes, BigInt(bytes.length), 0));
    if (sent !== bytes.length) {
      const e = sent < 0 ? errno() : EPROTO;
      throw new KernelError(e, `send() to netlink failed (${sent} of ${bytes.length} bytes)`);
    }
    const messages: NetlinkMessage[] = [];
    let interrupted = false;
    for (;;) {
      for (const msg of this.#receive()) {
        if (msg.seq !== seq) continue; // a stale reply to an earlier request
        if (msg.type === NLMSG_ERROR) {
          const { error, extack } = readError(msg);
          if (error !== 0) throw new KernelError(error, "netlink request refused", extack);
          return { messages, interrupted };
        }
        if (msg.type === NLMSG_DONE) {
          const { error, extack } = readDone(msg);
          if (error < 0) throw new KernelError(error, "netlink dump failed", extack);
          return { messages, interrupted };
        }
        if (msg.type === NLMSG_NOOP) continue;
        if ((msg.flags & NLM_F_DUMP_INTR) !== 0) interrupted = true;
        messages.push(msg);
      }
    }
  }

  #receive(): NetlinkMessage[] {
    for (;;) {
      const peek = Number(
        libc().recv(this.#fd, this.#buf, BigInt(this.#buf.length), MSG_PEEK | MSG_TRUNC),
      );
      if (peek < 0) {
        const e = errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) {
          throw new KernelError(ETIMEDOUT, `no netlink reply within ${this.#timeoutMs} ms`);
        }
        throw new KernelError(e, "recv() from netlink failed");
      }
      if (peek > this.#buf.length) this.#buf = new Uint8Array(peek);
      const n = Number(libc().recv(this.#fd, this.#buf, BigInt(this.#buf.length), 0));
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        throw new KernelError(e, "recv() from netlink failed");
      }
      this.#datagrams++;
      return parseMessages(this.#buf.slice(0, n));
    }
  }

  /** How many datagrams this socket has received (tests use it to see multi-part dumps). */
  get datagrams(): number {
    return this.#datagrams;
  }

  /** Closes the socket (idempotent). */
  close(): void {
    closeQuietly(this.#fd);
    this.#fd = -1;
  }

  /** Closes the socket at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens a netlink socket in the calling thread's current network namespace, runs `fn` with it
 * and closes it. Each operation opens its own socket so it always acts on the namespace the
 * thread is in at that moment (see `withNetns`).
 */
export function withNetlink<T>(fn: (sock: NetlinkSocket) => T): T {
  const sock = NetlinkSocket.open();
  try {
    return fn(sock);
  } finally {
    sock.close();
  }
}
