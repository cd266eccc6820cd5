/**
 * Extracts the uncompressed ELF `vmlinux` from an x86 bzImage whose payload is LZ4
 * (legacy frame, as Debian's kernels are built), so VMMs that boot ELF kernels through PVH
 * (QEMU microvm, Cloud Hypervisor, Firecracker) can use it. The payload is located through
 * the boot protocol header (`payload_offset`/`payload_length`), decoded here in TypeScript (no
 * `lz4` tool needed), checked against the size the kernel build appends, and the result is
 * checked to be an ELF64 x86-64 executable with a Xen PVH entry note.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";

const LZ4_LEGACY_MAGIC = 0x184c2102;
const LZ4_LEGACY_BLOCK = 8 << 20;
/** Largest compressed size of one legacy block (LZ4_compressBound(8 MiB)). */
const LZ4_LEGACY_BOUND = LZ4_LEGACY_BLOCK + Math.floor(LZ4_LEGACY_BLOCK / 255) + 16;

/** Where the compressed kernel sits inside a bzImage. */
export interface BzImagePayload {
  /** Byte offset of the payload in the bzImage file. */
  offset: number;
  /** Payload length in bytes (compressed data plus the 4-byte size the build appends). */
  length: number;
  /** The compression, recognised from the payload's magic bytes. */
  compression: "lz4" | "gzip" | "xz" | "zstd" | "lzma" | "bzip2" | "lzo" | "unknown";
}

function bad(message: string, details?: Record<string, unknown>): VolantError {
  return new VolantError("kernel_not_found", message, details);
}

function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>>
    0;
}

function compressionOf(bytes: Uint8Array): BzImagePayload["compression"] {
  const hex = Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
  if (hex.startsWith("02214c18")) return "lz4";
  if (hex.startsWith("1f8b")) return "gzip";
  if (hex.startsWith("fd377a585a00")) return "xz";
  if (hex.startsWith("28b52ffd")) return "zstd";
  if (hex.startsWith("5d00")) return "lzma";
  if (hex.startsWith("425a68")) return "bzip2";
  if (hex.startsWith("894c5a")) return "lzo";
  return "unknown";
}

/**
 * Locates the compressed kernel in a bzImage through its boot protocol header (needs protocol
 * 2.08 or later, which every kernel since 2.6.26 has).
 *
 * @example
 * ```ts ignore
 * const p = findBzImagePayload(await Deno.readFile("bzImage-volant"));
 * console.log(p.compression, p.offset, p.length);
 * ```
 */
export function findBzImagePayload(bzImage: Uint8Array): BzImagePayload {
  if (bzImage.length < 0x250 || bzImage[0x202] !== 0x48 || bzImage[0x203] !== 0x64) {
    throw bad("Not a bzImage: no `HdrS` boot protocol signature at offset 0x202");
  }
  const protocol = bzImage[0x206]! | (bzImage[0x207]! << 8);
  if (protocol < 0x208) {
    throw bad(
      `bzImage boot protocol ${protocol.toString(16)} is older than 2.08 (no payload_offset)`,
    );
  }
  const setupSectors = bzImage[0x1f1] || 4;
  const offset = (setupSectors + 1) * 512 + u32(bzImage, 0x248);
  const length = u32(bzImage, 0x24c);
  if (length < 8 || offset + length > bzImage.length) {
    throw bad(`bzImage payload (offset ${offset}, length ${length}) lies outside the file`, {
      offset,
      length,
      size: bzImage.length,
    });
  }
  return { offset, length, compression: compressionOf(bzImage.subarray(offset, offset + 6)) };
}

function lz4Block(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
): number {
  let ip = start;
  let op = at;
  for (;;) {
    const token = src[ip++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      let b: number;
      do {
        b = src[ip++]!;
        literals += b;
      } while (b === 255);
    }
    if (ip + literals > end || op + literals > out.length) {
      throw bad("Corrupt LZ4 block: literals run past the block");
    }
    out.set(src.subarray(ip, ip + literals), op);
    ip += literals;
    op += literals;
    if (ip >= end) return op;
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    let length = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        b = src[ip++]!;
        length += b;
      } while (b === 255);
    }
    if (offset === 0 || offset > op - at || op + length > out.length) {
      throw bad("Corrupt LZ4 block: match offset or length out of range");
    }
    let from = op - offset;
    if (offset >= length) {
      out.copyWithin(op, from, from + length);
      op += length;
    } else {
      for (const stop = op + length; op < stop;) out[op++] = out[from++]!;
    }
  }
}

/**
 * Decodes an LZ4 legacy-frame stream (`lz4 -l`, magic `02 21 4c 18`) and stops at the first
 * block header that cannot be one (the kernel build appends the uncompressed size; anything
 * after it is ignored). Returns the decoded bytes and where the stream ended.
 *
 * @example
 * ```ts ignore
 * const { data } = decodeLz4Legacy(payloadBytes);
 * ```
 */
export function decodeLz4Legacy(src: Uint8Array): { data: Uint8Array; end: number } {
  if (src.length < 4 || u32(src, 0) !== LZ4_LEGACY_MAGIC) {
    throw bad("Not an LZ4 legacy stream (magic 02 21 4c 18 missing)");
  }
  const blocks: Array<[number, number]> = [];
  let at = 4;
  while (at + 4 <= src.length) {
    const size = u32(src, at);
    if (size === 0 || size > LZ4_LEGACY_BOUND || at + 4 + size > src.length) break;
    blocks.push([at + 4, at + 4 + size]);
    at += 4 + size;
  }
  if (blocks.length === 0) throw bad("LZ4 legacy stream holds no block");
  const out = new Uint8Array(blocks.length * LZ4_LEGACY_BLOCK);
  let op = 0;
  for (const [start, end] of blocks) op = lz4Block(src, start, end, out, op);
  return { data: out.subarray(0, op), end: at };
}

/** What {@linkcode inspectVmlinux} found in an ELF kernel. */
export interface VmlinuxInfo {
  /** ELF entry point (virtual). */
  entry: number;
  /** Physical 32-bit PVH entry from the `Xen` note type 18 (XEN_ELFNOTE_PHYS32_ENTRY). */
  pvhEntry: number;
}

function noteEntries(elf: DataView, start: number, size: number): number | undefined {
  let at = start;
  const stop = start + size;
  while (at + 12 <= stop) {
    const nameSize = elf.getUint32(at, true);
    const descSize = elf.getUint32(at + 4, true);
    const type = elf.getUint32(at + 8, true);
    const nameAt = at + 12;
    const descAt = nameAt + ((nameSize + 3) & ~3);
    const name = new TextDecoder().decode(
      new Uint8Array(elf.buffer, elf.byteOffset + nameAt, Math.max(0, nameSize - 1)),
    );
    if (name === "Xen" && type === 18 && descSize >= 4) {
      return descSize >= 8 ? Number(elf.getBigUint64(descAt, true)) : elf.getUint32(descAt, true);
    }
    at = descAt + ((descSize + 3) & ~3);
  }
  return undefined;
}

/**
 * Checks that `bytes` is an ELF64 little-endian x86-64 executable with a PVH entry note and
 * returns its entry points.
 *
 * @example
 * ```ts ignore
 * const info = inspectVmlinux(await Deno.readFile("vmlinux-generic"));
 * console.log(info.pvhEntry.toString(16));
 * ```
 */
export function inspectVmlinux(bytes: Uint8Array): VmlinuxInfo {
  if (bytes.length < 64 || u32(bytes, 0) !== 0x464c457f) throw bad("vmlinux: no ELF magic");
  const elf = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[4] !== 2 || bytes[5] !== 1) throw bad("vmlinux: not a little-endian ELF64 file");
  if (elf.getUint16(16, true) !== 2) throw bad("vmlinux: ELF type is not EXEC");
  if (elf.getUint16(18, true) !== 62) throw bad("vmlinux: ELF machine is not x86-64");
  const entry = Number(elf.getBigUint64(24, true));
  const phoff = Number(elf.getBigUint64(32, true));
  const phentsize = elf.getUint16(54, true);
  const phnum = elf.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > bytes.length || elf.getUint32(ph, true) !== 4) continue; // PT_NOTE
    const offset = Number(elf.getBigUint64(ph + 8, true));
    const size = Number(elf.getBigUint64(ph + 32, true));
    if (offset + size > bytes.length) continue;
    const pvhEntry = noteEntries(elf, offset, size);
    if (pvhEntry !== undefined) return { entry, pvhEntry };
  }
  throw bad("vmlinux has no Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); it cannot boot via PVH");
}

/**
 * Extracts the ELF vmlinux from a bzImage's LZ4 payload and verifies it (size matches the
 * size the build appended, ELF64 x86-64, PVH note).
 *
 * @example
 * ```ts ignore
 * const { data, info } = extractVmlinux(await Deno.readFile("bzImage-volant"));
 * await Deno.writeFile("vmlinux-generic", data);
 * console.log(info.pvhEntry);
 * ```
 */
export function extractVmlinux(bzImage: Uint8Array): { data: Uint8Array; info: VmlinuxInfo } {
  const payload = findBzImagePayload(bzImage);
  if (payload.compression !== "lz4") {
    throw bad(
      `bzImage payload is ${payload.compression}, not LZ4; only LZ4 kernels (Debian's) are supported`,
      { compression: payload.compression },
    );
  }
  const src = bzImage.subarray(payload.offset, payload.offset + payload.length);
  const { data, end } = decodeLz4Legacy(src);
  if (end + 4 <= src.length) {
    const expected = u32(src, end);
    if (expected !== data.length) {
      throw bad(
        `vmlinux decoded to ${data.length} bytes but the bzImage says ${expected}`,
        { decoded: data.length, expected },
      );
    }
  }
  return { data, info: inspectVmlinux(data) };
}
