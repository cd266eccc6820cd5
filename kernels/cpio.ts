/**
 * A deterministic cpio "newc" writer (the format the Linux kernel unpacks as an initramfs) and
 * a reader for tests and inspection. Determinism: entries are sorted by path, parents are
 * added when missing, inode numbers are assigned in order, owners are root and every mtime is
 * the same fixed value, so the same inputs always give the same bytes (and sha256). Device
 * nodes are written without needing root.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";

/** One archive member. Paths are relative (`init`, `bin/sh`); a leading `/` is stripped. */
export type CpioEntry =
  | { type: "file"; path: string; data: Uint8Array; mode?: number }
  | { type: "dir"; path: string; mode?: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "chardev" | "blockdev"; path: string; major: number; minor: number; mode?: number };

/** Options of {@linkcode writeCpio}. */
export interface CpioOptions {
  /** mtime of every entry, seconds since the epoch; default 0. */
  mtime?: number;
}

const S_IFMT = 0o170000;
const TYPE_BITS = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  chardev: 0o020000,
  blockdev: 0o060000,
} as const;
const DEFAULT_MODE = {
  file: 0o644,
  dir: 0o755,
  symlink: 0o777,
  chardev: 0o600,
  blockdev: 0o600,
} as const;
const TRAILER = "TRAILER!!!";
const MAGIC = "070701";

/** Normalises a member path: no leading `/` or `./`, no `..`, no empty segments. */
export function normalizeCpioPath(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0 || parts.includes("..")) {
    throw new VolantError(
      "invalid_argument",
      `cpio path ${JSON.stringify(path)} must name something inside the archive (no "..")`,
      { path },
    );
  }
  return parts.join("/");
}

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new VolantError("invalid_argument", `cpio header field out of range: ${n}`);
  }
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

interface Member {
  name: string;
  mode: number;
  nlink: number;
  data: Uint8Array;
  rdevMajor: number;
  rdevMinor: number;
}

function toMember(entry: CpioEntry, path: string): Member {
  const perm = (entry.type === "symlink" ? undefined : entry.mode) ?? DEFAULT_MODE[entry.type];
  const mode = TYPE_BITS[entry.type] | (perm & 0o7777);
  switch (entry.type) {
    case "file":
      return { name: path, mode, nlink: 1, data: entry.data, rdevMajor: 0, rdevMinor: 0 };
    case "dir":
      return { name: path, mode, nlink: 2, data: new Uint8Array(), rdevMajor: 0, rdevMinor: 0 };
    case "symlink":
      return {
        name: path,
        mode,
        nlink: 1,
        data: new TextEncoder().encode(entry.target),
        rdevMajor: 0,
        rdevMinor: 0,
      };
    case "chardev":
    case "blockdev":
      return {
        name: path,
        mode,
        nlink: 1,
        data: new Uint8Array(),
        rdevMajor: entry.major,
        rdevMinor: entry.minor,
      };
  }
}

function header(member: Member, ino: number, mtime: number): Uint8Array {
  const nameBytes = new TextEncoder().encode(member.name + "\0");
  const fields = [
    ino,
    member.mode,
    0, // uid
    0, // gid
    member.nlink,
    mtime,
    member.data.length,
    0, // devmajor
    0, // devminor
    member.rdevMajor,
    member.rdevMinor,
    nameBytes.length,
    0, // check
  ];
  const text = MAGIC + fields.map(hex8).join("");
  const head = new TextEncoder().encode(text);
  const out = new Uint8Array(head.length + nameBytes.length + pad4(head.length + nameBytes.length));
  out.set(head, 0);
  out.set(nameBytes, head.length);
  return out;
}

/**
 * Writes a cpio newc archive. Missing parent directories are added (mode 0755); a path given
 * twice is an error. The result ends with the `TRAILER!!!` record.
 *
 * @example
 * ```ts
 * import { readCpio, writeCpio } from "./cpio.ts";
 * const data = new TextEncoder().encode("#!/bin/sh\n");
 * const bytes = writeCpio([
 *   { type: "file", path: "init", data, mode: 0o755 },
 *   { type: "chardev", path: "dev/console", major: 5, minor: 1 },
 * ]);
 * console.assert(readCpio(bytes).map((e) => e.path).join(",") === "dev,dev/console,init");
 * ```
 */
export function writeCpio(entries: readonly CpioEntry[], options: CpioOptions = {}): Uint8Array {
  const mtime = options.mtime ?? 0;
  const byPath = new Map<string, Member>();
  for (const entry of entries) {
    const path = normalizeCpioPath(entry.path);
    if (byPath.has(path)) {
      throw new VolantError("invalid_argument", `cpio path ${path} is given twice`, { path });
    }
    byPath.set(path, toMember(entry, path));
  }
  for (const path of [...byPath.keys()]) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      const existing = byPath.get(parent);
      if (!existing) {
        byPath.set(parent, toMember({ type: "dir", path: parent }, parent));
      } else if ((existing.mode & S_IFMT) !== TYPE_BITS.dir) {
        throw new VolantError(
          "invalid_argument",
          `cpio path ${path} needs ${parent} to be a directory`,
          { path, parent },
        );
      }
    }
  }
  const members = [...byPath.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  );
  const chunks: Uint8Array[] = [];
  let ino = 1;
  for (const member of members) {
    chunks.push(header(member, ino++, mtime));
    chunks.push(member.data);
    chunks.push(new Uint8Array(pad4(member.data.length)));
  }
  chunks.push(
    header(
      { name: TRAILER, mode: 0, nlink: 1, data: new Uint8Array(), rdevMajor: 0, rdevMinor: 0 },
      0,
      0,
    ),
  );
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** One member as {@linkcode readCpio} returns it. */
export interface CpioMember {
  /** Path inside the archive. */
  path: string;
  /** `file`, `dir`, `symlink`, `chardev`, `blockdev` or `other`. */
  type: CpioEntry["type"] | "other";
  /** Permission bits (`mode & 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** Contents (files), target bytes (symlinks), empty otherwise. */
  data: Uint8Array;
  rdevMajor: number;
  rdevMinor: number;
}

function typeOf(mode: number): CpioMember["type"] {
  const bits = mode & S_IFMT;
  for (const [name, value] of Object.entries(TYPE_BITS)) {
    if (value === bits) return name as CpioEntry["type"];
  }
  return "other";
}

/**
 * Reads a (single, uncompressed) cpio newc archive up to its trailer.
 *
 * @example
 * ```ts
 * import { readCpio, writeCpio } from "./cpio.ts";
 * const [m] = readCpio(writeCpio([{ type: "symlink", path: "bin/sh", target: "busybox" }]))
 *   .filter((x) => x.type === "symlink");
 * console.assert(new TextDecoder().decode(m!.data) === "busybox");
 * ```
 */
export function readCpio(bytes: Uint8Array): CpioMember[] {
  const decoder = new TextDecoder();
  const out: CpioMember[] = [];
  let at = 0;
  while (at + 110 <= bytes.length) {
    const head = decoder.decode(bytes.subarray(at, at + 110));
    if (!head.startsWith(MAGIC)) {
      throw new VolantError("invalid_argument", `Not a cpio newc archive at offset ${at}`);
    }
    const field = (i: number) => parseInt(head.slice(6 + i * 8, 14 + i * 8), 16);
    const nameSize = field(11);
    const fileSize = field(6);
    const nameStart = at + 110;
    const name = decoder.decode(bytes.subarray(nameStart, nameStart + nameSize - 1));
    const dataStart = nameStart + nameSize + pad4(110 + nameSize);
    if (name === TRAILER) return out;
    const mode = field(1);
    out.push({
      path: name,
      type: typeOf(mode),
      mode: mode & 0o7777,
      uid: field(2),
      gid: field(3),
      mtime: field(5),
      data: bytes.slice(dataStart, dataStart + fileSize),
      rdevMajor: field(9),
      rdevMinor: field(10),
    });
    at = dataStart + fileSize + pad4(fileSize);
  }
  throw new VolantError("invalid_argument", "cpio archive ends without a TRAILER!!! record");
}
