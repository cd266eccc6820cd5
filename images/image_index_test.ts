import { deepEqual, equal } from "node:assert/strict";
import { ImageIndexFile, type ImageRecord, recordBlobs } from "./image_index.ts";
import { digestOf, rejectsWith, tree, withTempDir } from "./_testing.ts";

function record(ref: string, seed: string): ImageRecord {
  return {
    ref,
    digest: digestOf(`m${seed}`),
    config_digest: digestOf(`c${seed}`),
    platform: "linux/amd64",
    source: "registry",
    config: {
      entrypoint: null,
      cmd: ["sh"],
      env: [],
      workdir: null,
      user: null,
      exposed_ports: [],
    },
    rootfs: { path: `/x/${seed}.erofs`, size_bytes: 4096 },
    layers: [{
      digest: digestOf(`l${seed}`),
      size: 10,
      media_type: "application/vnd.oci.image.layer.v1.tar",
    }],
    warnings: [],
    created_at: "2026-01-01T00:00:00.000Z",
  };
}

Deno.test("ImageIndexFile starts empty and round-trips records atomically", async () => {
  await withTempDir(async (dir) => {
    const index = new ImageIndexFile(`${dir}/sub/images.json`);
    deepEqual(await index.read(), []);
    const a = record("docker.io/library/a:1", "a");
    await index.update((rs) => [...rs, a]);
    deepEqual(await index.read(), [a]);
    deepEqual(await tree(`${dir}/sub`), ["images.json"], "no temp file is left");
    equal(JSON.parse(await Deno.readTextFile(`${dir}/sub/images.json`)).version, 1);
  });
});

Deno.test("ImageIndexFile runs concurrent updates one after another", async () => {
  await withTempDir(async (dir) => {
    const index = new ImageIndexFile(`${dir}/images.json`);
    await Promise.all(
      ["a", "b", "c", "d"].map((s) =>
        index.update(async (rs) => {
          await new Promise((r) => setTimeout(r, 5));
          return [...rs, record(`r/${s}:1`, s)];
        })
      ),
    );
    deepEqual((await index.read()).map((r) => r.ref).sort(), ["r/a:1", "r/b:1", "r/c:1", "r/d:1"]);
  });
});

Deno.test("ImageIndexFile keeps the old file when an update fails", async () => {
  await withTempDir(async (dir) => {
    const index = new ImageIndexFile(`${dir}/images.json`);
    await index.update(() => [record("r/a:1", "a")]);
    let caught: unknown;
    await index.update(() => {
      throw new Error("boom");
    }).catch((e) => caught = e);
    equal((caught as Error).message, "boom");
    deepEqual((await index.read()).map((r) => r.ref), ["r/a:1"]);
    await index.update((rs) => [...rs, record("r/b:1", "b")]);
    equal((await index.read()).length, 2, "the queue goes on after a failure");
  });
});

Deno.test("ImageIndexFile names a corrupt file", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/images.json`, '{"version":1,"images":[{"ref":1}]}');
    await rejectsWith(
      new ImageIndexFile(`${dir}/images.json`).read(),
      "internal",
      `${dir}/images.json is corrupt`,
    );
    await Deno.writeTextFile(`${dir}/images.json`, "{");
    await rejectsWith(new ImageIndexFile(`${dir}/images.json`).read(), "internal", "corrupt");
  });
});

Deno.test("recordBlobs() lists manifest, config and layers", () => {
  const r = record("r/a:1", "a");
  deepEqual(recordBlobs(r), [r.digest, r.config_digest, r.layers[0]!.digest]);
});
