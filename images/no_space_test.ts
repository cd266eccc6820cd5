import { deepEqual, equal, match } from "node:assert/strict";
import type { VolantError } from "../schema/error.ts";
import { BlobStore } from "./blob_store.ts";
import { OCI_LAYER_TYPE } from "./decompress.ts";
import { unpackLayers } from "./unpack.ts";
import { compress, digestOf, makeTar, run, tree, withTempDir } from "./_testing.ts";

// What a guest-controlled or remote input can make the host write is bounded: a layer that
// unpacks past its cap is refused, and a full disk is a clear error with nothing partial left.
const isRoot = Deno.uid() === 0;

async function zeroLayer(dir: string, bytes: number) {
  const tar = makeTar([{ name: "big", data: new Uint8Array(bytes) }]);
  const blob = await compress(tar, "gzip");
  await Deno.writeFile(`${dir}/layer`, blob);
  return [{
    path: `${dir}/layer`,
    mediaType: OCI_LAYER_TYPE.gzip,
    digest: digestOf(blob),
    diffId: digestOf(tar),
  }];
}

/** A tmpfs of `size` mounted in `dir` for the test (root only). */
async function withTinyFs(dir: string, size: string, fn: (fs: string) => Promise<void>) {
  const fs = `${dir}/tiny`;
  await Deno.mkdir(fs);
  await run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", fs]);
  try {
    await fn(fs);
  } finally {
    await run("umount", [fs]);
  }
}

Deno.test("unpackLayers() refuses a small layer that unpacks past its cap, leaving nothing", () =>
  withTempDir(async (dir) => {
    const layers = await zeroLayer(dir, 4 * 1024 * 1024);
    const err = await unpackLayers(layers, `${dir}/root`, { maxBytes: 1024 * 1024 }).then(
      () => null,
      (e: VolantError) => e,
    );
    equal(err?.code, "invalid_argument");
    match(err?.message ?? "", /unpacks to more than 1048576 bytes of files \(at "big"\)/);
    deepEqual(await tree(dir), ["layer"], "the partial tree is removed");
  }));

Deno.test({
  name: "a full disk while unpacking or downloading is a clear error, with nothing partial left" +
    (isRoot ? "" : " (skipped: mounting a small tmpfs needs root)"),
  ignore: !isRoot,
  fn: () =>
    withTempDir(async (dir) => {
      const layers = await zeroLayer(dir, 2 * 1024 * 1024);
      await withTinyFs(dir, "512k", async (fs) => {
        const err = await unpackLayers(layers, `${fs}/root`).then(() => null, (e) => e);
        equal(err?.code, "invalid_state", String(err));
        match(err.message, /no space left on the filesystem holding .*tiny\/root/);
        deepEqual(await tree(fs), []);

        const store = new BlobStore(`${fs}/images`);
        const bytes = new Uint8Array(2 * 1024 * 1024);
        const blobErr = await store.ensure(digestOf(bytes), () =>
          Promise.resolve({ body: new Response(bytes).body!, size: bytes.length })).then(
            () =>
              null,
            (e) => e,
          );
        equal(blobErr?.code, "invalid_state", String(blobErr));
        match(blobErr.message, /^Download of blob sha256:\w+: no space left/);
        deepEqual(await store.list(), []);
        deepEqual((await tree(`${fs}/images`)).filter((p) => !p.endsWith("/")), [], "no temp file");
      });
    }),
});
