import { deepEqual, equal } from "node:assert/strict";
import { ArtifactCache } from "./mod.ts";
import { checksumOf, names, patternBytes, rejectsWith, withTempDir } from "./_testing.ts";

async function fill(
  dir: string,
  sizes: number[],
): Promise<{ cache: ArtifactCache; sums: string[] }> {
  const cache = new ArtifactCache(`${dir}/state`);
  const sums: string[] = [];
  for (const [i, size] of sizes.entries()) {
    const bytes = patternBytes(size, i + 1);
    await Deno.writeFile(`${dir}/src${i}`, bytes);
    sums.push((await cache.fetchArtifact(`${dir}/src${i}`, checksumOf(bytes))).checksum);
  }
  return { cache, sums };
}

Deno.test("listArtifacts() lists blobs with their sizes, sorted by hex", async () => {
  await withTempDir(async (dir) => {
    const cache = new ArtifactCache(`${dir}/state`);
    deepEqual(await cache.listArtifacts(), []);
    const { sums } = await fill(dir, [10, 2000, 0]);
    const listed = await cache.listArtifacts();
    const expected = sums.map((checksum, i) => ({
      hex: checksum.slice(7),
      checksum,
      path: `${cache.root}/sha256/${checksum.slice(7)}`,
      size: [10, 2000, 0][i]!,
    })).sort((a, b) => a.hex.localeCompare(b.hex));
    deepEqual(listed, expected);
  });
});

Deno.test("removeArtifact() removes a blob and its fingerprint once", async () => {
  await withTempDir(async (dir) => {
    const { cache, sums } = await fill(dir, [100]);
    equal(await cache.removeArtifact(sums[0]!), true);
    equal(await cache.removeArtifact(sums[0]!.slice(7)), false);
    deepEqual(await names(`${cache.root}/sha256`), []);
    await rejectsWith(cache.removeArtifact("nope"), "invalid_argument", "checksum");
  });
});

Deno.test("gc() keeps the listed blobs and removes the rest, orphan fingerprints and stale temp files", async () => {
  await withTempDir(async (dir) => {
    const { cache, sums } = await fill(dir, [100, 3000, 50_000]);
    const [a, b, c] = sums as [string, string, string];
    const orphan = `${cache.root}/sha256/${"e".repeat(64)}.fp`;
    await Deno.writeTextFile(orphan, "{}");
    const stale = `${cache.root}/tmp/${"1".repeat(64)}.x.part`;
    const fresh = `${cache.root}/tmp/${"2".repeat(64)}.y.part`;
    await Deno.writeFile(stale, new Uint8Array(10));
    await Deno.writeFile(fresh, new Uint8Array(10));
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await Deno.utime(stale, twoHoursAgo, twoHoursAgo);

    const result = await cache.gc(new Set([a, c.slice(7)]));
    deepEqual(result, { removed: [b.slice(7)], bytesFreed: 3000, tempRemoved: 1 });
    deepEqual(
      (await cache.listArtifacts()).map((x) => x.checksum).sort(),
      [a, c].sort(),
    );
    deepEqual(
      await names(`${cache.root}/sha256`),
      [a, c].flatMap((s) => [s.slice(7), `${s.slice(7)}.fp`]).sort(),
    );
    deepEqual(await names(`${cache.root}/tmp`), [fresh.slice(fresh.lastIndexOf("/") + 1)]);

    const all = await cache.gc(new Set(), { tempMaxAgeMs: 0, now: Date.now() + 1000 });
    equal(all.removed.length, 2);
    equal(all.bytesFreed, 50_100);
    equal(all.tempRemoved, 1);
    deepEqual(await names(`${cache.root}/sha256`), []);
  });
});

Deno.test("gc() on a cache that was never written does nothing", async () => {
  await withTempDir(async (dir) => {
    const cache = new ArtifactCache(`${dir}/state`);
    deepEqual(await cache.gc(new Set()), { removed: [], bytesFreed: 0, tempRemoved: 0 });
  });
});
