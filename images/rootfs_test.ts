import { deepEqual, equal, ok } from "node:assert/strict";
import { OCI_LAYER_TYPE } from "./decompress.ts";
import { buildRootfs, createWritableDisk, MOUNT_POINTS, rootfsPath, rootfsUuid } from "./rootfs.ts";
import type { UnpackLayer } from "./unpack.ts";
import {
  compress,
  digestOf,
  makeTar,
  rejectsWith,
  run,
  type TarSpec,
  tree,
  withTempDir,
} from "./_testing.ts";

const MANIFEST = digestOf("manifest");

async function layer(dir: string, name: string, entries: TarSpec[]): Promise<UnpackLayer> {
  const tar = makeTar(entries);
  const blob = await compress(tar, "gzip");
  await Deno.writeFile(`${dir}/${name}`, blob);
  return {
    path: `${dir}/${name}`,
    mediaType: OCI_LAYER_TYPE.gzip,
    digest: digestOf(blob),
    diffId: digestOf(tar),
  };
}

/** `dump.erofs --path` fields of one inode: NID, links, uid, gid, mode. */
async function inode(image: string, path: string): Promise<Record<string, string>> {
  const out = await run("dump.erofs", [`--path=${path}`, image]);
  const get = (re: RegExp) => re.exec(out)?.[1] ?? "";
  return {
    nid: get(/NID: (\d+)/),
    links: get(/Links: (\d+)/),
    uid: get(/Uid: (\d+)/),
    gid: get(/Gid: (\d+)/),
    mode: get(/Access: (\d+)/),
  };
}

/**
 * The full `i_mode` of inode `nid`, read from the image (dump.erofs and fsck.erofs show only
 * the permission bits): superblock at 1024 (`blkszbits` at +12, `meta_blkaddr` at +40), inode
 * slots of 32 bytes from the metadata block, `i_mode` at +4.
 */
async function rawMode(image: string, nid: number): Promise<number> {
  const b = await Deno.readFile(image);
  const v = new DataView(b.buffer);
  const blockSize = 1 << v.getUint8(1024 + 12);
  const meta = v.getUint32(1024 + 40, true);
  return v.getUint16(meta * blockSize + nid * 32 + 4, true);
}

Deno.test("buildRootfs() builds an erofs image once, with owners, modes, links and mount points", async () => {
  await withTempDir(async (dir) => {
    const layers = [
      await layer(dir, "l1", [
        { name: "bin/", type: "directory" },
        { name: "bin/busybox", data: "#!busybox", mode: 0o4755 },
        { name: "etc/", type: "directory" },
        { name: "etc/motd", data: "old" },
        { name: "etc/gone", data: "x" },
        { name: "srv/", type: "directory", uid: 33, gid: 33, mode: 0o750 },
        { name: "srv/index.html", data: "<h1>hi</h1>", uid: 33, gid: 33, mode: 0o640 },
        { name: "run", type: "symlink", linkname: "var/run" },
      ]),
      await layer(dir, "l2", [
        { name: "etc/.wh.gone", data: "" },
        { name: "etc/motd", data: "new" },
        { name: "bin/sh", type: "hardlink", linkname: "bin/busybox" },
        { name: "bin/ash", type: "symlink", linkname: "busybox" },
      ]),
    ];
    const store = `${dir}/store`;
    const fs = await buildRootfs(store, MANIFEST, layers);
    equal(fs.path, rootfsPath(store, MANIFEST));
    equal(fs.path, `${store}/rootfs/${MANIFEST.slice(7)}.erofs`);
    equal(fs.cached, false);
    equal(fs.size_bytes, (await Deno.stat(fs.path)).size);
    equal((await Deno.stat(fs.path)).mode! & 0o777, 0o444);
    deepEqual(await tree(`${store}/tmp`), [], "the unpacked tree was deleted");
    deepEqual(await tree(`${store}/rootfs`), [`${MANIFEST.slice(7)}.erofs`]);

    const out = `${dir}/extracted`;
    await run("fsck.erofs", [`--extract=${out}`, fs.path]);
    deepEqual(await tree(out), [
      "bin/",
      "bin/ash",
      "bin/busybox",
      "bin/sh",
      "dev/",
      "etc/",
      "etc/motd",
      "proc/",
      "run",
      "srv/",
      "srv/index.html",
      "sys/",
      "tmp/",
    ]);
    equal(await Deno.readTextFile(`${out}/etc/motd`), "new");
    equal(await Deno.readLink(`${out}/bin/ash`), "busybox");
    equal(await Deno.readLink(`${out}/run`), "var/run", "an image's own /run is kept");
    equal((await Deno.lstat(`${out}/tmp`)).mode! & 0o7777, 0o1777);
    for (const m of MOUNT_POINTS.filter((m) => m !== "run")) {
      equal((await Deno.lstat(`${out}/${m}`)).isDirectory, true);
    }
    const bb = await inode(fs.path, "/bin/busybox");
    const sh = await inode(fs.path, "/bin/sh");
    equal(bb.nid, sh.nid, "the hard link shares the inode");
    equal(bb.links, "2");
    equal(bb.mode, "0755", "dump.erofs shows permission bits only");
    equal(await rawMode(fs.path, Number(bb.nid)), 0o104755, "the setuid bit is in the image");
    deepEqual([(await inode(fs.path, "/srv/index.html")).uid, (await inode(fs.path, "/srv")).gid], [
      "33",
      "33",
    ]);
    equal((await inode(fs.path, "/srv")).mode, "0750");

    const again = await buildRootfs(store, MANIFEST, []);
    deepEqual(again, { path: fs.path, size_bytes: fs.size_bytes, cached: true, warnings: [] });
  });
});

/** `dump.erofs` output with times in UTC. */
async function dumpUtc(args: string[]): Promise<string> {
  const out = await new Deno.Command("dump.erofs", {
    args,
    env: { TZ: "UTC" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

/** The mtime dump.erofs shows for `path`, as Unix seconds. */
async function erofsMtime(image: string, path: string): Promise<number> {
  const out = await dumpUtc([`--path=${path}`, image]);
  const m = /Timestamp: (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)/.exec(out);
  ok(m !== null, out);
  return Date.parse(`${m[1]}T${m[2]}Z`) / 1000;
}

Deno.test("buildRootfs() is reproducible: same layers, same bytes, layer times kept", async () => {
  await withTempDir(async (dir) => {
    const layers = [
      await layer(dir, "l1", [
        { name: "bin/", type: "directory", mtime: 1_600_000_000 },
        { name: "bin/busybox", data: "#!busybox", mode: 0o755, mtime: 1_650_000_000 },
        { name: "etc/", type: "directory", mtime: 1_600_000_000 },
        { name: "etc/motd", data: "hi", mtime: 1_500_000_000, uid: 7, gid: 8 },
        { name: "etc/gone", data: "x", mtime: 1_500_000_000 },
      ]),
      await layer(dir, "l2", [
        // No etc/ entry: adding to /etc and the whiteout give it the unpack's own time.
        { name: "etc/new", data: "new", mtime: 1_690_000_000 },
        { name: "etc/.wh.gone", data: "" },
        { name: "implicit/dir/file", data: "parents made by the unpack", mtime: 1_400_000_000 },
      ]),
    ];
    const first = await buildRootfs(`${dir}/a`, MANIFEST, layers);
    // Let the clock move on, so that unpack-time timestamps would differ.
    await new Promise((r) => setTimeout(r, 1100));
    const second = await buildRootfs(`${dir}/b`, MANIFEST, layers);
    equal(second.cached, false);
    const [a, b] = [await Deno.readFile(first.path), await Deno.readFile(second.path)];
    equal(digestOf(a), digestOf(b), "two builds of the same layers differ");

    equal(await erofsMtime(first.path, "/etc/motd"), 1_500_000_000, "a layer's time is kept");
    equal(await erofsMtime(first.path, "/bin/busybox"), 1_650_000_000);
    equal(await erofsMtime(first.path, "/bin"), 1_600_000_000, "a directory's own time is kept");
    equal(await erofsMtime(first.path, "/implicit/dir/file"), 1_400_000_000);
    for (const path of ["/etc", "/proc", "/tmp", "/implicit", "/"]) {
      equal(
        await erofsMtime(first.path, path),
        1_690_000_000,
        `${path}: clamped to the newest layer time`,
      );
    }
    deepEqual([
      (await inode(first.path, "/etc/motd")).uid,
      (await inode(first.path, "/etc/motd")).gid,
    ], [
      "7",
      "8",
    ]);
    const sb = await dumpUtc(["-s", first.path]);
    ok(sb.includes(`Filesystem UUID:                              ${rootfsUuid(MANIFEST)}`), sb);
    ok(sb.includes("Filesystem created:                           Sat Jul 22 04:26:40 2023"), sb);
    const other = rootfsUuid(digestOf("another manifest"));
    ok(other !== rootfsUuid(MANIFEST));
  });
});

Deno.test("buildRootfs() is reproducible for images written just before the build or dated in the future", async () => {
  await withTempDir(async (dir) => {
    for (
      const [label, mtime] of [
        ["written this second", Math.floor(Date.now() / 1000)],
        ["dated in 2096", 4_000_000_000],
      ] as const
    ) {
      const layers = [
        await layer(dir, `${mtime}-1`, [
          { name: "etc/", type: "directory", mtime: 1_600_000_000 },
          { name: "etc/hostname", data: "x", mtime },
        ]),
        await layer(dir, `${mtime}-2`, [{ name: "etc/motd", data: "y", mtime: 1_500_000_000 }]),
      ];
      const first = await buildRootfs(`${dir}/${mtime}-a`, MANIFEST, layers);
      await new Promise((r) => setTimeout(r, 1100));
      const second = await buildRootfs(`${dir}/${mtime}-b`, MANIFEST, layers);
      equal(
        digestOf(await Deno.readFile(first.path)),
        digestOf(await Deno.readFile(second.path)),
        `${label}: two builds differ`,
      );
      for (const path of ["/etc", "/proc", "/"]) {
        equal(await erofsMtime(first.path, path), mtime, `${label}: ${path}`);
      }
      equal(await erofsMtime(first.path, "/etc/motd"), 1_500_000_000, label);
    }
  });
});

Deno.test("buildRootfs() leaves no tree or image behind when a layer is refused", async () => {
  await withTempDir(async (dir) => {
    const bad = await layer(dir, "bad", [{ name: "../../escape", data: "x" }]);
    const store = `${dir}/store`;
    await rejectsWith(buildRootfs(store, MANIFEST, [bad]), "invalid_argument", '"../../escape"');
    deepEqual(await tree(`${store}/tmp`), []);
    deepEqual(await tree(`${store}/rootfs`), []);
    deepEqual((await tree(dir)).filter((p) => p.includes("escape")), []);
  });
});

Deno.test("createWritableDisk() makes a sparse ext4 disk that occupies little space", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/upper.ext4`;
    const disk = await createWritableDisk(path, 1024);
    equal(disk.size_bytes, 1024 * 1024 * 1024);
    const st = await Deno.stat(path);
    equal(disk.allocated_bytes, st.blocks! * 512);
    const du = Number((await run("du", ["-B1", path])).split("\t")[0]);
    equal(du, disk.allocated_bytes);
    ok(disk.allocated_bytes < 8 * 1024 * 1024, `${disk.allocated_bytes} bytes on disk`);
    const header = await run("dumpe2fs", ["-h", path]);
    ok(header.includes("Filesystem magic number:  0xEF53"), header);
    ok(/Block count:\s+262144/.test(header), header);
    await run("e2fsck", ["-n", "-f", path]);
    console.log(`writable disk of 1 GiB: ${disk.allocated_bytes} bytes on disk`);
  });
});

Deno.test("createWritableDisk() refuses to overwrite and rejects silly sizes", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/taken`, "data");
    await rejectsWith(createWritableDisk(`${dir}/taken`, 64), "already_exists", `${dir}/taken`);
    equal(await Deno.readTextFile(`${dir}/taken`), "data");
    for (const size of [0, 3, 1.5, Number.NaN]) {
      await rejectsWith(createWritableDisk(`${dir}/d`, size), "invalid_argument", "sizeMiB");
    }
    deepEqual(await tree(dir), ["taken"]);
  });
});
