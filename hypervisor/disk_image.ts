/**
 * What a disk image may make a VMM open besides itself. A qcow2 header can name a backing file
 * (`qemu-img create -f qcow2 -b /etc/shadow -F raw evil.qcow2`) or an external data file, and a
 * VMM that opens the image as root follows them: the guest reads a host file. A signature says
 * who built an artifact, not that it is safe, so the header itself is read here — never the
 * manifest's word — and such images are refused.
 *
 * Only the header and its extensions are read (at most {@linkcode MAX_HEADER_BYTES}).
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";

/** qcow2's magic: `QFI\xfb`. */
const QCOW2_MAGIC = 0x514649fb;
/** The most of an image's start that is read: the header and its extensions live there. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Header extension: the name of an external data file. */
const EXT_DATA_FILE = 0x44415441;
/** Incompatible feature bit 2: the guest data lives in an external file. */
const INCOMPAT_DATA_FILE = 1n << 2n;

/** What the header of a qcow2 image names. */
export interface Qcow2Header {
  version: number;
  /** The backing file the header names, or null. */
  backingFile: string | null;
  /** The external data file the header names (or flags without naming), or null. */
  dataFile: string | null;
  /** Encrypted (the VMM would need a key). */
  encrypted: boolean;
}

/**
 * Parses the start of a qcow2 image; `null` when `bytes` does not start with qcow2's magic.
 *
 * @example
 * ```ts
 * import { parseQcow2Header } from "./disk_image.ts";
 * const h = new Uint8Array(112);
 * const v = new DataView(h.buffer);
 * v.setUint32(0, 0x514649fb); v.setUint32(4, 3); v.setUint32(100, 112);
 * console.assert(parseQcow2Header(h)?.backingFile === null);
 * console.assert(parseQcow2Header(new Uint8Array(512)) === null);
 * ```
 */
export function parseQcow2Header(bytes: Uint8Array): Qcow2Header | null {
  if (bytes.length < 72) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== QCOW2_MAGIC) return null;
  const version = view.getUint32(4);
  const text = (at: number, length: number) =>
    new TextDecoder().decode(bytes.subarray(at, Math.min(bytes.length, at + length)));
  const backingOffset = view.getBigUint64(8);
  const backingSize = view.getUint32(16);
  let backingFile: string | null = null;
  if (backingOffset !== 0n) {
    // Named beyond what is read, the name is unknown but the backing file is no less there.
    backingFile = backingOffset + BigInt(backingSize) <= BigInt(bytes.length)
      ? text(Number(backingOffset), backingSize)
      : "(a backing file named beyond the header)";
  }
  const encrypted = view.getUint32(32) !== 0;
  let dataFile: string | null = null;
  let extensionsAt = 72;
  if (version >= 3 && bytes.length >= 104) {
    if ((view.getBigUint64(72) & INCOMPAT_DATA_FILE) !== 0n) dataFile = "(an external data file)";
    extensionsAt = view.getUint32(100);
  }
  // Header extensions: type, length, data padded to 8 bytes; type 0 ends them.
  for (let at = extensionsAt; at + 8 <= bytes.length;) {
    const type = view.getUint32(at);
    const length = view.getUint32(at + 4);
    if (type === 0) break;
    if (type === EXT_DATA_FILE) dataFile = text(at + 8, length);
    at += 8 + Math.ceil(length / 8) * 8;
  }
  return { version, backingFile, dataFile, encrypted };
}

/**
 * Refuses a disk image a VMM must not open as `format`: a qcow2 that names a backing file or an
 * external data file or is encrypted, or a file declared qcow2 that is not one. `field` names
 * the manifest entry in the error (`disks[0]`, `rootfs`). Raw images are opened as raw, so their
 * bytes are the guest's business.
 *
 * @example
 * ```ts ignore
 * import { checkDiskImage } from "./disk_image.ts";
 * await checkDiskImage("/var/lib/volant/artifacts/sha256/ab…", "qcow2", "disks[0]");
 * ```
 */
export async function checkDiskImage(
  path: string,
  format: "raw" | "qcow2",
  field: string,
): Promise<void> {
  if (format !== "qcow2") return;
  const header = parseQcow2Header(await readHead(path));
  const refuse = (why: string) =>
    new VolantError("invalid_argument", `${field}: ${why}; refused (a VMM would open it)`, {
      field,
      path,
    });
  if (header === null) throw refuse("declared qcow2, but the file is not a qcow2 image");
  if (header.backingFile !== null) {
    throw refuse(`the qcow2 image names a backing file ${JSON.stringify(header.backingFile)}`);
  }
  if (header.dataFile !== null) {
    throw refuse(`the qcow2 image names an external data file ${JSON.stringify(header.dataFile)}`);
  }
  if (header.encrypted) throw refuse("the qcow2 image is encrypted");
}

/**
 * Checks an overlay Volant made before a VMM opens it: a qcow2 whose backing file is exactly
 * `base` (a blob in Volant's own cache) and nothing else. `invalid_state` otherwise.
 *
 * @example
 * ```ts ignore
 * import { checkOverlay } from "./disk_image.ts";
 * await checkOverlay("/var/lib/volant/vms/web/disk_data.qcow2", blobPath);
 * ```
 */
export async function checkOverlay(path: string, base: string): Promise<void> {
  const header = parseQcow2Header(await readHead(path));
  const why = header === null
    ? "is not a qcow2 image"
    : header.backingFile !== base
    ? `is backed by ${JSON.stringify(header.backingFile)}, not the cached artifact ${base}`
    : header.dataFile !== null
    ? `names an external data file ${JSON.stringify(header.dataFile)}`
    : null;
  if (why !== null) {
    throw new VolantError(
      "invalid_state",
      `The VM's disk overlay ${path} ${why}; it was changed outside Volant (delete the VM, or ` +
        "the file, to recreate it)",
      { path, base },
    );
  }
}

async function readHead(path: string): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(MAX_HEADER_BYTES);
  let at = 0;
  while (at < buf.length) {
    const n = await file.read(buf.subarray(at));
    if (n === null || n === 0) break;
    at += n;
  }
  return buf.subarray(0, at);
}
