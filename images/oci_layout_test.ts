import { deepEqual, equal } from "node:assert/strict";
import { openOciLayout } from "./oci_layout.ts";
import { digestOf, rejectsWith, withTempDir } from "./_testing.ts";
import { handImage, umoci, writeLayout } from "./testing_registry.ts";

Deno.test("openOciLayout() chooses a umoci image by tag and reads its blobs", async () => {
  await withTempDir(async (dir) => {
    const layout = `${dir}/layout`;
    await umoci("init", "--layout", layout);
    await umoci("new", "--image", `${layout}:one`);
    await Deno.writeTextFile(`${dir}/f`, "file");
    await umoci("insert", "--image", `${layout}:one`, `${dir}/f`, "/f");
    await umoci("new", "--image", `${layout}:two`);
    const index = JSON.parse(await Deno.readTextFile(`${layout}/index.json`));
    const one = index.manifests.find((m: { annotations: Record<string, string> }) =>
      m.annotations["org.opencontainers.image.ref.name"] === "one"
    );
    const image = await openOciLayout(layout, { tag: "one" });
    equal(image.tag, "one");
    equal(image.name, null);
    const resolved = await image.resolve();
    equal(resolved.digest, one.digest);
    equal(digestOf(resolved.bytes), one.digest);
    equal(resolved.manifest.layers.length, 1);
    const blob = await image.openBlob(resolved.manifest.layers[0]!);
    const bytes = new Uint8Array(await new Response(blob.body).arrayBuffer());
    deepEqual([digestOf(bytes), blob.size], [resolved.manifest.layers[0]!.digest, bytes.length]);
    await rejectsWith(
      openOciLayout(layout),
      "invalid_argument",
      `OCI layout ${layout} holds 2 images (one, two); choose one with a tag`,
    );
    await rejectsWith(
      openOciLayout(layout, { tag: "three" }),
      "not_found",
      "no image tagged three",
      "one, two",
    );
  });
});

Deno.test("openOciLayout() takes the only image and its full name from annotations", async () => {
  await withTempDir(async (dir) => {
    const image = await handImage([[{ name: "a", data: "a" }]]);
    await writeLayout(dir, [{
      tag: "1.0",
      image,
      annotations: { "io.containerd.image.name": "docker.io/library/demo:1.0" },
    }]);
    const l = await openOciLayout(dir);
    deepEqual([l.name, l.tag], ["docker.io/library/demo:1.0", "1.0"]);
    equal((await l.resolve()).digest, image.digest);
    equal(
      (await openOciLayout(dir, { tag: "docker.io/library/demo:1.0" })).tag,
      "docker.io/library/demo:1.0",
    );
  });
});

Deno.test("openOciLayout() resolves a nested index to linux/amd64", async () => {
  await withTempDir(async (dir) => {
    const amd = await handImage([[{ name: "amd", data: "x" }]]);
    const arm = await handImage([[{ name: "arm", data: "y" }]], {}, { architecture: "arm64" });
    await writeLayout(dir, [{ tag: "amd", image: amd }, { tag: "arm", image: arm }]);
    const indexBytes = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: arm.digest,
          size: arm.manifest.length,
          platform: { os: "linux", architecture: "arm64" },
        },
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: amd.digest,
          size: amd.manifest.length,
          platform: { os: "linux", architecture: "amd64" },
        },
      ],
    }));
    await Deno.writeFile(`${dir}/blobs/sha256/${digestOf(indexBytes).slice(7)}`, indexBytes);
    await Deno.writeTextFile(
      `${dir}/index.json`,
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{
          mediaType: "application/vnd.oci.image.index.v1+json",
          digest: digestOf(indexBytes),
          size: indexBytes.length,
          annotations: { "org.opencontainers.image.ref.name": "multi" },
        }],
      }),
    );
    equal((await (await openOciLayout(dir)).resolve()).digest, amd.digest);
  });
});

Deno.test("openOciLayout() names what is wrong with a directory", async () => {
  await withTempDir(async (dir) => {
    await rejectsWith(openOciLayout(dir), "invalid_argument", `${dir} is not an OCI image layout`);
    await Deno.writeTextFile(`${dir}/oci-layout`, '{"imageLayoutVersion":"2.0.0"}');
    await rejectsWith(openOciLayout(dir), "invalid_argument", 'imageLayoutVersion "2.0.0"');
    const image = await handImage([[{ name: "a", data: "a" }]]);
    await writeLayout(dir, [{ tag: "t", image }]);
    await Deno.remove(`${dir}/blobs/sha256/${image.layers[0]!.slice(7)}`);
    const l = await openOciLayout(dir);
    const m = await l.resolve();
    await rejectsWith(
      l.openBlob(m.manifest.layers[0]!),
      "not_found",
      `is missing blob ${image.layers[0]}`,
    );
    await Deno.writeFile(
      `${dir}/blobs/sha256/${image.digest.slice(7)}`,
      new TextEncoder().encode("{}"),
    );
    await rejectsWith(l.resolve(), "checksum_mismatch", image.digest);
  });
});
