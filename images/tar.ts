/**
 * A streaming tar reader for image layers: POSIX ustar, GNU long names and link names
 * (`L`/`K`), base-256 numbers, and PAX extended headers (`x` per entry, `g` global) including
 * `path`, `linkpath`, `size`, `uid`, `gid`, `mtime`, `uname`, `gname` and `SCHILY.xattr.*`.
 * Header checksums are verified; a truncated or corrupt archive is an `invalid_argument`
 * error naming the byte offset.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";

/** What a tar entry is. */
export type TarEntryType =
  | "file"
  | "hardlink"
  | "symlink"
  | "chardev"
  | "blockdev"
  | "directory"
  | "fifo";

/** A tar entry's header, after PAX and GNU extensions are applied. */
export interface TarHeader {
  /** The member name as written (not cleaned: may hold `./`, `..` or a trailing `/`). */
  path: string;
  /** The entry's type. */
  type: TarEntryType;
  /** Permission bits including setuid, setgid and sticky (`0o7777`). */
  mode: number;
  /** Owner uid. */
  uid: number;
  /** Owner gid. */
  gid: number;
  /** Content size in bytes (0 for everything but files). */
  size: number;
  /** Modification time in seconds since the epoch (fractional with PAX). */
  mtime: number;
  /** Target of a symlink or hard link (empty otherwise). */
  linkname: string;
  /** Owner user name, informational. */
  uname: string;
  /** Owner group name, informational. */
  gname: string;
  /** Device major number (device nodes). */
  devmajor: number;
  /** Device minor number (device nodes). */
  devminor: number;
  /** Extended attributes from `SCHILY.xattr.<name>` PAX records. */
  xattrs: Record<string, Uint8Array>;
}

/** An entry of {@linkcode readTar}. */
export interface TarEntry extends TarHeader {
  /**
   * The entry's content in pieces. Read it before asking for the next entry; whatever is not
   * read is skipped.
   */
  body(): AsyncGenerator<Uint8Array>;
}

const BLOCK = 512;
const MAX_META = 1 << 20;
const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "chardev",
  "4": "blockdev",
  "5": "directory",
  "6": "fifo",
};
const decoder = new TextDecoder();

/**
 * Reads the entries of the tar stream `stream`. Everything after the end-of-archive marker is
 * read and discarded, so a hash computed over the stream covers all of it. `what` names the
 * archive in errors.
 *
 * @example
 * ```ts ignore
 * import { readTar } from "./tar.ts";
 * const file = await Deno.open("layer.tar");
 * for await (const entry of readTar(file.readable, "layer.tar")) console.log(entry.type, entry.path);
 * ```
 */
export async function* readTar(
  stream: ReadableStream<Uint8Array>,
  what = "Archive",
): AsyncGenerator<TarEntry> {
  const input = new ByteReader(stream);
  const fail = (why: string, offset = input.offset): never => {
    throw new VolantError(
      "invalid_argument",
      `${what} is not a valid tar archive: ${why} at byte ${offset}`,
      {
        offset,
      },
    );
  };
  const global: Record<string, Uint8Array> = {};
  let local: Record<string, Uint8Array> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  try {
    for (;;) {
      const at = input.offset;
      const block = await input.read(BLOCK, fail);
      if (block === null) return;
      if (block.every((b) => b === 0)) {
        await input.drain();
        return;
      }
      const raw = parseHeader(block, at, fail);
      const padded = Math.ceil(raw.size / BLOCK) * BLOCK;
      if (raw.flag === "x" || raw.flag === "g" || raw.flag === "L" || raw.flag === "K") {
        if (raw.size > MAX_META) fail(`extended header of ${raw.size} bytes is too large`, at);
        const data = (await input.read(padded, fail)) ?? fail("archive ends inside a header");
        const body = data.subarray(0, raw.size);
        if (raw.flag === "x") local = { ...local, ...parsePax(body, at, fail) };
        else if (raw.flag === "g") Object.assign(global, parsePax(body, at, fail));
        else if (raw.flag === "L") longName = cString(body);
        else longLink = cString(body);
        continue;
      }
      const type = TYPES[raw.flag] ??
        fail(
          `entry ${JSON.stringify(raw.name)} has unsupported type ${JSON.stringify(raw.flag)}`,
          at,
        );
      const pax = { ...global, ...local };
      const header: TarHeader = {
        path: text(pax.path) ?? longName ?? raw.name,
        type,
        mode: raw.mode & 0o7777,
        uid: paxNumber(pax.uid, "uid", at, fail) ?? raw.uid,
        gid: paxNumber(pax.gid, "gid", at, fail) ?? raw.gid,
        size: paxNumber(pax.size, "size", at, fail) ?? raw.size,
        mtime: paxNumber(pax.mtime, "mtime", at, fail) ?? raw.mtime,
        linkname: text(pax.linkpath) ?? longLink ?? raw.linkname,
        uname: text(pax.uname) ?? raw.uname,
        gname: text(pax.gname) ?? raw.gname,
        devmajor: raw.devmajor,
        devminor: raw.devminor,
        xattrs: {},
      };
      for (const [key, value] of Object.entries(pax)) {
        if (key.startsWith("SCHILY.xattr.")) header.xattrs[key.slice(13)] = value;
        if (key.startsWith("GNU.sparse.")) {
          fail(
            `entry ${JSON.stringify(header.path)} is a GNU sparse file, which is not supported`,
            at,
          );
        }
      }
      local = {};
      longName = undefined;
      longLink = undefined;
      // Only regular files carry data (as Go's archive/tar reads it): links, devices, fifos and
      // directories are header-only whatever their size field says.
      if (type !== "file") header.size = 0;
      const size = header.size;
      let left = size;
      const entry: TarEntry = {
        ...header,
        body: async function* () {
          while (left > 0) {
            const piece = await input.piece(left, fail);
            left -= piece.length;
            yield piece;
          }
        },
      };
      yield entry;
      await input.skip(left, fail);
      // Like Go's archive/tar, an archive that ends right after its last entry's data (no
      // padding, no end-of-archive blocks, as umoci 0.4 writes layers) ends there.
      if (!(await input.skipPadding(Math.ceil(size / BLOCK) * BLOCK - size, fail))) return;
    }
  } finally {
    await input.close();
  }
}

interface RawHeader {
  name: string;
  flag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function parseHeader(
  b: Uint8Array,
  at: number,
  fail: (why: string, at?: number) => never,
): RawHeader {
  const stored = number(b, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed) {
    fail(`header checksum ${stored} does not match the header's bytes (${unsigned})`, at);
  }
  const magic = decoder.decode(b.subarray(257, 263));
  const posix = magic === "ustar\0";
  const name = cString(b.subarray(0, 100));
  const prefix = posix ? cString(b.subarray(345, 500)) : "";
  return {
    name: prefix === "" ? name : `${prefix}/${name}`,
    flag: String.fromCharCode(b[156]!),
    mode: number(b, 100, 8),
    uid: number(b, 108, 8),
    gid: number(b, 116, 8),
    size: number(b, 124, 12),
    mtime: number(b, 136, 12),
    linkname: cString(b.subarray(157, 257)),
    uname: cString(b.subarray(265, 297)),
    gname: cString(b.subarray(297, 329)),
    devmajor: number(b, 329, 8),
    devminor: number(b, 337, 8),
  };
}

/** An octal field, or a base-256 one (first byte's high bit set) as GNU tar writes large values. */
function number(b: Uint8Array, offset: number, length: number): number {
  const field = b.subarray(offset, offset + length);
  if ((field[0]! & 0x80) !== 0) {
    const negative = (field[0]! & 0x40) !== 0;
    let v = 0;
    for (let i = 0; i < field.length; i++) {
      const byte = i === 0 ? field[0]! & 0x7f : field[i]!;
      v = v * 256 + (negative ? 255 - byte : byte);
    }
    return negative ? -(v + 1) : v;
  }
  let v = 0;
  for (const c of field) {
    if (c === 0 || c === 0x20) {
      if (v === 0) continue;
      break;
    }
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
  }
  return v;
}

function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return decoder.decode(end < 0 ? b : b.subarray(0, end));
}

function text(v: Uint8Array | undefined): string | undefined {
  return v === undefined ? undefined : decoder.decode(v);
}

function paxNumber(
  v: Uint8Array | undefined,
  key: string,
  at: number,
  fail: (why: string, at?: number) => never,
): number | undefined {
  if (v === undefined) return undefined;
  const s = decoder.decode(v);
  if (!/^-?[0-9]+(\.[0-9]*)?$/.test(s)) {
    fail(`PAX record ${key}=${JSON.stringify(s)} is not a number`, at);
  }
  return key === "mtime" ? Number(s) : Math.trunc(Number(s));
}

/** PAX records: `<length> <key>=<value>\n`, the length counting the whole record. */
function parsePax(
  body: Uint8Array,
  at: number,
  fail: (why: string, at?: number) => never,
): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break;
    const space = body.indexOf(0x20, pos);
    const length = space < 0 ? NaN : Number(decoder.decode(body.subarray(pos, space)));
    if (!Number.isInteger(length) || length <= space - pos || pos + length > body.length) {
      fail("malformed PAX record", at);
    }
    const record = body.subarray(space + 1, pos + length);
    const eq = record.indexOf(0x3d);
    if (eq < 0 || record[record.length - 1] !== 0x0a) fail("malformed PAX record", at);
    out[decoder.decode(record.subarray(0, eq))] = record.slice(eq + 1, record.length - 1);
    pos += length;
  }
  return out;
}

/** Exact-size reads over a byte stream, counting the offset. */
class ByteReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #pos = 0;
  #done = false;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#chunk.length) {
      if (this.#done) return false;
      const { done, value } = await this.#reader.read();
      if (done) {
        this.#done = true;
        return false;
      }
      this.#chunk = value;
      this.#pos = 0;
    }
    return true;
  }

  /** Exactly `n` bytes, or null at a clean end of stream; a partial read fails. */
  async read(n: number, fail: (why: string) => never): Promise<Uint8Array | null> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (!(await this.#fill())) {
        if (filled === 0) return null;
        fail(`archive is truncated (${n - filled} more bytes expected)`);
      }
      const take = Math.min(n - filled, this.#chunk.length - this.#pos);
      out.set(this.#chunk.subarray(this.#pos, this.#pos + take), filled);
      this.#pos += take;
      filled += take;
      this.offset += take;
    }
    return out;
  }

  /** Up to `max` (> 0) bytes from the current chunk; the end of the stream fails. */
  async piece(max: number, fail: (why: string) => never): Promise<Uint8Array> {
    if (!(await this.#fill())) fail(`archive is truncated (${max} more bytes expected)`);
    const take = Math.min(max, this.#chunk.length - this.#pos);
    const out = this.#chunk.subarray(this.#pos, this.#pos + take);
    this.#pos += take;
    this.offset += take;
    return out;
  }

  /** Skips `n` bytes; the end of the stream fails. */
  async skip(n: number, fail: (why: string) => never): Promise<void> {
    while (n > 0) n -= (await this.piece(n, fail)).length;
  }

  /**
   * Skips `n` padding bytes; false when the stream ends before the first of them (and `n` > 0),
   * a failure when it ends among them.
   */
  async skipPadding(n: number, fail: (why: string) => never): Promise<boolean> {
    if (n > 0 && !(await this.#fill())) return false;
    await this.skip(n, fail);
    return true;
  }

  /** Reads and discards the rest of the stream. */
  async drain(): Promise<void> {
    while (await this.#fill()) {
      this.offset += this.#chunk.length - this.#pos;
      this.#pos = this.#chunk.length;
    }
  }

  /** Releases the stream, cancelling it when it was not read to the end. */
  async close(): Promise<void> {
    if (!this.#done) await this.#reader.cancel().catch(() => {});
    this.#reader.releaseLock();
  }
}
