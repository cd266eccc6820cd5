import { deepEqual, equal, ok } from "node:assert/strict";
import { ArtifactCache, type ArtifactProgress } from "./mod.ts";
import {
  checksumOf,
  names,
  openPaths,
  patternBytes,
  rejectsWith,
  withTempDir,
} from "./_testing.ts";

const DATA = patternBytes(2 * 1024 * 1024 + 17, 3);
const SUM = checksumOf(DATA);

Deno.test("fetchArtifact() copies a file:/// source with progress events", async () => {
  await withTempDir(async (dir) => {
    const source = `${dir}/my image.img`;
    await Deno.writeFile(source, DATA);
    const cache = new ArtifactCache(`${dir}/state`);
    const events: ArtifactProgress[] = [];
    const url = `file://${encodeURI(source)}`;
    ok(url.includes("%20"));
    const a = await cache.fetchArtifact(url, SUM, { onProgress: (p) => events.push(p) });
    equal(a.cached, false);
    deepEqual(await Deno.readFile(a.path), DATA);
    equal((await Deno.stat(a.path)).mode! & 0o777, 0o444);
    deepEqual(events[0], { received: 0, total: DATA.length });
    deepEqual(events.at(-1), { received: DATA.length, total: DATA.length });
    ok(events.length >= 3, `${events.length} events for a 2 MiB file read in 1 MiB chunks`);
    deepEqual(await Deno.readFile(source), DATA, "the source is left untouched");
  });
});

Deno.test("fetchArtifact() copies an absolute-path source; a second fetch never opens it", async () => {
  await withTempDir(async (dir) => {
    const source = `${dir}/rootfs.img`;
    await Deno.writeFile(source, DATA);
    const cache = new ArtifactCache(`${dir}/state`);
    const a = await cache.fetchArtifact(source, SUM);
    deepEqual(await Deno.readFile(a.path), DATA);
    await Deno.remove(source);
    const again = await cache.fetchArtifact(source, SUM);
    equal(again.cached, true);
    equal(again.path, a.path);
    equal(again.size, DATA.length);
  });
});

Deno.test("fetchArtifact() reports a missing local file as not_found and leaves nothing", async () => {
  await withTempDir(async (dir) => {
    const cache = new ArtifactCache(`${dir}/state`);
    await rejectsWith(
      cache.fetchArtifact(`${dir}/nope.img`, SUM),
      "artifact_unavailable",
      `${dir}/nope.img`,
      "does not exist",
    );
    await rejectsWith(cache.fetchArtifact(`file://${dir}/nope.img`, SUM), "artifact_unavailable");
    await rejectsWith(cache.fetchArtifact(dir, SUM), "invalid_argument", "not a regular file");
    deepEqual(await names(`${cache.root}/tmp`), []);
    deepEqual(await names(`${cache.root}/sha256`), []);
  });
});

Deno.test("fetchArtifact() removes the temp file of a local copy with the wrong checksum", async () => {
  await withTempDir(async (dir) => {
    const source = `${dir}/a.img`;
    await Deno.writeFile(source, DATA);
    const cache = new ArtifactCache(`${dir}/state`);
    const wrong = `sha256:${"0".repeat(64)}`;
    await rejectsWith(cache.fetchArtifact(source, wrong), "checksum_mismatch", source, SUM);
    deepEqual(await names(`${cache.root}/tmp`), []);
    deepEqual(await names(`${cache.root}/sha256`), []);
  });
});

for (const failAt of [1, 2]) {
  Deno.test(`fetchArtifact() closes the source and removes the temp file when progress event ${failAt} throws`, async () => {
    await withTempDir(async (dir) => {
      const source = `${dir}/a.img`;
      await Deno.writeFile(source, DATA);
      const cache = new ArtifactCache(`${dir}/state`);
      let calls = 0;
      const onProgress = () => {
        if (++calls === failAt) throw new Error("listener broke");
      };
      let message = "";
      await cache.fetchArtifact(source, SUM, { onProgress }).catch((e) => message = e.message);
      equal(message, "listener broke");
      deepEqual((await openPaths()).filter((p) => p.startsWith(source)), []);
      deepEqual(await names(`${cache.root}/tmp`), []);
      deepEqual(await names(`${cache.root}/sha256`), []);
    });
  });
}

Deno.test("fetchArtifact() stops and cleans up when its signal aborts", async () => {
  await withTempDir(async (dir) => {
    const source = `${dir}/a.img`;
    await Deno.writeFile(source, DATA);
    const cache = new ArtifactCache(`${dir}/state`);
    const controller = new AbortController();
    const reason = new Error("daemon shutting down");
    let message = "";
    await cache.fetchArtifact(`${dir}/a.img`, SUM, {
      signal: controller.signal,
      onProgress: ({ received }) => received > 0 && controller.abort(reason),
    }).catch((e) => message = e.message);
    equal(message, "daemon shutting down");
    deepEqual(await names(`${cache.root}/tmp`), []);
  });
});

Deno.test("fetchArtifact() refuses an artifact past limits.max_artifact_bytes as it arrives, keeping nothing", async () => {
  await withTempDir(async (dir) => {
    const source = `${dir}/big.img`;
    await Deno.writeFile(source, DATA);
    const cache = new ArtifactCache(`${dir}/state`, { maxBytes: 1024 * 1024 });
    let seen = 0;
    const err = await rejectsWith(
      cache.fetchArtifact(source, SUM, { onProgress: (p) => seen = p.received }),
      "artifact_unavailable",
    );
    ok(/larger than 1048576 bytes/.test(err.message), err.message);
    ok(seen <= 1024 * 1024, `stopped at ${seen} bytes`);
    deepEqual(await names(`${dir}/state/artifacts/tmp`), [], "no partial file");
    deepEqual(await names(`${dir}/state/artifacts/sha256`), []);
    // Within the limit it is fetched.
    const fits = new ArtifactCache(`${dir}/state`, { maxBytes: DATA.length });
    equal((await fits.fetchArtifact(source, SUM)).size, DATA.length);
  });
});
