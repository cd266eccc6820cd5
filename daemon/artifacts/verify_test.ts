import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { ArtifactCache } from "./mod.ts";
import { checksumOf, patternBytes, rejectsWith, withTempDir } from "./_testing.ts";

const DATA = patternBytes(1024 * 1024 + 5, 11);
const SUM = checksumOf(DATA);

async function cached(dir: string): Promise<{ cache: ArtifactCache; path: string }> {
  await Deno.writeFile(`${dir}/src.img`, DATA);
  const cache = new ArtifactCache(`${dir}/state`);
  const { path } = await cache.fetchArtifact(`${dir}/src.img`, SUM);
  return { cache, path };
}

/** Flips one byte in place, as a user with a text editor or dd would. */
async function tamper(path: string, offset: number): Promise<Uint8Array> {
  await Deno.chmod(path, 0o644);
  using f = await Deno.open(path, { read: true, write: true });
  await f.seek(offset, Deno.SeekMode.Start);
  await f.write(new Uint8Array([DATA[offset]! ^ 0xff]));
  const bytes = DATA.slice();
  bytes[offset] = DATA[offset]! ^ 0xff;
  return bytes;
}

/** Waits until a fingerprint taken now is trusted: a full second past the blob's ctime. */
async function waitPastCtime(path: string): Promise<void> {
  const ctime = (await Deno.stat(path)).ctime!.getTime();
  const wait = Math.floor(ctime / 1000) * 1000 + 1200 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

Deno.test("verifyArtifact() detects a byte written into a blob right after the fetch", async () => {
  await withTempDir(async (dir) => {
    const { cache, path } = await cached(dir);
    const tampered = await tamper(path, 1000);
    const e = await rejectsWith(
      cache.verifyArtifact(SUM),
      "invalid_state",
      `Artifact ${SUM.slice(7)} was modified on disk`,
      `expected ${SUM}`,
      `got ${checksumOf(tampered)}`,
      "reinstall the plugin",
    );
    equal(e.details?.["path"], path);
  });
});

Deno.test("verifyArtifact() trusts an unchanged fingerprint and catches a same-size tamper with mtime restored", async () => {
  await withTempDir(async (dir) => {
    const { cache, path } = await cached(dir);
    await waitPastCtime(path);
    // The fingerprint taken at fetch time is in the blob's ctime second: re-hashed once.
    equal((await cache.verifyArtifact(SUM)).rehashed, true);
    const second = await cache.verifyArtifact(SUM);
    equal(second.rehashed, false);
    equal(second.size, DATA.length);

    const before = await Deno.stat(path);
    await waitPastCtime(path);
    const tampered = await tamper(path, DATA.length - 1);
    await Deno.chmod(path, 0o444);
    await Deno.utime(path, before.atime!, before.mtime!);
    const after = await Deno.stat(path);
    equal(after.size, before.size);
    equal(after.mtime!.getTime(), before.mtime!.getTime());
    equal(after.ino, before.ino);
    notEqual(after.ctime!.getTime(), before.ctime!.getTime());
    await rejectsWith(
      cache.verifyArtifact(SUM),
      "invalid_state",
      "was modified on disk",
      `got ${checksumOf(tampered)}`,
    );
  });
});

Deno.test("verifyArtifact() re-hashes after a harmless change and restores the read-only mode", async () => {
  await withTempDir(async (dir) => {
    const { cache, path } = await cached(dir);
    await waitPastCtime(path);
    equal((await cache.verifyArtifact(SUM)).rehashed, true);
    equal((await cache.verifyArtifact(SUM)).rehashed, false);
    await Deno.chmod(path, 0o666);
    const v = await cache.verifyArtifact(SUM);
    equal(v.rehashed, true);
    equal((await Deno.stat(path)).mode! & 0o777, 0o444);

    // A copy with the same bytes (new inode) is re-hashed and accepted.
    await Deno.remove(path);
    await Deno.writeFile(path, DATA, { mode: 0o444 });
    await waitPastCtime(path);
    equal((await cache.verifyArtifact(SUM)).rehashed, true);
    equal((await cache.verifyArtifact(SUM)).rehashed, false);
  });
});

Deno.test("verifyArtifact() re-hashes when the fingerprint is missing or corrupt", async () => {
  await withTempDir(async (dir) => {
    const { cache, path } = await cached(dir);
    await Deno.remove(`${path}.fp`);
    equal((await cache.verifyArtifact(SUM)).rehashed, true);
    const fp = JSON.parse(await Deno.readTextFile(`${path}.fp`));
    equal(fp.size, DATA.length);
    equal(fp.ino, (await Deno.stat(path)).ino);
    await Deno.writeTextFile(`${path}.fp`, "{not json");
    equal((await cache.verifyArtifact(SUM)).rehashed, true);
    ok(JSON.parse(await Deno.readTextFile(`${path}.fp`)).recorded_ms > 0);
  });
});

Deno.test("verifyArtifact() reports a blob that is not cached as not_found", async () => {
  await withTempDir(async (dir) => {
    const cache = new ArtifactCache(dir);
    await rejectsWith(cache.verifyArtifact(SUM), "not_found", SUM.slice(7), "not in the cache");
  });
});

Deno.test("fetchArtifact() downloads a tampered blob again", async () => {
  await withTempDir(async (dir) => {
    const { cache, path } = await cached(dir);
    await tamper(path, 7);
    const again = await cache.fetchArtifact(`${dir}/src.img`, SUM);
    equal(again.cached, false);
    equal(again.repaired, true);
    deepEqual(await Deno.readFile(path), DATA);
    equal((await Deno.stat(path)).mode! & 0o777, 0o444);
    equal((await cache.verifyArtifact(SUM)).size, DATA.length);
  });
});
