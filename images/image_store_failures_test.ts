import { deepEqual, equal, ok } from "node:assert/strict";
import { ImageStore } from "./mod.ts";
import { hasSetfattr } from "./_metadata.ts";
import { digestOf, rejectsWith, tree, withTempDir } from "./_testing.ts";
import {
  assertEmptyStore,
  fakeRegistry,
  freePort,
  handImage,
  serveFake,
  writeLayout,
} from "./testing_registry.ts";

Deno.test("ImageStore.pull() reports a registry that is down and stores nothing", async () => {
  await withTempDir(async (dir) => {
    const host = `127.0.0.1:${freePort()}`;
    const store = new ImageStore(dir);
    await rejectsWith(
      store.pull(`${host}/demo/x:1`, { insecure: true }),
      "artifact_unavailable",
      `Registry ${host} is not reachable`,
    );
    await assertEmptyStore(store);
  });
});

Deno.test("ImageStore.pull() refuses a corrupted blob and leaves no partial file", async () => {
  const image = await handImage([[{ name: "a", data: "a".repeat(10_000) }], [{
    name: "b",
    data: "b",
  }]]);
  const bad = image.blobs.get(image.layers[1]!)!.slice();
  bad[bad.length - 5] = bad[bad.length - 5]! ^ 0xff;
  const fake = fakeRegistry({ "demo/x:1": image }, { replace: new Map([[image.layers[1]!, bad]]) });
  try {
    await withTempDir(async (dir) => {
      const store = new ImageStore(dir, { layerConcurrency: 1 });
      await rejectsWith(
        store.pull(`${fake.host}/demo/x:1`, { insecure: true }),
        "checksum_mismatch",
        `layer 2 of 2 (${image.layers[1]})`,
        digestOf(bad),
      );
      await assertEmptyStore(store);
    });
  } finally {
    await fake.close();
  }
});

Deno.test("ImageStore.pull() authenticates with a bearer token from config.json credentials", async () => {
  const image = await handImage([[{ name: "hello", data: "hi" }]], { Cmd: ["/hello"] });
  const seen: (string | null)[] = [];
  const tokens = serveFake((req) => {
    seen.push(req.headers.get("authorization"));
    return req.headers.get("authorization") === `Basic ${btoa("ci:secret")}`
      ? Response.json({ token: "granted" })
      : new Response("denied", { status: 401 });
  });
  const fake = fakeRegistry({ "private/app:1": image }, {
    bearer: { realm: `http://${tokens.host}/token`, token: "granted" },
  });
  try {
    await withTempDir(async (dir) => {
      await Deno.mkdir(`${dir}/docker`);
      await Deno.writeTextFile(
        `${dir}/docker/config.json`,
        JSON.stringify({ auths: { [fake.host]: { auth: btoa("ci:secret") } } }),
      );
      const store = new ImageStore(`${dir}/store`, { dockerConfigDir: `${dir}/docker` });
      const pulled = await store.pull(`${fake.host}/private/app:1`, { insecure: true });
      equal(pulled.digest, image.digest);
      deepEqual(pulled.config.cmd, ["/hello"]);
      deepEqual(seen, [`Basic ${btoa("ci:secret")}`], "one token for the whole pull");
      ok(fake.log.length >= 4);
      const anonymous = new ImageStore(`${dir}/store2`, { dockerConfigDir: `${dir}/none` });
      await rejectsWith(
        anonymous.pull(`${fake.host}/private/app:1`, { insecure: true }),
        "artifact_unavailable",
        "refused anonymous access",
      );
      await assertEmptyStore(anonymous);
    });
  } finally {
    await fake.close();
    await tokens.close();
  }
});

Deno.test("ImageStore.pull() can be aborted mid-download and leaves nothing", async () => {
  const image = await handImage([[{ name: "big", data: "z".repeat(2_000_000) }]]);
  const layer = image.blobs.get(image.layers[0]!)!;
  const fake = serveFake((req) => {
    const path = new URL(req.url).pathname;
    if (path.endsWith(`/manifests/1`)) {
      return new Response(image.manifest, {
        headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      });
    }
    const digest = path.split("/").pop()!;
    if (digest === image.configDigest) return new Response(image.blobs.get(digest)!);
    let sent = 0;
    return new Response(
      new ReadableStream({
        async pull(c) {
          if (sent >= layer.length) return c.close();
          await new Promise((r) => setTimeout(r, 20));
          c.enqueue(layer.slice(sent, sent + 256));
          sent += 256;
        },
      }),
    );
  });
  try {
    await withTempDir(async (dir) => {
      const store = new ImageStore(dir);
      const ctl = new AbortController();
      let caught: unknown;
      await store.pull(`${fake.host}/demo/slow:1`, {
        insecure: true,
        signal: ctl.signal,
        onProgress: (e) => e.done > 0 && ctl.abort(new Error("user cancelled")),
      }).catch((e) => caught = e);
      equal((caught as Error).message, "user cancelled");
      await assertEmptyStore(store);
    });
  } finally {
    await fake.close();
  }
});

Deno.test("ImageStore.gc() removes leftovers of interrupted operations and unused files", async () => {
  await withTempDir(async (dir) => {
    const store = new ImageStore(dir);
    const image = await handImage([[{ name: "a", data: "a" }]]);
    await writeLayout(`${dir}/layout`, [{ tag: "1", image }]);
    const kept = await store.importLayout(`${dir}/layout`, { ref: "localhost/kept:1" });
    await Deno.mkdir(`${dir}/tmp/unpack-leftover`, { recursive: true });
    await Deno.writeTextFile(`${store.blobs.dir}/.tmp-abc-123`, "partial");
    await store.blobs.putBytes(new TextEncoder().encode("orphan"));
    await Deno.writeTextFile(`${dir}/rootfs/${"f".repeat(64)}.erofs`, "orphan");
    deepEqual(await store.gc(), { blobs: 1, rootfs: 1, temp: 2 });
    deepEqual(
      (await store.blobs.list()).sort(),
      [kept.digest, kept.config_digest, ...kept.layers.map((l) => l.digest)].sort(),
    );
    ok(await Deno.stat(kept.rootfs.path));
    deepEqual(await tree(`${dir}/tmp`), []);
  });
});

Deno.test("ImageStore.pull() keeps an image whose tag moved reachable by its digest", async () => {
  const first = await handImage([[{ name: "v", data: "1" }]], { Env: ["V=1"] });
  const second = await handImage([[{ name: "v", data: "2" }]], { Env: ["V=2"] });
  const images: Record<string, typeof first> = { "demo/x:1": first };
  const fake = fakeRegistry(images);
  try {
    await withTempDir(async (dir) => {
      const store = new ImageStore(dir);
      const ref = `${fake.host}/demo/x:1`;
      const a = await store.pull(ref, { insecure: true });
      images["demo/x:1"] = second;
      const b = await store.pull(ref, { insecure: true });
      deepEqual([a.digest, b.digest], [first.digest, second.digest]);
      const old = await store.get(first.digest);
      equal(old.ref, `${fake.host}/demo/x@${first.digest}`);
      equal(old.rootfs.path, a.rootfs.path);
      ok(await Deno.stat(a.rootfs.path));
      deepEqual((await store.list()).map((r) => r.config.env[0]).sort(), ["V=1", "V=2"]);
      equal((await store.get(ref)).digest, second.digest);
      await store.remove(`${fake.host}/demo/x@${first.digest}`);
      equal(await Deno.stat(a.rootfs.path).then(() => true, () => false), false);
      await store.remove(ref);
      await assertEmptyStore(store);
    });
  } finally {
    await fake.close();
  }
});

Deno.test("ImageStore records what the unpack could not apply", async () => {
  await withTempDir(async (dir) => {
    const image = await handImage([[{
      name: "bin/ping",
      data: "p",
      pax: { "SCHILY.xattr.user.cap": "x" },
    }]]);
    await writeLayout(`${dir}/layout`, [{ tag: "1", image }]);
    const store = new ImageStore(`${dir}/store`);
    const r = await store.importLayout(`${dir}/layout`);
    equal(r.ref, "localhost/layout:1");
    const other = await store.importLayout(`${dir}/layout`, { ref: "localhost/again:1" });
    deepEqual(other.warnings, r.warnings, "a rootfs built earlier keeps its warnings");
    if (await hasSetfattr()) deepEqual(r.warnings, []);
    else {
      equal(r.warnings.length, 1);
      ok(r.warnings[0]!.includes("xattr user.cap skipped"), r.warnings[0]);
    }
  });
});
