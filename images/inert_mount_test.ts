import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { OCI_LAYER_TYPE } from "./decompress.ts";
import { ImageStore } from "./image_store.ts";
import { makeInertDir, mountsUnder } from "./_inert_mount.ts";
import { buildRootfs } from "./rootfs.ts";
import { compress, digestOf, makeTar, run, tree, withTempDir } from "./_testing.ts";

// Untrusted layers carry device nodes and setuid-root files: they are unpacked on a root-only,
// nodev,nosuid,noexec mount, and nothing of them stays on the host.
const isRoot = Deno.uid() === 0;
const skip = isRoot ? "" : " (skipped: mounting needs root)";

async function mountOptions(path: string): Promise<string[]> {
  const line = (await Deno.readTextFile("/proc/self/mountinfo")).split("\n")
    .find((l) => l.split(" ")[4] === path);
  return line?.split(" ")[5]?.split(",") ?? [];
}

Deno.test({
  name:
    "makeInertDir() is a root-only nodev,nosuid,noexec mount: a device node in it cannot be opened" +
    skip,
  ignore: !isRoot,
  fn: () =>
    withTempDir(async (dir) => {
      const inert = await makeInertDir(`${dir}/scratch`);
      try {
        ok(inert.mounted, inert.reason);
        equal((await Deno.stat(inert.path)).mode! & 0o777, 0o700);
        const options = await mountOptions(inert.path);
        for (const o of ["nodev", "nosuid", "noexec"]) ok(options.includes(o), options.join(","));
        await run("mknod", ["-m", "0666", `${inert.path}/zero`, "c", "1", "5"]);
        await rejects(
          () => Deno.open(`${inert.path}/zero`, { read: true }),
          Deno.errors.PermissionDenied,
        );
      } finally {
        await inert.release();
      }
      deepEqual(await mountsUnder(`${dir}/scratch`), [], "released");
    }),
});

Deno.test({
  name: "buildRootfs() puts an image's device node and setuid-root file into the erofs image, " +
    "and leaves neither on the host" + skip,
  ignore: !isRoot,
  fn: () =>
    withTempDir(async (dir) => {
      const tar = makeTar([
        { name: "dev/", type: "directory" },
        { name: "dev/sda", type: "blockdev", devmajor: 8, devminor: 0, mode: 0o666 },
        { name: "bin/", type: "directory" },
        { name: "bin/su", data: "#!su", mode: 0o4755, uid: 0, gid: 0 },
      ]);
      const blob = await compress(tar, "gzip");
      await Deno.writeFile(`${dir}/layer`, blob);
      const store = `${dir}/store`;
      const manifest = digestOf("inert-manifest");
      const fs = await buildRootfs(store, manifest, [{
        path: `${dir}/layer`,
        mediaType: OCI_LAYER_TYPE.gzip,
        digest: digestOf(blob),
        diffId: digestOf(tar),
      }]);
      deepEqual(fs.warnings.filter((w) => /inert/.test(w)), []);
      deepEqual(await tree(`${store}/tmp`), [], "no unpack tree is left");
      deepEqual(await mountsUnder(store), [], "no mount is left");
      equal((await Deno.stat(`${store}/tmp`)).mode! & 0o777, 0o700);
      // The guest sees them: they are in the image.
      match(await run("dump.erofs", ["--path=/dev/sda", fs.path]), /Block device|blockdev|block/i);
      match(await run("dump.erofs", ["--path=/bin/su", fs.path]), /Uid: 0/);
    }),
});

Deno.test({
  name: "ImageStore.gc() unmounts and removes what an unpack cut short by kill -9 left" + skip,
  ignore: !isRoot,
  fn: () =>
    withTempDir(async (dir) => {
      const store = new ImageStore(`${dir}/images`);
      await Deno.mkdir(`${dir}/images/tmp`, { recursive: true });
      // What a killed daemon leaves: the inert mount and a half-unpacked tree.
      const left = await makeInertDir(`${dir}/images/tmp/unpack-${"a".repeat(64)}-x`);
      ok(left.mounted, left.reason);
      await Deno.mkdir(`${left.path}/root/dev`, { recursive: true });
      await run("mknod", ["-m", "0666", `${left.path}/root/dev/zero`, "c", "1", "5"]);
      const result = await store.gc();
      ok(result.temp >= 1);
      deepEqual(await mountsUnder(`${dir}/images`), []);
      deepEqual(await tree(`${dir}/images/tmp`), []);
    }),
});
