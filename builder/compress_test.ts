import assert from "node:assert/strict";
import { ARCHIVE_EXTENSIONS, compressArchive } from "./compress.ts";
import { decompress, withTempDir } from "./testing.ts";

const INPUT = new TextEncoder().encode("070701".repeat(5000) + crypto.randomUUID());

for (const kind of ["gzip", "zstd", "none"] as const) {
  Deno.test(`compressArchive(${kind}) is deterministic and round-trips through the CLI`, async () => {
    const a = await compressArchive(INPUT, kind);
    const b = await compressArchive(INPUT, kind);
    assert.deepEqual(a, b);
    if (kind !== "none") assert.ok(a.length < INPUT.length / 10, `${kind} compresses`);
    await withTempDir(async (dir) => {
      const path = `${dir}/x${ARCHIVE_EXTENSIONS[kind]}`;
      await Deno.writeFile(path, a);
      assert.deepEqual(await decompress(path), INPUT);
    });
  });
}

Deno.test("compressArchive(gzip) records no name and mtime 0 in the gzip header", async () => {
  const a = await compressArchive(INPUT, "gzip");
  assert.deepEqual([...a.subarray(0, 3)], [0x1f, 0x8b, 8]);
  assert.equal(a[3]! & 0x08, 0, "FNAME flag clear");
  assert.deepEqual([...a.subarray(4, 8)], [0, 0, 0, 0], "MTIME 0");
});
