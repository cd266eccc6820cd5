import { deepEqual, equal, throws } from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import {
  type Compression,
  fileCompression,
  layerCompression,
  OCI_LAYER_TYPE,
  openLayer,
} from "./decompress.ts";
import { compress, makeTar, rejectsWith, withTempDir } from "./_testing.ts";

const TAR = makeTar([{ name: "hello", data: "world".repeat(10_000) }]);

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function blob(tool: Compression): Promise<Uint8Array> {
  return tool === "none" ? TAR : await compress(TAR, tool);
}

for (const c of ["none", "gzip", "zstd"] as const) {
  Deno.test(`openLayer() gives back the tar of a ${c} layer`, async () => {
    await withTempDir(async (dir) => {
      await Deno.writeFile(`${dir}/b`, await blob(c));
      equal(await fileCompression(`${dir}/b`), c);
      deepEqual(await bytesOf(await openLayer(`${dir}/b`, OCI_LAYER_TYPE[c])), TAR);
    });
  });
}

Deno.test("openLayer() understands the Docker layer media type", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/b`, await blob("gzip"));
    const s = await openLayer(`${dir}/b`, "application/vnd.docker.image.rootfs.diff.tar.gzip");
    deepEqual(await bytesOf(s), TAR);
  });
});

Deno.test("openLayer() refuses a blob whose magic bytes contradict its media type", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/z`, await blob("zstd"));
    await rejectsWith(
      openLayer(`${dir}/z`, OCI_LAYER_TYPE.gzip, "layer sha256:x"),
      "invalid_argument",
      "layer sha256:x",
      "declared gzip",
      "content is zstd",
    );
    await Deno.writeFile(`${dir}/t`, TAR);
    await rejectsWith(
      openLayer(`${dir}/t`, OCI_LAYER_TYPE.zstd),
      "invalid_argument",
      "not gzip or zstd",
    );
    await Deno.writeFile(`${dir}/g`, await blob("gzip"));
    await rejectsWith(
      openLayer(`${dir}/g`, OCI_LAYER_TYPE.none),
      "invalid_argument",
      "uncompressed",
    );
  });
});

Deno.test("openLayer() turns corrupt gzip and zstd data into errors", async () => {
  await withTempDir(async (dir) => {
    for (const c of ["gzip", "zstd"] as const) {
      const data = await blob(c);
      const cut = data.slice(0, Math.floor(data.length / 2));
      await Deno.writeFile(`${dir}/${c}`, cut);
      await rejectsWith(
        bytesOf(await openLayer(`${dir}/${c}`, OCI_LAYER_TYPE[c], `layer ${c}`)),
        "invalid_argument",
        `layer ${c} could not be decompressed`,
      );
    }
  });
});

Deno.test("layerCompression() rejects media types that are not filesystem layers", () => {
  throws(
    () => layerCompression("application/vnd.cncf.helm.chart.content.v1.tar+gzip", "layer 2"),
    (e: unknown) =>
      e instanceof VolantError && e.code === "invalid_argument" && e.message.includes("layer 2"),
  );
});
