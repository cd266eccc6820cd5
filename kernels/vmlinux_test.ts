import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { decodeLz4Legacy, extractVmlinux, findBzImagePayload, inspectVmlinux } from "./vmlinux.ts";
import { CACHED_KERNEL, hasCommand, NO_KERNEL_REASON } from "./testing.ts";

const HAS_LZ4 = hasCommand("lz4");

/** Pipes `data` through `lz4 args` (reading and writing at once, so no pipe fills up). */
async function lz4(args: string[], data: Uint8Array): Promise<Deno.CommandOutput> {
  const child = new Deno.Command("lz4", { args, stdin: "piped", stdout: "piped", stderr: "null" })
    .spawn();
  const output = child.output();
  const writer = child.stdin.getWriter();
  await writer.write(data);
  await writer.close();
  return await output;
}

/** Compresses `data` with the real `lz4 -l` (legacy frame, what the kernel build uses). */
async function lz4Legacy(data: Uint8Array): Promise<Uint8Array> {
  const out = await lz4(["-l", "-9", "-c"], data);
  ok(out.success);
  return out.stdout;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sample(size: number): Uint8Array {
  // Compressible but not trivial: repeats with variation, plus a run and random bytes.
  const out = new Uint8Array(size);
  let x = 12345;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = i % 4096 < 3000 ? (i * 7) % 251 : i % 100000 < 20000 ? 0x41 : x >>> 24;
  }
  return out;
}

Deno.test({
  name: "decodeLz4Legacy() decodes what `lz4 -l` wrote, across several 8 MiB blocks" +
    (HAS_LZ4 ? "" : " (skipped: lz4 is missing; apt-get install lz4)"),
  ignore: !HAS_LZ4,
  fn: async () => {
    const data = sample(17 * 1024 * 1024 + 333);
    const packed = await lz4Legacy(data);
    // The kernel build appends the decompressed size and more bytes follow in the bzImage.
    const tail = new Uint8Array([0x33, 0x01, 0x10, 0x01, 9, 9, 9]);
    const withTail = new Uint8Array(packed.length + tail.length);
    withTail.set(packed);
    withTail.set(tail, packed.length);
    const { data: decoded, end } = decodeLz4Legacy(withTail);
    equal(end, packed.length);
    equal(decoded.length, data.length);
    ok(same(decoded, data));
  },
});

Deno.test("decodeLz4Legacy() refuses non-LZ4 input and corrupt blocks", () => {
  throws(() => decodeLz4Legacy(new Uint8Array([1, 2, 3, 4, 5])), /magic/);
  // Magic, one 3-byte block whose match points before the start of the output.
  const corrupt = new Uint8Array([0x02, 0x21, 0x4c, 0x18, 3, 0, 0, 0, 0x00, 0x05, 0x00]);
  throws(() => decodeLz4Legacy(corrupt), /Corrupt LZ4 block/);
});

Deno.test("findBzImagePayload() refuses files that are not bzImages", () => {
  throws(() => findBzImagePayload(new Uint8Array(4096)), /HdrS/);
});

Deno.test({
  name: "extractVmlinux() gives the ELF that `lz4 -dc` gives, with a PVH note" +
    (CACHED_KERNEL ? "" : ` (skipped: ${NO_KERNEL_REASON})`),
  ignore: !CACHED_KERNEL,
  fn: async () => {
    const bz = await Deno.readFile(CACHED_KERNEL!.bzImage);
    const payload = findBzImagePayload(bz);
    equal(payload.compression, "lz4");
    deepEqual([...bz.subarray(payload.offset, payload.offset + 4)], [0x02, 0x21, 0x4c, 0x18]);
    const { data, info } = extractVmlinux(bz);
    deepEqual([...data.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
    ok(info.pvhEntry > 0 && info.pvhEntry < 2 ** 32, `PVH entry ${info.pvhEntry}`);
    ok(data.length > bz.length, "vmlinux is larger than the compressed image");
    if (HAS_LZ4) {
      const out = await lz4(["-dc"], bz.subarray(payload.offset, payload.offset + payload.length));
      equal(out.stdout.length, data.length);
      ok(same(out.stdout, data), "differs from lz4 -dc");
    }
    // `file` agrees it is an x86-64 ELF executable (./volant test installs `file`).
    const dir = await Deno.makeTempDir({ prefix: "volant-vmlinux-" });
    try {
      await Deno.writeFile(`${dir}/vmlinux`, data.subarray(0, 4096));
      const out = await new Deno.Command("file", { args: ["-b", `${dir}/vmlinux`] }).output();
      ok(/ELF 64-bit LSB executable, x86-64/.test(new TextDecoder().decode(out.stdout)));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("inspectVmlinux() refuses non-ELF and ELF files without a PVH note", () => {
  throws(() => inspectVmlinux(new Uint8Array(128)), /no ELF magic/);
  const elf = new Uint8Array(128);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  const view = new DataView(elf.buffer);
  view.setUint16(16, 2, true); // EXEC
  view.setUint16(18, 62, true); // x86-64
  view.setBigUint64(32, 64n, true); // phoff
  view.setUint16(54, 56, true);
  view.setUint16(56, 0, true); // no program headers
  throws(() => inspectVmlinux(elf), /no Xen PVH entry note/);
  view.setUint16(18, 3, true); // i386
  throws(() => inspectVmlinux(elf), /not x86-64/);
});

if (!CACHED_KERNEL) console.error(`vmlinux_test: real-kernel test skipped: ${NO_KERNEL_REASON}`);
if (!HAS_LZ4) console.error("vmlinux_test: lz4 round trips skipped: lz4 is not installed");
