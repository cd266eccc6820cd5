import { deepEqual, equal, ok } from "node:assert/strict";
import { type BlobProgress, BlobStore, isTempBlob } from "./blob_store.ts";
import { digestOf, rejectsWith, withTempDir } from "./_testing.ts";

function pattern(size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let x = 7;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const DATA = pattern(3 * 1024 * 1024 + 77);
const SUM = digestOf(DATA);

function source(bytes: Uint8Array, chunk = 64 * 1024, size: number | null = bytes.length) {
  let opened = 0;
  const open = () => {
    opened++;
    let at = 0;
    return Promise.resolve({
      size,
      body: new ReadableStream<Uint8Array>({
        pull(c) {
          if (at >= bytes.length) return c.close();
          c.enqueue(bytes.slice(at, at + chunk));
          at += chunk;
        },
      }),
    });
  };
  return {
    open,
    get opened() {
      return opened;
    },
  };
}

async function dirNames(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("BlobStore.ensure() streams, verifies and stores a read-only blob with progress", async () => {
  await withTempDir(async (root) => {
    const store = new BlobStore(root);
    const src = source(DATA);
    const events: BlobProgress[] = [];
    const b = await store.ensure(SUM, src.open, {
      size: DATA.length,
      onProgress: (e) => events.push(e),
    });
    deepEqual(b, {
      digest: SUM,
      path: `${root}/blobs/sha256/${SUM.slice(7)}`,
      size: DATA.length,
      cached: false,
    });
    deepEqual(await Deno.readFile(b.path), DATA);
    equal((await Deno.stat(b.path)).mode! & 0o777, 0o444);
    deepEqual(events[0], { digest: SUM, done: 0, total: DATA.length });
    deepEqual(events.at(-1), { digest: SUM, done: DATA.length, total: DATA.length });
    ok(events.length >= 4, `${events.length} events`);
    deepEqual(await dirNames(store.dir), [SUM.slice(7)]);
    deepEqual(await store.list(), [SUM]);
  });
});

Deno.test("BlobStore.ensure() reuses a stored blob of the right size without opening the source", async () => {
  await withTempDir(async (root) => {
    const store = new BlobStore(root);
    await store.ensure(SUM, source(DATA).open, { size: DATA.length });
    const again = source(DATA);
    const events: BlobProgress[] = [];
    const b = await store.ensure(SUM, again.open, {
      size: DATA.length,
      onProgress: (e) => events.push(e),
    });
    equal(b.cached, true);
    equal(again.opened, 0);
    deepEqual(events, [{ digest: SUM, done: DATA.length, total: DATA.length, cached: true }]);
  });
});

Deno.test("BlobStore.ensure() fetches again when a stored blob has the wrong size", async () => {
  await withTempDir(async (root) => {
    const store = new BlobStore(root);
    await Deno.mkdir(store.dir, { recursive: true });
    await Deno.writeFile(store.path(SUM), DATA.slice(0, 1000));
    const src = source(DATA);
    const b = await store.ensure(SUM, src.open, { size: DATA.length });
    equal(b.cached, false);
    equal(src.opened, 1);
    deepEqual(await Deno.readFile(b.path), DATA);
  });
});

Deno.test("BlobStore.ensure() rejects a digest mismatch and leaves no file", async () => {
  await withTempDir(async (root) => {
    const store = new BlobStore(root);
    const bad = DATA.slice();
    bad[12345] = DATA[12345]! ^ 1;
    await rejectsWith(
      store.ensure(SUM, source(bad).open, { size: DATA.length, what: "layer 1 of demo" }),
      "checksum_mismatch",
      "layer 1 of demo",
      digestOf(bad),
      SUM,
    );
    deepEqual(await dirNames(store.dir), []);
  });
});

Deno.test("BlobStore.ensure() rejects truncated and oversized bodies and leaves no file", async () => {
  await withTempDir(async (root) => {
    const store = new BlobStore(root);
    await rejectsWith(
      store.ensure(SUM, source(DATA.slice(0, 5000), 1024, null).open, { size: DATA.length }),
      "artifact_unavailable",
      `ended after 5000 of ${DATA.length} bytes`,
    );
    await rejectsWith(
      store.ensure(SUM, source(DATA).open, { size: 100 }),
      "artifact_unavailable",
      "more than the expected 100 bytes",
    );
    deepEqual(await dirNames(store.dir), []);
  });
});

Deno.test("BlobStore.ensure() turns a broken stream into artifact_unavailable and cleans up", async () => {
  await withTempDir(async (root) => {
    const store = new BlobStore(root);
    let sent = false;
    const open = () =>
      Promise.resolve({
        size: DATA.length,
        body: new ReadableStream<Uint8Array>({
          pull(c) {
            if (!sent) {
              sent = true;
              c.enqueue(DATA.slice(0, 4096));
            } else c.error(new Error("connection reset"));
          },
        }),
      });
    await rejectsWith(
      store.ensure(SUM, open),
      "artifact_unavailable",
      "after 4096 bytes",
      "connection reset",
    );
    deepEqual(await dirNames(store.dir), []);
  });
});

Deno.test("BlobStore.ensure() shares one download between concurrent callers", async () => {
  await withTempDir(async (root) => {
    const store = new BlobStore(root);
    const src = source(DATA, 4096);
    const [a, b] = await Promise.all([store.ensure(SUM, src.open), store.ensure(SUM, src.open)]);
    equal(src.opened, 1);
    equal(a, b);
  });
});

Deno.test("BlobStore.putBytes() and putFile() store content under its digest", async () => {
  await withTempDir(async (root) => {
    const store = new BlobStore(root);
    const bytes = new TextEncoder().encode('{"a":1}');
    const b = await store.putBytes(bytes, digestOf(bytes));
    deepEqual(await Deno.readFile(b.path), bytes);
    await rejectsWith(
      store.putBytes(bytes, digestOf("x"), "manifest"),
      "checksum_mismatch",
      "manifest",
    );
    await Deno.writeFile(`${root}/copy-me`, DATA);
    const copied = await store.putFile(`${root}/copy-me`, { digest: SUM });
    equal(copied.digest, SUM);
    ok(await Deno.stat(`${root}/copy-me`));
    await store.remove(SUM);
    await Deno.writeFile(`${root}/move-me`, DATA);
    const moved = await store.putFile(`${root}/move-me`, { move: true });
    deepEqual([moved.digest, moved.cached], [SUM, false]);
    equal(await Deno.stat(`${root}/move-me`).then(() => true, () => false), false);
    await Deno.writeFile(`${root}/wrong`, DATA.slice(1));
    await rejectsWith(
      store.putFile(`${root}/wrong`, { move: true, digest: SUM }),
      "checksum_mismatch",
    );
    equal(await store.remove(SUM), true);
    equal(await store.remove(SUM), false);
  });
});

Deno.test("BlobStore.ensure() deletes the temp file when aborted", async () => {
  await withTempDir(async (root) => {
    const store = new BlobStore(root);
    const ctl = new AbortController();
    const open = () =>
      Promise.resolve({
        size: null,
        body: new ReadableStream<Uint8Array>({
          pull(c) {
            c.enqueue(DATA.slice(0, 1024));
            ctl.abort(new Error("cancelled by test"));
          },
        }),
      });
    let caught: unknown;
    await store.ensure(SUM, open, { signal: ctl.signal }).catch((e) => caught = e);
    equal((caught as Error).message, "cancelled by test");
    deepEqual((await dirNames(store.dir)).filter(isTempBlob), []);
    deepEqual(await dirNames(store.dir), []);
  });
});
