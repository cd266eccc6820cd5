import { deepEqual, equal, ok } from "node:assert/strict";
import { type Compression, OCI_LAYER_TYPE } from "./decompress.ts";
import { type UnpackLayer, unpackLayers } from "./unpack.ts";
import { hasSetfattr } from "./_metadata.ts";
import {
  compress,
  digestOf,
  makeTar,
  rejectsWith,
  type TarSpec,
  tree,
  withTempDir,
} from "./_testing.ts";

const isRoot = Deno.uid() === 0;

async function layers(
  dir: string,
  specs: { entries: TarSpec[]; compression?: Compression }[],
): Promise<UnpackLayer[]> {
  const out: UnpackLayer[] = [];
  for (const [i, s] of specs.entries()) {
    const tar = makeTar(s.entries);
    const c = s.compression ?? "gzip";
    const blob = c === "none" ? tar : await compress(tar, c);
    const path = `${dir}/layer${i}`;
    await Deno.writeFile(path, blob);
    out.push({ path, mediaType: OCI_LAYER_TYPE[c], digest: digestOf(blob), diffId: digestOf(tar) });
  }
  return out;
}

const read = (p: string) => Deno.readTextFile(p);

Deno.test("unpackLayers() applies whiteouts, opaque dirs, replacements, links and metadata", async () => {
  await withTempDir(async (dir) => {
    const stack = await layers(dir, [
      {
        compression: "gzip",
        entries: [
          { name: "./etc/", type: "directory" },
          { name: "./etc/a", data: "a" },
          { name: "./etc/b", data: "b" },
          { name: "./opt/x/", type: "directory" },
          { name: "./opt/x/old", data: "old" },
          { name: "./opt/x/sub/", type: "directory" },
          { name: "./opt/x/sub/deep", data: "deep" },
          { name: "./d/", type: "directory" },
          { name: "./d/inner", data: "inner" },
          { name: "./f", data: "was a file" },
          { name: "./bin/", type: "directory", mode: 0o755, mtime: 1_500_000_000 },
          { name: "./bin/busybox", data: "BB", mode: 0o4755, uid: 0, gid: 0, mtime: 1_400_000_000 },
          { name: "./home/u/", type: "directory", uid: 1000, gid: 1000, mode: 0o700 },
          { name: "./home/u/.profile", data: "p", uid: 1000, gid: 1001, mode: 0o640 },
        ],
      },
      {
        compression: "zstd",
        entries: [
          { name: "./etc/.wh.a", data: "" },
          { name: "./opt/x/early", data: "early" },
          { name: "./opt/x/.wh..wh..opq", data: "" },
          { name: "./opt/x/new", data: "new" },
          { name: "./d", data: "now a file" },
          { name: "./f/", type: "directory" },
          { name: "./f/g", data: "g" },
          { name: "./bin/sh", type: "symlink", linkname: "busybox", mtime: 1_300_000_000 },
          { name: "./bin/ls", type: "hardlink", linkname: "./bin/busybox" },
        ],
      },
      { compression: "none", entries: [{ name: "./etc/c", data: "c", mode: 0o2711 }] },
    ]);
    const root = `${dir}/root`;
    const r = await unpackLayers(stack, root);
    equal(r.entries, 24);
    deepEqual(await tree(root), [
      "bin/",
      "bin/busybox",
      "bin/ls",
      "bin/sh",
      "d",
      "etc/",
      "etc/b",
      "etc/c",
      "f/",
      "f/g",
      "home/",
      "home/u/",
      "home/u/.profile",
      "opt/",
      "opt/x/",
      "opt/x/early",
      "opt/x/new",
    ]);
    equal(await read(`${root}/d`), "now a file");
    equal(await read(`${root}/f/g`), "g");
    equal(await read(`${root}/opt/x/early`), "early");
    equal(await Deno.readLink(`${root}/bin/sh`), "busybox");
    const bb = await Deno.lstat(`${root}/bin/busybox`);
    const ls = await Deno.lstat(`${root}/bin/ls`);
    equal(bb.ino, ls.ino);
    equal(bb.nlink, 2);
    equal(bb.mode! & 0o7777, 0o4755);
    equal(bb.mtime!.getTime(), 1_400_000_000_000);
    equal((await Deno.lstat(`${root}/bin/sh`)).mtime!.getTime(), 1_300_000_000_000);
    // A directory keeps its archived time unless a later layer changes its content.
    equal((await Deno.lstat(`${root}/home/u`)).mtime!.getTime(), 1_700_000_000_000);
    ok((await Deno.lstat(`${root}/bin`)).mtime!.getTime() > 1_500_000_000_000);
    equal((await Deno.lstat(`${root}/etc/c`)).mode! & 0o7777, 0o2711);
    const profile = await Deno.lstat(`${root}/home/u/.profile`);
    if (isRoot) deepEqual([profile.uid, profile.gid], [1000, 1001]);
    equal(profile.mode! & 0o777, 0o640);
    equal((await Deno.lstat(`${root}/home/u`)).mode! & 0o777, 0o700);
    deepEqual(r.warnings, []);
  });
});

Deno.test("unpackLayers() follows a relative symlink inside the root for later entries", async () => {
  await withTempDir(async (dir) => {
    const stack = await layers(dir, [
      {
        entries: [
          { name: "usr/lib/", type: "directory" },
          { name: "lib", type: "symlink", linkname: "usr/lib" },
          { name: "usr/lib64", type: "symlink", linkname: "../usr/./lib" },
        ],
      },
      { entries: [{ name: "lib/libc.so", data: "c" }, { name: "usr/lib64/ld.so", data: "ld" }] },
    ]);
    await unpackLayers(stack, `${dir}/root`);
    equal(await read(`${dir}/root/usr/lib/libc.so`), "c");
    equal(await read(`${dir}/root/usr/lib/ld.so`), "ld");
    equal((await Deno.lstat(`${dir}/root/lib`)).isSymlink, true);
  });
});

async function assertRefused(
  dir: string,
  specs: { entries: TarSpec[] }[],
  ...parts: string[]
): Promise<void> {
  const stack = await layers(dir, specs);
  await rejectsWith(unpackLayers(stack, `${dir}/root`), "invalid_argument", ...parts);
  equal((await tree(dir)).includes("root/"), false, "the partial tree was left behind");
}

Deno.test("unpackLayers() refuses ../ escapes, names the entry and removes the tree", async () => {
  await withTempDir(async (dir) => {
    await assertRefused(
      dir,
      [{ entries: [{ name: "ok", data: "1" }, { name: "../evil", data: "x" }] }],
      '"../evil"',
      "climbs out of the image root",
      "Layer 1 of 1",
    );
    await assertRefused(
      dir,
      [{ entries: [{ name: "a/../../evil", data: "x" }] }],
      '"a/../../evil"',
    );
    deepEqual((await tree(dir)).filter((p) => p.includes("evil")), []);
    equal(await Deno.lstat(`${dir}/../evil`).then(() => true, () => false), false);
  });
});

Deno.test("unpackLayers() never writes through a symlink pointing outside the root", async () => {
  await withTempDir(async (dir) => {
    const passwd = await Deno.readFile("/etc/passwd");
    const before = (await Deno.stat("/etc/passwd")).mtime;
    await assertRefused(
      dir,
      [
        { entries: [{ name: "link", type: "symlink", linkname: "/etc" }] },
        { entries: [{ name: "link/passwd", data: "root::0:0::/:/bin/sh\n" }] },
      ],
      '"link/passwd"',
      "Layer 2 of 2",
      "symlink /link -> /etc",
      "outside the image root",
    );
    deepEqual(await Deno.readFile("/etc/passwd"), passwd);
    deepEqual((await Deno.stat("/etc/passwd")).mtime, before);
    // The same through a relative symlink that climbs out, in one layer.
    await Deno.mkdir(`${dir}/outside`);
    await assertRefused(
      dir,
      [{
        entries: [
          { name: "up", type: "symlink", linkname: "../outside" },
          { name: "up/planted", data: "x" },
        ],
      }],
      '"up/planted"',
      "symlink /up -> ../outside",
    );
    deepEqual(await tree(`${dir}/outside`), []);
  });
});

Deno.test("unpackLayers() replaces a symlink by a file instead of writing through it", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/victim`, "unchanged");
    const stack = await layers(dir, [
      { entries: [{ name: "s", type: "symlink", linkname: `${dir}/victim` }] },
      { entries: [{ name: "s", data: "new content" }] },
    ]);
    await unpackLayers(stack, `${dir}/root`);
    equal(await read(`${dir}/victim`), "unchanged");
    equal((await Deno.lstat(`${dir}/root/s`)).isFile, true);
    equal(await read(`${dir}/root/s`), "new content");
  });
});

Deno.test("unpackLayers() refuses hard links outside the root or to missing files", async () => {
  await withTempDir(async (dir) => {
    await assertRefused(
      dir,
      [{ entries: [{ name: "pw", type: "hardlink", linkname: "../../../etc/passwd" }] }],
      '"pw"',
      "outside the image root",
    );
    await assertRefused(
      dir,
      [{ entries: [{ name: "pw", type: "hardlink", linkname: "nothing/here" }] }],
      "does not exist",
    );
    await assertRefused(
      dir,
      [{
        entries: [
          { name: "l", type: "symlink", linkname: "/etc" },
          { name: "pw", type: "hardlink", linkname: "l/passwd" },
        ],
      }],
      '"pw"',
      "symlink /l -> /etc",
    );
  });
});

Deno.test({
  name: "unpackLayers() creates device nodes and fifos with mknod" +
    (isRoot ? "" : " (skipped: mknod of device nodes needs root)"),
  ignore: !isRoot,
  fn: async () => {
    await withTempDir(async (dir) => {
      const stack = await layers(dir, [{
        entries: [
          { name: "dev/null", type: "chardev", devmajor: 1, devminor: 3, mode: 0o666 },
          { name: "dev/loop9", type: "blockdev", devmajor: 7, devminor: 9, mode: 0o660, gid: 6 },
          { name: "run/ctl", type: "fifo", mode: 0o620 },
        ],
      }]);
      await unpackLayers(stack, `${dir}/root`);
      const cn = await Deno.lstat(`${dir}/root/dev/null`);
      equal(cn.isCharDevice, true);
      equal(cn.rdev, (1 << 8) | 3);
      equal(cn.mode! & 0o777, 0o666);
      const bd = await Deno.lstat(`${dir}/root/dev/loop9`);
      equal(bd.isBlockDevice, true);
      equal(bd.gid, 6);
      const fifo = await Deno.lstat(`${dir}/root/run/ctl`);
      equal(fifo.isFifo, true);
      equal(fifo.mode! & 0o777, 0o620);
    });
  },
});

Deno.test("unpackLayers() sets xattrs with setfattr or reports that it skipped them", async () => {
  await withTempDir(async (dir) => {
    const stack = await layers(dir, [{
      entries: [{ name: "bin/ping", data: "p", pax: { "SCHILY.xattr.user.volant": "yes" } }],
    }]);
    const r = await unpackLayers(stack, `${dir}/root`);
    if (await hasSetfattr()) {
      deepEqual(r.warnings, []);
      const out = await new Deno.Command("getfattr", {
        args: ["-n", "user.volant", "--only-values", `${dir}/root/bin/ping`],
        stdout: "piped",
      }).output();
      equal(new TextDecoder().decode(out.stdout), "yes");
    } else {
      equal(r.warnings.length, 1);
      ok(r.warnings[0]!.includes("xattr user.volant skipped"), r.warnings[0]);
      ok(r.warnings[0]!.includes("/bin/ping"), r.warnings[0]);
    }
  });
});

Deno.test("unpackLayers() checks diff_ids and removes the tree on a mismatch", async () => {
  await withTempDir(async (dir) => {
    const [layer] = await layers(dir, [{ entries: [{ name: "a", data: "a" }] }]);
    const wrong = digestOf("something else");
    await rejectsWith(
      unpackLayers([{ ...layer!, diffId: wrong }], `${dir}/root`),
      "checksum_mismatch",
      layer!.digest,
      wrong,
    );
    equal((await tree(dir)).includes("root/"), false);
  });
});

Deno.test("unpackLayers() stops on abort and removes the tree", async () => {
  await withTempDir(async (dir) => {
    const stack = await layers(dir, [{ entries: [{ name: "a", data: "a" }] }]);
    const ctl = new AbortController();
    ctl.abort(new Error("stop"));
    let caught: unknown;
    await unpackLayers(stack, `${dir}/root`, { signal: ctl.signal }).catch((e) => caught = e);
    equal((caught as Error).message, "stop");
    equal((await tree(dir)).includes("root/"), false);
  });
});

Deno.test("unpackLayers() refuses a target that already exists", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/root`);
    await Deno.writeTextFile(`${dir}/root/keep`, "k");
    let caught: unknown;
    await unpackLayers([], `${dir}/root`).catch((e) => caught = e);
    ok(caught instanceof Deno.errors.AlreadyExists);
    equal(await read(`${dir}/root/keep`), "k");
  });
});
