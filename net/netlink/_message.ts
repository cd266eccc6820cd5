/**
 * Netlink message encoding and decoding: `nlmsghdr`, `rtattr` (nesting included) and the
 * three rtnetlink bodies used here, `ifinfomsg` (16 bytes), `ifaddrmsg` (8) and `rtmsg` (12).
 * Integers are in host byte order (as the kernel expects); IP addresses are raw network-order
 * bytes. Pure: no I/O.
 *
 * @module
 */
import {
  NLA_F_NESTED,
  NLA_TYPE_MASK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
} from "./_constants.ts";

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `n` rounded up to the netlink alignment of 4 bytes. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Builds one netlink message: a 16-byte `nlmsghdr`, a fixed body and attributes. The length
 * and sequence number are filled in by {@linkcode MessageBuilder.finish}.
 *
 * @example
 * ```ts
 * import { MessageBuilder } from "./_message.ts";
 * const msg = new MessageBuilder(16, 0x5).u8(0).u8(0).u16(0).i32(0).u32(0).u32(0)
 *   .string(3, "br0").finish(7);
 * console.assert(msg.length === 16 + 16 + 8);
 * ```
 */
export class MessageBuilder {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #len = NLMSG_HDRLEN;
  #nests: number[] = [];

  /** Starts a message of `type` with header `flags` (more can be added with {@linkcode flags}). */
  constructor(type: number, flags = 0) {
    this.#view.setUint16(4, type, LITTLE_ENDIAN);
    this.#view.setUint16(6, flags, LITTLE_ENDIAN);
  }

  /** Adds `flags` to the header flags. */
  flags(flags: number): this {
    this.#view.setUint16(6, this.#view.getUint16(6, LITTLE_ENDIAN) | flags, LITTLE_ENDIAN);
    return this;
  }

  #reserve(n: number): number {
    const at = this.#len;
    if (at + n > this.#buf.length) {
      const bigger = new Uint8Array(Math.max(this.#buf.length * 2, at + n + 64));
      bigger.set(this.#buf);
      this.#buf = bigger;
      this.#view = new DataView(bigger.buffer);
    }
    this.#len += n;
    return at;
  }

  /** Appends one unsigned byte. */
  u8(value: number): this {
    this.#view.setUint8(this.#reserve(1), value);
    return this;
  }

  /** Appends a host-order u16. */
  u16(value: number): this {
    this.#view.setUint16(this.#reserve(2), value, LITTLE_ENDIAN);
    return this;
  }

  /** Appends a host-order u32. */
  u32(value: number): this {
    this.#view.setUint32(this.#reserve(4), value >>> 0, LITTLE_ENDIAN);
    return this;
  }

  /** Appends a host-order i32. */
  i32(value: number): this {
    this.#view.setInt32(this.#reserve(4), value, LITTLE_ENDIAN);
    return this;
  }

  /** Appends raw bytes. */
  bytes(value: Uint8Array): this {
    this.#buf.set(value, this.#reserve(value.length));
    return this;
  }

  #pad(): void {
    const padded = align4(this.#len);
    if (padded > this.#len) this.#reserve(padded - this.#len);
  }

  /** Appends an `rtattr` whose payload is `payload` (length unpadded, then padded to 4). */
  attr(type: number, payload: Uint8Array): this {
    this.#pad();
    const at = this.#reserve(4);
    this.#view.setUint16(at, 4 + payload.length, LITTLE_ENDIAN);
    this.#view.setUint16(at + 2, type, LITTLE_ENDIAN);
    this.bytes(payload);
    this.#pad();
    return this;
  }

  /** Appends an attribute holding a host-order u32. */
  attrU32(type: number, value: number): this {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, value >>> 0, LITTLE_ENDIAN);
    return this.attr(type, payload);
  }

  /** Appends an attribute holding a NUL-terminated UTF-8 string. */
  string(type: number, value: string): this {
    const text = new TextEncoder().encode(value);
    const payload = new Uint8Array(text.length + 1);
    payload.set(text);
    return this.attr(type, payload);
  }

  /** Opens a nested attribute; everything appended until {@linkcode end} is inside it. */
  begin(type: number, nestedFlag = true): this {
    this.#pad();
    const at = this.#reserve(4);
    this.#view.setUint16(at + 2, nestedFlag ? type | NLA_F_NESTED : type, LITTLE_ENDIAN);
    this.#nests.push(at);
    return this;
  }

  /** Closes the innermost nested attribute opened by {@linkcode begin}. */
  end(): this {
    const at = this.#nests.pop();
    if (at === undefined) throw new Error("MessageBuilder.end() without begin()");
    this.#pad();
    this.#view.setUint16(at, this.#len - at, LITTLE_ENDIAN);
    return this;
  }

  /** The finished message with its length and sequence number set. */
  finish(seq: number): Uint8Array<ArrayBuffer> {
    if (this.#nests.length > 0) throw new Error("MessageBuilder.finish() with an open nest");
    this.#pad();
    this.#view.setUint32(0, this.#len, LITTLE_ENDIAN);
    this.#view.setUint32(8, seq >>> 0, LITTLE_ENDIAN);
    this.#view.setUint32(12, 0, LITTLE_ENDIAN);
    return this.#buf.slice(0, this.#len);
  }
}

/** One decoded netlink message: its header fields and the bytes after the header. */
export interface NetlinkMessage {
  /** `nlmsg_type`. */
  type: number;
  /** `nlmsg_flags`. */
  flags: number;
  /** `nlmsg_seq`. */
  seq: number;
  /** `nlmsg_pid`. */
  pid: number;
  /** The body (everything after the 16-byte header, up to `nlmsg_len`). */
  payload: Uint8Array;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Splits a datagram received from a netlink socket into its messages. Throws on a truncated
 * or malformed header rather than returning garbage.
 *
 * @example
 * ```ts
 * import { MessageBuilder, parseMessages } from "./_message.ts";
 * const [m] = parseMessages(new MessageBuilder(3, 2).i32(0).finish(9));
 * console.assert(m?.type === 3 && m.seq === 9 && m.payload.length === 4);
 * ```
 */
export function parseMessages(datagram: Uint8Array): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  const dv = view(datagram);
  let at = 0;
  while (at + NLMSG_HDRLEN <= datagram.length) {
    const len = dv.getUint32(at, LITTLE_ENDIAN);
    if (len < NLMSG_HDRLEN || at + len > datagram.length) {
      throw new Error(
        `Malformed netlink message at offset ${at}: length ${len}, datagram ${datagram.length}`,
      );
    }
    out.push({
      type: dv.getUint16(at + 4, LITTLE_ENDIAN),
      flags: dv.getUint16(at + 6, LITTLE_ENDIAN),
      seq: dv.getUint32(at + 8, LITTLE_ENDIAN),
      pid: dv.getUint32(at + 12, LITTLE_ENDIAN),
      payload: datagram.subarray(at + NLMSG_HDRLEN, at + len),
    });
    at += align4(len);
  }
  return out;
}

/**
 * Decodes a run of `rtattr`s into a map from type (flag bits masked off) to payload. When a
 * type repeats, the first occurrence wins.
 *
 * @example
 * ```ts
 * import { MessageBuilder, parseAttrs } from "./_message.ts";
 * const msg = new MessageBuilder(0, 0).string(3, "eth0").attrU32(4, 1500).finish(0);
 * const attrs = parseAttrs(msg.subarray(16));
 * console.assert(attrs.get(4)?.length === 4);
 * ```
 */
export function parseAttrs(bytes: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const dv = view(bytes);
  let at = 0;
  while (at + 4 <= bytes.length) {
    const len = dv.getUint16(at, LITTLE_ENDIAN);
    if (len < 4 || at + len > bytes.length) break;
    const type = dv.getUint16(at + 2, LITTLE_ENDIAN) & NLA_TYPE_MASK;
    if (!out.has(type)) out.set(type, bytes.subarray(at + 4, at + len));
    at += align4(len);
  }
  return out;
}

/** A host-order u32 attribute payload, or `undefined` when absent or short. */
export function attrU32(attrs: Map<number, Uint8Array>, type: number): number | undefined {
  const p = attrs.get(type);
  return p === undefined || p.length < 4 ? undefined : view(p).getUint32(0, LITTLE_ENDIAN);
}

/** A u8 attribute payload, or `undefined` when absent. */
export function attrU8(attrs: Map<number, Uint8Array>, type: number): number | undefined {
  return attrs.get(type)?.[0];
}

/** A NUL-terminated string attribute payload, or `undefined` when absent. */
export function attrString(attrs: Map<number, Uint8Array>, type: number): string | undefined {
  const p = attrs.get(type);
  if (p === undefined) return undefined;
  const nul = p.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? p : p.subarray(0, nul));
}

/** `struct ifinfomsg`: a link. */
export interface IfInfoMsg {
  /** Address family (`AF_UNSPEC`). */
  family: number;
  /** Device type (`ARPHRD_*`). */
  type: number;
  /** Interface index. */
  index: number;
  /** `IFF_*` flags. */
  flags: number;
  /** Mask of the flags to change. */
  change: number;
}

/** Appends an `ifinfomsg` body. */
export function writeIfInfoMsg(b: MessageBuilder, m: Partial<IfInfoMsg>): MessageBuilder {
  return b.u8(m.family ?? 0).u8(0).u16(m.type ?? 0).i32(m.index ?? 0).u32(m.flags ?? 0)
    .u32(m.change ?? 0);
}

/** Decodes an `ifinfomsg` body and the attributes after it. */
export function readIfInfoMsg(payload: Uint8Array): IfInfoMsg & { attrs: Map<number, Uint8Array> } {
  const dv = view(payload);
  return {
    family: dv.getUint8(0),
    type: dv.getUint16(2, LITTLE_ENDIAN),
    index: dv.getInt32(4, LITTLE_ENDIAN),
    flags: dv.getUint32(8, LITTLE_ENDIAN),
    change: dv.getUint32(12, LITTLE_ENDIAN),
    attrs: parseAttrs(payload.subarray(16)),
  };
}

/** `struct ifaddrmsg`: an address. */
export interface IfAddrMsg {
  /** `AF_INET` or `AF_INET6`. */
  family: number;
  /** Prefix length. */
  prefixLength: number;
  /** `IFA_F_*` flags. */
  flags: number;
  /** `RT_SCOPE_*`. */
  scope: number;
  /** Interface index. */
  index: number;
}

/** Appends an `ifaddrmsg` body. */
export function writeIfAddrMsg(b: MessageBuilder, m: IfAddrMsg): MessageBuilder {
  return b.u8(m.family).u8(m.prefixLength).u8(m.flags).u8(m.scope).u32(m.index);
}

/** Decodes an `ifaddrmsg` body and the attributes after it. */
export function readIfAddrMsg(payload: Uint8Array): IfAddrMsg & { attrs: Map<number, Uint8Array> } {
  const dv = view(payload);
  return {
    family: dv.getUint8(0),
    prefixLength: dv.getUint8(1),
    flags: dv.getUint8(2),
    scope: dv.getUint8(3),
    index: dv.getUint32(4, LITTLE_ENDIAN),
    attrs: parseAttrs(payload.subarray(8)),
  };
}

/** `struct rtmsg`: a route. */
export interface RtMsg {
  /** Address family. */
  family: number;
  /** Destination prefix length. */
  dstLength: number;
  /** Source prefix length. */
  srcLength: number;
  /** Type of service. */
  tos: number;
  /** Routing table (`RT_TABLE_MAIN` = 254). */
  table: number;
  /** Who installed the route (`RTPROT_*`). */
  protocol: number;
  /** `RT_SCOPE_*`. */
  scope: number;
  /** `RTN_*`. */
  type: number;
  /** `RTM_F_*` flags. */
  flags: number;
}

/** Appends an `rtmsg` body. */
export function writeRtMsg(b: MessageBuilder, m: RtMsg): MessageBuilder {
  return b.u8(m.family).u8(m.dstLength).u8(m.srcLength).u8(m.tos).u8(m.table).u8(m.protocol)
    .u8(m.scope).u8(m.type).u32(m.flags);
}

/** Decodes an `rtmsg` body and the attributes after it. */
export function readRtMsg(payload: Uint8Array): RtMsg & { attrs: Map<number, Uint8Array> } {
  const dv = view(payload);
  return {
    family: dv.getUint8(0),
    dstLength: dv.getUint8(1),
    srcLength: dv.getUint8(2),
    tos: dv.getUint8(3),
    table: dv.getUint8(4),
    protocol: dv.getUint8(5),
    scope: dv.getUint8(6),
    type: dv.getUint8(7),
    flags: dv.getUint32(8, LITTLE_ENDIAN),
    attrs: parseAttrs(payload.subarray(12)),
  };
}

/** The errno (negative or 0) of an `NLMSG_ERROR` payload and the kernel's extended message. */
export function readError(msg: NetlinkMessage): { error: number; extack: string | undefined } {
  const dv = view(msg.payload);
  const error = msg.payload.length >= 4 ? dv.getInt32(0, LITTLE_ENDIAN) : -71;
  let extack: string | undefined;
  if ((msg.flags & NLM_F_ACK_TLVS) !== 0 && msg.payload.length >= 4 + NLMSG_HDRLEN) {
    // NLM_F_ACK_TLVS: TLVs follow the echoed request (only its header when NLM_F_CAPPED).
    const echoedLen = (msg.flags & NLM_F_CAPPED) !== 0
      ? NLMSG_HDRLEN
      : dv.getUint32(4, LITTLE_ENDIAN);
    const tlvs = parseAttrs(msg.payload.subarray(4 + align4(echoedLen)));
    extack = attrString(tlvs, NLMSGERR_ATTR_MSG);
  }
  return { error, extack };
}

/** The errno (negative or 0) of an `NLMSG_DONE` payload and the kernel's extended message. */
export function readDone(msg: NetlinkMessage): { error: number; extack: string | undefined } {
  if (msg.payload.length < 4) return { error: 0, extack: undefined };
  const error = view(msg.payload).getInt32(0, LITTLE_ENDIAN);
  const extack = (msg.flags & NLM_F_ACK_TLVS) !== 0
    ? attrString(parseAttrs(msg.payload.subarray(4)), NLMSGERR_ATTR_MSG)
    : undefined;
  return { error, extack };
}
