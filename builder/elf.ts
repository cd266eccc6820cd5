/**
 * Just enough ELF to decide what a program needs at run time: the ELF64 little-endian header,
 * the program headers `PT_INTERP` (the dynamic loader) and `PT_DYNAMIC`, and from the dynamic
 * section `DT_NEEDED`, `DT_RUNPATH`, `DT_RPATH` and `DT_SONAME`, read through `DT_STRTAB`
 * (a virtual address, mapped to a file offset with the `PT_LOAD` segments).
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";

/** `e_machine` of x86-64, the only architecture the guest runs. */
export const EM_X86_64 = 62;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_SONAME = 14n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;
const ET_NAMES: Record<number, ElfInfo["type"]> = { 1: "rel", 2: "exec", 3: "dyn", 4: "core" };

/** What {@linkcode inspectElf} learns about an ELF file. */
export interface ElfInfo {
  /** 64 for ELF64 (the only class inspected in depth). */
  bits: 32 | 64;
  /** `little` or `big`. */
  endian: "little" | "big";
  /** `e_machine` (62 is x86-64). */
  machine: number;
  /** `e_type`: relocatable, executable, shared object / PIE, core, or something else. */
  type: "rel" | "exec" | "dyn" | "core" | "other";
  /** The loader named by `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`. */
  interpreter?: string;
  /** `DT_NEEDED` entries in order, e.g. `["libc.so.6"]`. */
  needed: string[];
  /** `DT_RUNPATH` directories (split on `:`), searched for `needed`. */
  runpath: string[];
  /** `DT_RPATH` directories (used only when there is no `DT_RUNPATH`). */
  rpath: string[];
  /** `DT_SONAME`. */
  soname?: string;
  /** No loader and no needed library: runs as it is (static, or static-pie). */
  static: boolean;
}

/**
 * Whether `bytes` start with the ELF magic (`\x7fELF`).
 *
 * @example
 * ```ts
 * import { isElf } from "./elf.ts";
 * console.assert(isElf(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2])));
 * console.assert(!isElf(new TextEncoder().encode("#!/bin/sh\n")));
 * ```
 */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c &&
    bytes[3] === 0x46;
}

function bad(what: string): never {
  throw new VolantError("invalid_argument", `Not a valid ELF file: ${what}`);
}

class Reader {
  readonly #view: DataView;
  constructor(bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get length(): number {
    return this.#view.byteLength;
  }
  #check(offset: number | bigint, size: number, what: string): number {
    const at = Number(offset);
    if (!Number.isSafeInteger(at) || at < 0 || at + size > this.#view.byteLength) {
      bad(`${what} at offset ${offset} lies outside the file (${this.#view.byteLength} bytes)`);
    }
    return at;
  }
  u16(offset: number, what: string): number {
    return this.#view.getUint16(this.#check(offset, 2, what), true);
  }
  u32(offset: number | bigint, what: string): number {
    return this.#view.getUint32(this.#check(offset, 4, what), true);
  }
  u64(offset: number | bigint, what: string): bigint {
    return this.#view.getBigUint64(this.#check(offset, 8, what), true);
  }
  /** A NUL-terminated string starting at `offset`, not past `end`. */
  cstring(bytes: Uint8Array, offset: number, end: number, what: string): string {
    this.#check(offset, 0, what);
    const limit = Math.min(end, bytes.length);
    let stop = offset;
    while (stop < limit && bytes[stop] !== 0) stop++;
    if (stop >= limit) bad(`${what} is not NUL-terminated`);
    return new TextDecoder().decode(bytes.subarray(offset, stop));
  }
}

interface Segment {
  type: number;
  offset: bigint;
  vaddr: bigint;
  filesz: bigint;
}

function segments(r: Reader): Segment[] {
  const phoff = r.u64(0x20, "e_phoff");
  const phentsize = r.u16(0x36, "e_phentsize");
  const phnum = r.u16(0x38, "e_phnum");
  if (phnum === 0) return [];
  if (phentsize < 56) bad(`e_phentsize ${phentsize} is smaller than an ELF64 program header`);
  if (phnum === 0xffff) bad("more than 65534 program headers (PN_XNUM) is not supported");
  const out: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + BigInt(i * phentsize);
    out.push({
      type: r.u32(at, `program header ${i}`),
      offset: r.u64(at + 8n, `program header ${i}`),
      vaddr: r.u64(at + 16n, `program header ${i}`),
      filesz: r.u64(at + 32n, `program header ${i}`),
    });
  }
  return out;
}

/** The file offset of virtual address `vaddr` (inside a `PT_LOAD` segment's file bytes). */
function fileOffset(loads: readonly Segment[], vaddr: bigint): number {
  for (const s of loads) {
    if (vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return Number(s.offset + vaddr - s.vaddr);
  }
  return bad(`DT_STRTAB address 0x${vaddr.toString(16)} is in no PT_LOAD segment`);
}

function splitPath(text: string): string[] {
  return text.split(":").filter((d) => d !== "");
}

/**
 * Reads an ELF file's class, byte order, machine and type; for ELF64 little-endian files also
 * its loader (`PT_INTERP`) and dynamic entries (`DT_NEEDED`, `DT_RUNPATH`, `DT_RPATH`,
 * `DT_SONAME`). Other classes and byte orders come back with empty dependency lists (the caller
 * decides whether that is acceptable). Throws `invalid_argument` for a truncated or malformed
 * file.
 *
 * @example
 * ```ts
 * import { inspectElf } from "./elf.ts";
 * const info = inspectElf(await Deno.readFile("/bin/ls"));
 * console.assert(info.machine === 62 && info.needed.includes("libc.so.6"));
 * ```
 */
export function inspectElf(bytes: Uint8Array): ElfInfo {
  if (!isElf(bytes)) bad("no \\x7fELF magic");
  if (bytes.length < 64) bad(`${bytes.length} bytes is shorter than an ELF header`);
  const bits = bytes[4] === 2 ? 64 : bytes[4] === 1 ? 32 : bad(`EI_CLASS ${bytes[4]}`);
  const endian = bytes[5] === 1 ? "little" : bytes[5] === 2 ? "big" : bad(`EI_DATA ${bytes[5]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = endian === "little";
  const type = ET_NAMES[view.getUint16(16, le)] ?? "other";
  const machine = view.getUint16(18, le);
  const info: ElfInfo = {
    bits,
    endian,
    machine,
    type,
    needed: [],
    runpath: [],
    rpath: [],
    static: true,
  };
  if (bits !== 64 || !le) return info;

  const r = new Reader(bytes);
  const all = segments(r);
  const loads = all.filter((s) => s.type === PT_LOAD);
  const interp = all.find((s) => s.type === PT_INTERP);
  if (interp) {
    const start = Number(interp.offset);
    info.interpreter = r.cstring(bytes, start, start + Number(interp.filesz), "PT_INTERP");
  }
  const dynamic = all.find((s) => s.type === PT_DYNAMIC);
  if (dynamic) {
    const tags: [bigint, bigint][] = [];
    const count = Number(dynamic.filesz / 16n);
    for (let i = 0; i < count; i++) {
      const at = dynamic.offset + BigInt(i * 16);
      const tag = r.u64(at, "dynamic entry");
      if (tag === DT_NULL) break;
      tags.push([tag, r.u64(at + 8n, "dynamic entry")]);
    }
    const strtab = tags.find(([t]) => t === DT_STRTAB)?.[1];
    const strsz = tags.find(([t]) => t === DT_STRSZ)?.[1];
    const wantsStrings = tags.some(([t]) =>
      t === DT_NEEDED || t === DT_RUNPATH || t === DT_RPATH || t === DT_SONAME
    );
    if (wantsStrings) {
      if (strtab === undefined) bad("dynamic section has string entries but no DT_STRTAB");
      const base = fileOffset(loads, strtab);
      const end = strsz === undefined ? bytes.length : base + Number(strsz);
      const str = (offset: bigint, what: string) =>
        r.cstring(bytes, base + Number(offset), end, what);
      for (const [tag, value] of tags) {
        if (tag === DT_NEEDED) info.needed.push(str(value, "DT_NEEDED"));
        else if (tag === DT_RUNPATH) info.runpath.push(...splitPath(str(value, "DT_RUNPATH")));
        else if (tag === DT_RPATH) info.rpath.push(...splitPath(str(value, "DT_RPATH")));
        else if (tag === DT_SONAME) info.soname = str(value, "DT_SONAME");
      }
    }
  }
  info.static = info.interpreter === undefined && info.needed.length === 0;
  return info;
}
