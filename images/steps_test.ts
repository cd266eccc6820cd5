import { deepEqual } from "node:assert/strict";
import { IMAGE_STEPS, type ImageStep, ImageStore } from "./mod.ts";
import { withTempDir } from "./_testing.ts";
import { fakeRegistry, handImage } from "./testing_registry.ts";

Deno.test("ImageStore calls onStep at each step of a pull, in order; a cached pull at none", async () => {
  const image = await handImage([
    [{ name: "a", data: "a".repeat(10_000) }],
    [{ name: "b", data: "b" }],
  ]);
  const fake = fakeRegistry({ "demo/x:1": image });
  try {
    await withTempDir(async (dir) => {
      const steps: ImageStep[] = [];
      const store = new ImageStore(dir, { layerConcurrency: 1, onStep: (s) => steps.push(s) });
      await store.pull(`${fake.host}/demo/x:1`, { insecure: true });
      deepEqual(steps, [
        "blob_chunk",
        "blob_committed",
        "blob_chunk",
        "blob_committed",
        "layer_unpacked",
        "layer_unpacked",
        "rootfs_built",
        "rootfs_placed",
      ]);
      deepEqual(new Set(steps), new Set(IMAGE_STEPS), "every step is reached");
      steps.length = 0;
      await store.pull(`${fake.host}/demo/x:1`, { insecure: true });
      deepEqual(steps, [], "nothing is written again");
    });
  } finally {
    await fake.close();
  }
});
