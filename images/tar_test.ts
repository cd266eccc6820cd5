import { deepEqual, equal, ok } from "node:assert/strict";
import { readTar, type TarEntry } from "./tar.ts";
import { makeTar, rejectsWith, run, withTempDir } from "./_testing.ts";

function streamOf(bytes: Uint8Array, chunk = 700): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

async function entries(
  bytes: Uint8Array,
  chunk?: number,
): Promise<(Omit<TarEntry, "body"> & { data: string })[]> {
  const out = [];
  for await (const e of readTar(streamOf(bytes, chunk), "test.tar")) {
    let data = "";
    for await (const piece of e.body()) data += new TextDecoder().decode(piece, { stream: true });
    const { body: _, ...rest } = e;
    out.push({ ...rest, data });
  }
  return out;
}

Deno.test("readTar() reads every entry type with modes, owners, times and content", async () => {
  const big = "x".repeat(5000);
  const tar = makeTar([
    { name: "./bin/", type: "directory", mode: 0o755 },
    { name: "./bin/su", data: big, mode: 0o4755, uid: 0, gid: 0, mtime: 1_600_000_000 },
    { name: "./bin/sh", type: "symlink", linkname: "busybox" },
    { name: "./bin/ln", type: "hardlink", linkname: "./bin/su" },
    { name: "./dev/null", type: "chardev", devmajor: 1, devminor: 3, mode: 0o666 },
    { name: "./dev/sda", type: "blockdev", devmajor: 8, devminor: 0 },
    { name: "./run/fifo", type: "fifo", mode: 0o600 },
    { name: "./home/u/f", data: "hi\n", uid: 1000, gid: 2000, mode: 0o640 },
  ]);
  for (const chunk of [1, 511, 512, 4096]) {
    const got = await entries(tar, chunk);
    deepEqual(got.map((e) => [e.path, e.type]), [
      ["./bin/", "directory"],
      ["./bin/su", "file"],
      ["./bin/sh", "symlink"],
      ["./bin/ln", "hardlink"],
      ["./dev/null", "chardev"],
      ["./dev/sda", "blockdev"],
      ["./run/fifo", "fifo"],
      ["./home/u/f", "file"],
    ]);
    equal(got[1]!.data, big);
    equal(got[1]!.size, 5000);
    equal(got[1]!.mode, 0o4755);
    equal(got[1]!.mtime, 1_600_000_000);
    equal(got[2]!.linkname, "busybox");
    equal(got[3]!.linkname, "./bin/su");
    deepEqual([got[4]!.devmajor, got[4]!.devminor, got[4]!.mode], [1, 3, 0o666]);
    deepEqual([got[7]!.uid, got[7]!.gid, got[7]!.mode, got[7]!.data], [1000, 2000, 0o640, "hi\n"]);
  }
});

Deno.test("readTar() applies PAX records: long path and link, size, ids, fractional mtime, xattrs", async () => {
  const long = `./${"d".repeat(80)}/${"f".repeat(80)}`;
  const cap = new Uint8Array([1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0]);
  const tar = makeTar([
    {
      name: long,
      data: "content",
      pax: {
        uid: "4294967294",
        gid: "70000",
        mtime: "1700000000.25",
        "SCHILY.xattr.security.capability": cap,
        "SCHILY.xattr.user.note": "hello",
      },
    },
    { name: "./l", type: "symlink", linkname: `/${"t".repeat(150)}` },
    { name: "./after", data: "z" },
  ]);
  const got = await entries(tar);
  equal(got.length, 3);
  equal(got[0]!.path, long);
  equal(got[0]!.data, "content");
  equal(got[0]!.uid, 4294967294);
  equal(got[0]!.gid, 70000);
  equal(got[0]!.mtime, 1700000000.25);
  deepEqual(Object.keys(got[0]!.xattrs).sort(), ["security.capability", "user.note"]);
  deepEqual(got[0]!.xattrs["security.capability"], cap);
  equal(got[1]!.linkname, `/${"t".repeat(150)}`);
  // PAX records apply to one entry only.
  deepEqual([got[2]!.path, got[2]!.uid, got[2]!.xattrs], ["./after", 0, {}]);
});

Deno.test("readTar() reads GNU long names and base-256 numbers", async () => {
  const long = `./${"g".repeat(120)}/file`;
  const tar = makeTar([{ name: long, data: "gnu", gnu: true }, { name: "./x", data: "" }]);
  // Rewrite ./x's uid as a base-256 number (as GNU tar writes ids over 2097151).
  const start = tar.length - 1024 - 512;
  const uid = tar.subarray(start + 108, start + 116);
  uid.fill(0);
  uid[0] = 0x80;
  uid.set([0x01, 0x00, 0x00, 0x00], 4);
  const sum = tar.subarray(start, start + 512).reduce(
    (n, v, i) => n + (i >= 148 && i < 156 ? 0x20 : v),
    0,
  );
  tar.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), start + 148);
  const got = await entries(tar);
  equal(got[0]!.path, long);
  equal(got[0]!.data, "gnu");
  equal(got[1]!.uid, 0x01000000);
});

Deno.test("readTar() reads archives written by GNU tar in gnu and pax formats", async () => {
  await withTempDir(async (dir) => {
    const src = `${dir}/src`;
    const deep = `${"a".repeat(60)}/${"b".repeat(60)}/${"c".repeat(40)}.txt`;
    await Deno.mkdir(`${src}/${deep.slice(0, deep.lastIndexOf("/"))}`, { recursive: true });
    await Deno.writeTextFile(`${src}/${deep}`, "deep");
    await Deno.writeTextFile(`${src}/one`, "1".repeat(3000));
    await Deno.link(`${src}/one`, `${src}/two`);
    await Deno.symlink("one", `${src}/three`);
    await Deno.chown(`${src}/one`, 123, 456);
    await Deno.chmod(`${src}/one`, 0o2750);
    for (const format of ["gnu", "pax"]) {
      const tarFile = `${dir}/${format}.tar`;
      await run("tar", [`--format=${format}`, "-C", src, "-cf", tarFile, "."]);
      const got = await entries(await Deno.readFile(tarFile));
      const byPath = new Map(got.map((e) => [e.path, e]));
      equal(byPath.get(`./${deep}`)?.data, "deep", format);
      const one = byPath.get("./one") ?? byPath.get("./two")!;
      const other = one.path === "./one" ? byPath.get("./two")! : byPath.get("./one")!;
      equal(one.data, "1".repeat(3000));
      deepEqual([one.mode, one.uid, one.gid], [0o2750, 123, 456]);
      deepEqual([other.type, other.linkname], ["hardlink", one.path]);
      deepEqual([byPath.get("./three")?.type, byPath.get("./three")?.linkname], ["symlink", "one"]);
      ok(byPath.get("./")?.type === "directory", format);
    }
  });
});

Deno.test("readTar() skips unread bodies and drains what follows the end marker", async () => {
  const tar = makeTar([{ name: "a", data: "A".repeat(2000) }, { name: "b", data: "B" }]);
  const withTail = new Uint8Array(tar.length + 3000);
  withTail.set(tar);
  let read = 0;
  const counted = streamOf(withTail).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        read += chunk.length;
        c.enqueue(chunk);
      },
    }),
  );
  const names = [];
  for await (const e of readTar(counted)) names.push(e.path);
  deepEqual(names, ["a", "b"]);
  equal(read, withTail.length);
});

Deno.test("readTar() rejects a corrupt header checksum with its offset", async () => {
  const tar = makeTar([{ name: "a", data: "A" }, { name: "b", data: "B" }]);
  tar[1024 + 10] = 0x41 ^ 0xff; // second header's name ("b" → something else)
  await rejectsWith(entries(tar), "invalid_argument", "test.tar", "checksum", "at byte 1024");
});

Deno.test("readTar() rejects an archive cut inside an entry", async () => {
  const tar = makeTar([{ name: "a", data: "A".repeat(1500) }]);
  await rejectsWith(entries(tar.slice(0, 1200)), "invalid_argument", "truncated");
});

Deno.test("readTar() rejects unsupported entry types by name", async () => {
  const tar = makeTar([{ name: "sparse", data: "x" }]);
  tar[156] = "S".charCodeAt(0);
  const sum = tar.subarray(0, 512).reduce((n, v, i) => n + (i >= 148 && i < 156 ? 0x20 : v), 0);
  tar.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  await rejectsWith(entries(tar), "invalid_argument", '"sparse"', 'unsupported type "S"');
});

Deno.test("readTar() accepts an archive without the end-of-archive blocks", async () => {
  const tar = makeTar([{ name: "a", data: "A" }]);
  const got = await entries(tar.slice(0, tar.length - 1024));
  deepEqual(got.map((e) => e.data), ["A"]);
});

Deno.test("readTar() accepts an archive that ends right after its last entry's data", async () => {
  // umoci 0.4 writes layers like this: no padding after the last file, no end blocks.
  const tar = makeTar([{ name: "a", data: "A".repeat(600) }, { name: "b", data: "BB" }]);
  const got = await entries(tar.slice(0, 512 + 1024 + 512 + 2));
  deepEqual(got.map((e) => [e.path, e.data.length]), [["a", 600], ["b", 2]]);
  await rejectsWith(entries(tar.slice(0, 512 + 1024 + 512 + 1)), "invalid_argument", "truncated");
  await rejectsWith(entries(tar.slice(0, 512 + 1024 + 512 + 100)), "invalid_argument", "truncated");
});
