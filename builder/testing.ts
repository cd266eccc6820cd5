/**
 * Test fixtures for the builder: fabricated ELF files, archive readers (decompression by the
 * real `gzip`/`zstd` programs, then the cpio newc reader), temp dirs and directory snapshots.
 * Not part of the public API.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type CpioMember, readCpio } from "../kernels/mod.ts";
import { Manifest, VolantError } from "../schema/mod.ts";
import { type BuildOptions, buildPlugin, type OciRootfsBuildResult } from "./build.ts";

/** What {@linkcode fabricateElf} puts in its dynamic section. */
export interface FakeElf {
  interpreter?: string;
  needed?: string[];
  runpath?: string;
  rpath?: string;
  /** `e_machine`; default 62 (x86-64). */
  machine?: number;
}

/**
 * A minimal ELF64 little-endian shared object/PIE: one `PT_LOAD` covering the file, an optional
 * `PT_INTERP`, a `PT_DYNAMIC` with `DT_NEEDED`/`DT_RUNPATH`/`DT_RPATH`, `DT_STRTAB` (a virtual
 * address) and `DT_STRSZ`. Not runnable; enough for the loader-facing fields.
 */
export function fabricateElf(spec: FakeElf): Uint8Array {
  const enc = new TextEncoder();
  const base = 0x400000n;
  const strings: number[] = [0];
  const offsets = new Map<string, number>();
  const intern = (s: string) => {
    if (!offsets.has(s)) {
      offsets.set(s, strings.length);
      strings.push(...enc.encode(s), 0);
    }
    return offsets.get(s)!;
  };
  const dyn: [bigint, bigint][] = [];
  for (const n of spec.needed ?? []) dyn.push([1n, BigInt(intern(n))]);
  if (spec.runpath !== undefined) dyn.push([29n, BigInt(intern(spec.runpath))]);
  if (spec.rpath !== undefined) dyn.push([15n, BigInt(intern(spec.rpath))]);
  const phnum = spec.interpreter === undefined ? 2 : 3;
  const interpOff = 64 + phnum * 56;
  const interp = spec.interpreter === undefined
    ? new Uint8Array()
    : enc.encode(spec.interpreter + "\0");
  const strOff = interpOff + interp.length;
  const dynOff = (strOff + strings.length + 7) & ~7;
  dyn.push([5n, base + BigInt(strOff)], [10n, BigInt(strings.length)], [0n, 0n]);
  const size = dynOff + dyn.length * 16;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  v.setUint16(16, 3, true); // ET_DYN
  v.setUint16(18, spec.machine ?? 62, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(32, 64n, true); // e_phoff
  v.setUint16(52, 64, true); // e_ehsize
  v.setUint16(54, 56, true); // e_phentsize
  v.setUint16(56, phnum, true);
  const phdr = (i: number, type: number, offset: number, filesz: number) => {
    const at = 64 + i * 56;
    v.setUint32(at, type, true);
    v.setUint32(at + 4, 4, true); // PF_R
    v.setBigUint64(at + 8, BigInt(offset), true);
    v.setBigUint64(at + 16, base + BigInt(offset), true);
    v.setBigUint64(at + 24, base + BigInt(offset), true);
    v.setBigUint64(at + 32, BigInt(filesz), true);
    v.setBigUint64(at + 40, BigInt(filesz), true);
    v.setBigUint64(at + 48, 8n, true);
  };
  phdr(0, 1, 0, size); // PT_LOAD over the whole file
  phdr(1, 2, dynOff, dyn.length * 16); // PT_DYNAMIC
  if (spec.interpreter !== undefined) phdr(2, 3, interpOff, interp.length); // PT_INTERP
  out.set(interp, interpOff);
  out.set(strings, strOff);
  dyn.forEach(([tag, val], i) => {
    v.setBigUint64(dynOff + i * 16, tag, true);
    v.setBigUint64(dynOff + i * 16 + 8, val, true);
  });
  return out;
}

/** The decompressed bytes of an archive, by its extension, using the real CLI tools. */
export async function decompress(path: string): Promise<Uint8Array> {
  const tool = path.endsWith(".gz") ? "gzip" : path.endsWith(".zst") ? "zstd" : undefined;
  if (tool === undefined) return await Deno.readFile(path);
  const out = await new Deno.Command(tool, {
    args: ["-dc", path],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) throw new Error(`${tool} -dc ${path}: ${new TextDecoder().decode(out.stderr)}`);
  return out.stdout;
}

/** The members of an archive file, by path. */
export async function readArchive(path: string): Promise<Map<string, CpioMember>> {
  return new Map(readCpio(await decompress(path)).map((m) => [m.path, m]));
}

/** Unpacks an archive into `dir` with the real `cpio` program (as the kernel would). */
export async function unpack(archive: string, dir: string): Promise<void> {
  const data = await decompress(archive);
  const child = new Deno.Command("cpio", {
    args: ["-idm", "--quiet", "--no-absolute-filenames"],
    cwd: dir,
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(data);
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error(`cpio -idm: ${new TextDecoder().decode(out.stderr)}`);
}

/** Runs a command; resolves to its exit code and decoded output. */
export async function run(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** Every path under `dir` (relative, sorted), for "nothing was written" checks. */
export async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string, rel: string) => {
    for await (const e of Deno.readDir(at)) {
      const path = rel === "" ? e.name : `${rel}/${e.name}`;
      out.push(path);
      if (e.isDirectory) await walk(`${at}/${e.name}`, path);
    }
  };
  await walk(dir, "");
  return out.sort();
}

/** Runs `fn` with a fresh temp dir, removed afterwards whatever happened. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-builder-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Whether this process may `chroot` (root), to run what an appliance holds. */
export const CAN_CHROOT = Deno.uid() === 0;
/** Why chroot tests are skipped otherwise. */
export const CHROOT_SKIP = "running a program inside the unpacked appliance needs chroot (root)";

/** Whether `musl-gcc` (musl-tools) is installed. */
export const HAS_MUSL = (() => {
  try {
    return Deno.statSync("/usr/bin/musl-gcc").isFile;
  } catch {
    return false;
  }
})();

/** Whether the static busybox (busybox-static) is installed. */
export const HAS_BUSYBOX = (() => {
  try {
    return Deno.statSync("/bin/busybox").isFile;
  } catch {
    return false;
  }
})();

/** The tag {@linkcode buildBusyboxLayout} gives its image. */
export const BUSYBOX_TAG = "1.0";

/**
 * Builds a two-layer busybox image with the real `umoci` as the OCI layout `<dir>/layout`
 * (tag {@linkcode BUSYBOX_TAG}): busybox with an `sh` link, `/etc/passwd` with a user `app`
 * (1000), `/home/app` owned by it (mode 0700), then a second layer adding `/www/index.html` and
 * `/etc/motd` (so the unpack touches `/etc` after its layer set its time). Config: Entrypoint
 * `/bin/busybox httpd`, Cmd `-f -p 8080 -h /www`, Env `GREETING=hi`, WorkingDir `/www`, User
 * `app`, ExposedPorts `8080/tcp`. Returns the layout's path.
 */
export async function buildBusyboxLayout(dir: string): Promise<string> {
  const base = `${dir}/rootfs-base`;
  const top = `${dir}/rootfs-top`;
  for (const d of ["bin", "etc", "home/app"]) await Deno.mkdir(`${base}/${d}`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${base}/bin/busybox`);
  await Deno.symlink("busybox", `${base}/bin/sh`);
  await Deno.writeTextFile(
    `${base}/etc/passwd`,
    "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
  );
  await Deno.writeTextFile(`${base}/home/app/.profile`, "export PS1='$ '\n");
  if (Deno.uid() === 0) {
    await Deno.chown(`${base}/home/app/.profile`, 1000, 1000);
    await Deno.chown(`${base}/home/app`, 1000, 1000);
  }
  await Deno.chmod(`${base}/home/app`, 0o700);
  await Deno.mkdir(`${top}/www`, { recursive: true });
  await Deno.writeTextFile(`${top}/www/index.html`, "<h1>volant</h1>\n");
  await Deno.writeTextFile(`${top}/motd`, "built by umoci\n");
  const layout = `${dir}/layout`;
  const image = `${layout}:${BUSYBOX_TAG}`;
  const umoci = async (...args: string[]) => {
    const out = await run("umoci", args);
    if (out.code !== 0) throw new Error(`umoci ${args.join(" ")}: ${out.stderr}`);
  };
  await umoci("init", "--layout", layout);
  await umoci("new", "--image", image);
  await umoci("insert", "--image", image, base, "/");
  await umoci("insert", "--image", image, `${top}/www`, "/www");
  await umoci("insert", "--image", image, `${top}/motd`, "/etc/motd");
  await umoci(
    "config",
    "--image",
    image,
    "--config.entrypoint=/bin/busybox",
    "--config.entrypoint=httpd",
    ...["-f", "-p", "8080", "-h", "/www"].map((arg) => `--config.cmd=${arg}`),
    "--config.env=GREETING=hi",
    "--config.workingdir=/www",
    "--config.user=app",
    "--config.exposedports=8080/tcp",
  );
  return layout;
}

/** The `sha256:<hex>` of a file, by the real `sha256sum`. */
export async function sha256sum(path: string): Promise<string> {
  const out = await run("sha256sum", [path]);
  if (out.code !== 0) throw new Error(`sha256sum ${path}: ${out.stderr}`);
  return `sha256:${out.stdout.split(" ")[0]}`;
}

/** The first lines of every `oci_rootfs` test config. */
export const OCI_HEAD = 'version = "1"\nstrategy = "oci_rootfs"\n';

/** Runs {@linkcode buildPlugin}, asserting that it was an `oci_rootfs` build. */
export async function buildOci(options: BuildOptions): Promise<OciRootfsBuildResult> {
  const result = await buildPlugin(options);
  assert.equal(result.strategy, "oci_rootfs");
  return result;
}

/** A written manifest, parsed with the manifest schema. */
export async function readManifest(path: string): Promise<Manifest> {
  return Manifest.parse(JSON.parse(await Deno.readTextFile(path)));
}

/** Runs `fn`, expecting a VolantError of `code` whose message starts with `<file>: <field>: `. */
export async function refused(
  fn: () => Promise<unknown>,
  code: string,
  file: string,
  field: string,
  ...patterns: RegExp[]
): Promise<VolantError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof VolantError, `expected a VolantError, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.startsWith(`${file}: ${field}: `), caught.message);
  assert.equal(caught.details?.field, field);
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}
