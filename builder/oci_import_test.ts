import assert from "node:assert/strict";
import { handImage, writeLayout } from "../images/testing_registry.ts";
import {
  buildBusyboxLayout,
  buildOci as build,
  BUSYBOX_TAG,
  OCI_HEAD as HEAD,
  readManifest,
  refused,
  run,
  sha256sum,
  snapshot,
  withTempDir,
} from "./testing.ts";

Deno.test("buildPlugin(oci_rootfs) imports an OCI layout and a docker archive without a registry", async (t) => {
  await withTempDir(async (dir) => {
    await buildBusyboxLayout(dir);
    const config = async (name: string, body: string) => {
      await Deno.writeTextFile(`${dir}/${name}`, HEAD + body);
      return `${dir}/${name}`;
    };
    const index = JSON.parse(await Deno.readTextFile(`${dir}/layout/index.json`));
    const digest: string = index.manifests[0].digest;
    let layoutSha = "";

    await t.step(
      "oci_layout, relative to the config, with the cache from VOLANT_IMAGE_CACHE",
      async () => {
        const path = await config(
          "layout.toml",
          `[source]\noci_layout = "./layout"\ntag = "${BUSYBOX_TAG}"\n[output]\ndir = "out"\n`,
        );
        const cache = `${dir}/env-cache`;
        const r = await build({
          config: path,
          env: (key) => (key === "VOLANT_IMAGE_CACHE" ? cache : undefined),
        });
        assert.equal(r.cache, cache);
        assert.ok((await Deno.stat(`${cache}/images.json`)).isFile, "the image went to the cache");
        assert.equal(r.name, "layout");
        assert.equal(r.image.digest, digest);
        assert.equal(r.image.ref, `localhost/layout:${BUSYBOX_TAG}`);
        assert.equal(r.sha256, await sha256sum(r.archive));
        const m = await readManifest(r.manifest);
        assert.deepEqual(m.rootfs, { url: r.archive, checksum: r.sha256, format: "raw" });
        assert.equal(m.workload.entrypoint[1], "httpd");
        assert.equal(m.labels["volant.image.digest"], digest);
        layoutSha = r.sha256;
        // Again through another cache: the same bytes.
        const again = await build({
          config: path,
          imageCache: `${dir}/cache-2`,
          outputDir: `${dir}/o2`,
        });
        assert.equal(again.sha256, layoutSha);
      },
    );

    await t.step("docker_archive (skopeo's docker-archive of the same image)", async () => {
      const copy = await run("skopeo", [
        "copy",
        "--quiet",
        `oci:${dir}/layout:${BUSYBOX_TAG}`,
        `docker-archive:${dir}/bb.tar:demo/bb:${BUSYBOX_TAG}`,
      ]);
      assert.equal(copy.code, 0, copy.stderr);
      const path = await config(
        "archive.toml",
        '[source]\ndocker_archive = "bb.tar"\n[output]\ndir = "archive-out"\n',
      );
      const r = await build({ config: path, imageCache: `${dir}/cache` });
      assert.equal(r.name, "bb");
      assert.equal(r.sha256, await sha256sum(r.archive));
      const m = await readManifest(r.manifest);
      assert.equal(m.workload.env.GREETING, "hi");
      assert.equal(m.health_check?.port, 8080);
    });

    await t.step(
      "a tag the layout lacks or a missing layout fails naming source.oci_layout",
      async () => {
        const before = await snapshot(dir);
        const tag = await config("tag.toml", '[source]\noci_layout = "layout"\ntag = "9.9"\n');
        await refused(
          () => build({ config: tag, imageCache: `${dir}/cache` }),
          "not_found",
          tag,
          "source.oci_layout",
          /9\.9/,
        );
        const gone = await config("gone.toml", '[source]\noci_layout = "no-such-layout"\n');
        await refused(
          () => build({ config: gone, imageCache: `${dir}/cache` }),
          "invalid_argument",
          gone,
          "source.oci_layout",
          /no-such-layout is not an OCI image layout/,
        );
        const after = (await snapshot(dir)).filter((p) => !p.startsWith("cache"));
        assert.deepEqual(
          after,
          [...before.filter((p) => !p.startsWith("cache")), "gone.toml", "tag.toml"].sort(),
        );
      },
    );

    await t.step(
      "an image with no Entrypoint and no Cmd needs workload.entrypoint or cmd",
      async () => {
        const image = await handImage([[
          { name: "bin/", type: "directory" },
          { name: "bin/true", data: "#!/bin/sh\n", mode: 0o755 },
        ]]);
        await writeLayout(`${dir}/bare`, [{ tag: "1", image }]);
        const bare = await config(
          "bare.toml",
          '[source]\noci_layout = "bare"\n[output]\ndir = "bare-out"\n',
        );
        await refused(
          () => build({ config: bare, imageCache: `${dir}/cache` }),
          "invalid_argument",
          bare,
          "workload.entrypoint",
          /image localhost\/bare:1 has no Entrypoint and no Cmd: set workload\.entrypoint/,
        );
        assert.equal((await snapshot(dir)).includes("bare-out"), false);
        const fixed = await config(
          "fixed.toml",
          '[source]\noci_layout = "bare"\n[output]\ndir = "bare-out"\n[workload]\ncmd = ["/bin/true"]\n',
        );
        const r = await build({ config: fixed, imageCache: `${dir}/cache` });
        const m = await readManifest(r.manifest);
        assert.deepEqual(m.workload.entrypoint, ["/bin/true"]);
        assert.equal(m.health_check, undefined, "no exposed port, no health check");
        assert.equal(m.workload.base_url, "http://127.0.0.1:80");
      },
    );

    await t.step(
      "config errors (no source, two sources) fail before anything is fetched",
      async () => {
        const before = await snapshot(dir);
        const none = await config("none.toml", "");
        await refused(
          () => build({ config: none, imageCache: `${dir}/c3` }),
          "invalid_argument",
          none,
          "source",
          /is required/,
        );
        const two = await config(
          "two.toml",
          '[source]\noci_layout = "layout"\ndocker_archive = "bb.tar"\n',
        );
        await refused(
          () => build({ config: two, imageCache: `${dir}/c3` }),
          "invalid_argument",
          two,
          "source",
          /sets oci_layout and docker_archive: give only one/,
        );
        assert.deepEqual(await snapshot(dir), [...before, "none.toml", "two.toml"].sort());
      },
    );
  });
});
