/**
 * Test fixtures for the image package: temp dirs, a tar writer (independent of the reader),
 * compression by the real `gzip`/`zstd` programs, hand-written OCI layouts, a real
 * `docker-registry` process, umoci-built images and loopback HTTP servers. Not public API.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { equal, ok, rejects } from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import type { TarEntryType } from "./tar.ts";

const encoder = new TextEncoder();

/** Runs `fn` with a fresh temp dir that is removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "volant-images-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The `sha256:<hex>` of `bytes`. */
export function digestOf(bytes: Uint8Array | string): string {
  const b = typeof bytes === "string" ? encoder.encode(bytes) : bytes;
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

/** Every path under `dir` (relative, sorted; directories end in `/`). */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    for await (const e of Deno.readDir(rel === "" ? dir : `${dir}/${rel}`)) {
      const path = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory) {
        out.push(`${path}/`);
        await walk(path);
      } else out.push(path);
    }
  }
  try {
    await walk("");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** Asserts that `promise` rejects with a {@linkcode VolantError} of `code` whose message holds every `parts`. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  ...parts: string[]
): Promise<VolantError> {
  let caught: unknown;
  await rejects(promise, (e: unknown) => {
    caught = e;
    return true;
  });
  ok(caught instanceof VolantError, `expected a VolantError, got ${caught}`);
  equal(caught.code, code, caught.message);
  for (const part of parts) {
    ok(caught.message.includes(part), `${JSON.stringify(part)} not in: ${caught.message}`);
  }
  return caught;
}

/** One member for {@linkcode makeTar}. */
export interface TarSpec {
  name: string;
  type?: TarEntryType;
  data?: Uint8Array | string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extra PAX records for this member (strings or raw bytes). */
  pax?: Record<string, string | Uint8Array>;
  /** Write a name longer than 100 bytes as a GNU `L` record instead of PAX `path`. */
  gnu?: boolean;
}

const FLAGS: Record<TarEntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  chardev: "3",
  blockdev: "4",
  directory: "5",
  fifo: "6",
};

/** A tar archive (ustar headers, PAX or GNU records for long names) holding `entries`. */
export function makeTar(entries: TarSpec[]): Uint8Array<ArrayBuffer> {
  const blocks: Uint8Array[] = [];
  const push = (flag: string, name: string, body: Uint8Array, e: Partial<TarSpec>) => {
    blocks.push(header(flag, name, body.length, e));
    if (body.length > 0) {
      const padded = new Uint8Array(Math.ceil(body.length / 512) * 512);
      padded.set(body);
      blocks.push(padded);
    }
  };
  for (const e of entries) {
    const type = e.type ?? "file";
    const data = typeof e.data === "string" ? encoder.encode(e.data) : e.data ?? new Uint8Array();
    const pax: Record<string, string | Uint8Array> = { ...e.pax };
    let name = e.name;
    const link = e.linkname ?? "";
    if (encoder.encode(name).length > 100) {
      if (e.gnu) push("L", "././@LongLink", encoder.encode(name + "\0"), {});
      else pax.path = name;
      name = name.slice(0, 99);
    }
    if (encoder.encode(link).length > 100) pax.linkpath = link;
    if (Object.keys(pax).length > 0) push("x", "PaxHeader", paxBody(pax), {});
    push(FLAGS[type], name, type === "file" ? data : new Uint8Array(), {
      ...e,
      linkname: link.slice(0, 100),
    });
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

function paxBody(records: Record<string, string | Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [key, value] of Object.entries(records)) {
    const v = typeof value === "string" ? encoder.encode(value) : value;
    const rest = encoder.encode(` ${key}=`).length + v.length + 1;
    let len = rest + 1;
    while (String(len).length + rest !== len) len = String(len).length + rest;
    parts.push(encoder.encode(`${len} ${key}=`), v, encoder.encode("\n"));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function header(flag: string, name: string, size: number, e: Partial<TarSpec>): Uint8Array {
  const b = new Uint8Array(512);
  const put = (offset: number, s: string) => b.set(encoder.encode(s), offset);
  const oct = (offset: number, width: number, v: number) =>
    put(offset, v.toString(8).padStart(width - 1, "0") + "\0");
  put(0, name);
  oct(100, 8, e.mode ?? (flag === "5" ? 0o755 : 0o644));
  oct(108, 8, e.uid ?? 0);
  oct(116, 8, e.gid ?? 0);
  oct(124, 12, size);
  oct(136, 12, e.mtime ?? 1_700_000_000);
  put(148, "        ");
  put(156, flag);
  put(157, e.linkname ?? "");
  put(257, "ustar\u000000");
  put(265, "root");
  put(297, "root");
  oct(329, 8, e.devmajor ?? 0);
  oct(337, 8, e.devminor ?? 0);
  const sum = b.reduce((n, v) => n + v, 0);
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  return b;
}

/** `bytes` compressed by the real `gzip` or `zstd` program. */
export async function compress(
  bytes: Uint8Array,
  tool: "gzip" | "zstd",
): Promise<Uint8Array<ArrayBuffer>> {
  const child = new Deno.Command(tool, {
    args: tool === "gzip" ? ["-c", "-n"] : ["-c", "-q", "-3"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(bytes);
  await writer.close();
  const out = await child.output();
  ok(out.success, `${tool} failed`);
  return new Uint8Array(out.stdout);
}

/** Runs a program, failing the test with its stderr when it exits non-zero; returns stdout. */
export async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const err = new TextDecoder().decode(out.stderr);
  ok(out.success, `${cmd} ${args.join(" ")} failed: ${err}`);
  return new TextDecoder().decode(out.stdout);
}
