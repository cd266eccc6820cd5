import { deepEqual, equal, ok } from "node:assert/strict";
import { openDockerArchive } from "./docker_archive.ts";
import {
  digestOf,
  makeTar,
  rejectsWith,
  run,
  type TarSpec,
  tree,
  withTempDir,
} from "./_testing.ts";
import { handImage, umoci, writeLayout } from "./testing_registry.ts";

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A legacy `docker save` archive as Docker ≤24 writes it: `<id>/layer.tar`, `<config>.json`. */
async function legacyArchive(
  path: string,
  images: { tags: string[]; layers: TarSpec[][] }[],
): Promise<void> {
  const members: TarSpec[] = [];
  const manifest = [];
  for (const img of images) {
    const layerNames: string[] = [];
    const diffIds: string[] = [];
    for (const specs of img.layers) {
      const tar = makeTar(specs);
      const id = digestOf(tar).slice(7);
      const name = `${id}/layer.tar`;
      if (!members.some((m) => m.name === name)) {
        members.push({ name: `${id}/`, type: "directory" }, { name, data: tar });
      }
      layerNames.push(name);
      diffIds.push(digestOf(tar));
    }
    const config = JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["/bin/sh"], Env: ["A=1"] },
      rootfs: { type: "layers", diff_ids: diffIds },
    });
    const configName = `${digestOf(config).slice(7)}.json`;
    members.push({ name: configName, data: config });
    manifest.push({ Config: configName, RepoTags: img.tags, Layers: layerNames });
  }
  members.push({ name: "manifest.json", data: JSON.stringify(manifest) });
  await Deno.writeFile(path, makeTar(members));
}

Deno.test("openDockerArchive() reads the legacy flavour and writes a manifest for it", async () => {
  await withTempDir(async (dir) => {
    await legacyArchive(`${dir}/a.tar`, [{
      tags: ["demo:1"],
      layers: [[{ name: "a", data: "A" }], [{ name: "b", data: "B" }]],
    }]);
    await Deno.mkdir(`${dir}/work`);
    const image = await openDockerArchive(`${dir}/a.tar`, `${dir}/work`);
    deepEqual([image.flavour, image.name, image.tag], ["legacy", "docker.io/library/demo:1", "1"]);
    const m = await image.resolve();
    equal(m.digest, digestOf(m.bytes));
    deepEqual(m.manifest.layers.map((l) => l.mediaType), [
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar",
    ]);
    const layer = await readAll((await image.openBlob(m.manifest.layers[1]!)).body);
    equal(digestOf(layer), m.manifest.layers[1]!.digest);
    const config = JSON.parse(
      new TextDecoder().decode(await readAll((await image.openBlob(m.manifest.config)).body)),
    );
    deepEqual(config.config.Cmd, ["/bin/sh"]);
  });
});

Deno.test("openDockerArchive() reads skopeo's docker-archive with symlinked layers", async () => {
  await withTempDir(async (dir) => {
    const layout = `${dir}/layout`;
    await umoci("init", "--layout", layout);
    await umoci("new", "--image", `${layout}:t`);
    await Deno.writeTextFile(`${dir}/hello`, "hello");
    await umoci("insert", "--image", `${layout}:t`, `${dir}/hello`, "/hello");
    await umoci("config", "--image", `${layout}:t`, "--config.cmd", "/hello");
    await run("skopeo", [
      "copy",
      "--quiet",
      `oci:${layout}:t`,
      `docker-archive:${dir}/s.tar:demo/x:1`,
    ]);
    const listing = await run("tar", ["-tvf", `${dir}/s.tar`]);
    ok(listing.includes("layer.tar -> ../"), "skopeo wrote symlinked layers");
    await Deno.mkdir(`${dir}/work`);
    const image = await openDockerArchive(`${dir}/s.tar`, `${dir}/work`);
    equal(image.name, "docker.io/demo/x:1");
    const m = await image.resolve();
    const src = JSON.parse(await Deno.readTextFile(`${layout}/index.json`)).manifests[0].digest;
    const original = JSON.parse(await Deno.readTextFile(`${layout}/blobs/sha256/${src.slice(7)}`));
    equal(m.manifest.config.digest, original.config.digest, "the config is carried over unchanged");
    equal(m.manifest.layers.length, original.layers.length);
    for (const l of m.manifest.layers) {
      equal(digestOf(await readAll((await image.openBlob(l)).body)), l.digest);
    }
  });
});

Deno.test("openDockerArchive() reads the docker ≥25 flavour as the OCI layout inside it", async () => {
  await withTempDir(async (dir) => {
    const img = await handImage([[{ name: "x", data: "x" }]], { Cmd: ["x"] });
    const layout = `${dir}/layout`;
    await writeLayout(layout, [{
      tag: "2.0",
      image: img,
      annotations: { "io.containerd.image.name": "registry.example/team/app:2.0" },
    }]);
    await Deno.writeTextFile(
      `${layout}/manifest.json`,
      JSON.stringify([{
        Config: `blobs/sha256/${img.configDigest.slice(7)}`,
        RepoTags: ["registry.example/team/app:2.0"],
        Layers: img.layers.map((l) => `blobs/sha256/${l.slice(7)}`),
      }]),
    );
    await run("tar", ["-C", layout, "-cf", `${dir}/new.tar`, "."]);
    await Deno.mkdir(`${dir}/work`);
    const image = await openDockerArchive(`${dir}/new.tar`, `${dir}/work`);
    deepEqual([image.flavour, image.name], ["oci", "registry.example/team/app:2.0"]);
    equal((await image.resolve()).digest, img.digest, "the registry manifest digest is kept");
  });
});

Deno.test("openDockerArchive() chooses by tag among several images", async () => {
  await withTempDir(async (dir) => {
    await legacyArchive(`${dir}/two.tar`, [
      { tags: ["one:1"], layers: [[{ name: "one", data: "1" }]] },
      { tags: ["two:2", "two:latest"], layers: [[{ name: "two", data: "2" }]] },
    ]);
    for (const w of ["w1", "w2", "w3"]) await Deno.mkdir(`${dir}/${w}`);
    await rejectsWith(
      openDockerArchive(`${dir}/two.tar`, `${dir}/w1`),
      "invalid_argument",
      "holds 2 images (one:1, two:2, two:latest); choose one with a tag",
    );
    const two = await openDockerArchive(`${dir}/two.tar`, `${dir}/w2`, { tag: "two:latest" });
    equal(two.name, "docker.io/library/two:latest");
    await rejectsWith(
      openDockerArchive(`${dir}/two.tar`, `${dir}/w3`, { tag: "three" }),
      "not_found",
      "three",
    );
  });
});

Deno.test("openDockerArchive() refuses members that climb out and archives without manifest.json", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/evil.tar`, makeTar([{ name: "../../planted", data: "x" }]));
    await Deno.mkdir(`${dir}/work`);
    await rejectsWith(
      openDockerArchive(`${dir}/evil.tar`, `${dir}/work`),
      "invalid_argument",
      '"../../planted"',
    );
    deepEqual((await tree(dir)).filter((p) => p.includes("planted")), []);
    await Deno.writeFile(`${dir}/empty.tar`, makeTar([{ name: "other", data: "x" }]));
    await Deno.mkdir(`${dir}/work2`);
    await rejectsWith(
      openDockerArchive(`${dir}/empty.tar`, `${dir}/work2`),
      "invalid_argument",
      "manifest.json",
    );
    await rejectsWith(
      openDockerArchive(`${dir}/absent.tar`, `${dir}/work2`),
      "not_found",
      "absent.tar",
    );
  });
});
