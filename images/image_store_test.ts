import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { type BlobProgress, ImageStore } from "./mod.ts";
import { rejectsWith, run, tree, withTempDir } from "./_testing.ts";
import {
  assertEmptyStore,
  handImage,
  push,
  startRegistry,
  umoci,
  writeLayout,
} from "./testing_registry.ts";

/** `dump.erofs --path` of one path: NID, links, uid. */
async function inode(
  image: string,
  path: string,
): Promise<{ nid: string; links: string; uid: string }> {
  const out = await run("dump.erofs", [`--path=${path}`, image]);
  return {
    nid: /NID: (\d+)/.exec(out)?.[1] ?? "",
    links: /Links: (\d+)/.exec(out)?.[1] ?? "",
    uid: /Uid: (\d+)/.exec(out)?.[1] ?? "",
  };
}

/** Builds the multi-layer busybox test image `L:1` with umoci. */
async function buildBusyboxImage(dir: string, layout: string): Promise<void> {
  const base = `${dir}/base`;
  for (const d of ["bin", "etc", "var/data", "opt/app", "home/user"]) {
    await Deno.mkdir(`${base}/${d}`, { recursive: true });
  }
  await Deno.copyFile("/bin/busybox", `${base}/bin/busybox`);
  await Deno.link(`${base}/bin/busybox`, `${base}/bin/ls`);
  await Deno.symlink("busybox", `${base}/bin/sh`);
  await Deno.writeTextFile(`${base}/bin/suid-tool`, "#!/bin/sh\n");
  await Deno.chmod(`${base}/bin/suid-tool`, 0o4755);
  await Deno.writeTextFile(`${base}/etc/motd`, "v1\n");
  await Deno.writeTextFile(`${base}/etc/old`, "remove me\n");
  await Deno.writeTextFile(`${base}/var/data/x`, "in a dir\n");
  await Deno.writeTextFile(`${base}/opt/app/a`, "a\n");
  await Deno.writeTextFile(`${base}/opt/app/b`, "b\n");
  await Deno.writeTextFile(`${base}/home/user/.profile`, "export PS1=$\n");
  await Deno.chmod(`${base}/home/user/.profile`, 0o600);
  await Deno.chown(`${base}/home/user/.profile`, 1000, 1000);
  await Deno.chown(`${base}/home/user`, 1000, 1000);
  await Deno.chmod(`${base}/home/user`, 0o700);
  await Deno.writeTextFile(`${dir}/data-file`, "now a file\n");
  await Deno.mkdir(`${dir}/newapp`);
  await Deno.writeTextFile(`${dir}/newapp/only`, "only me\n");
  await Deno.writeTextFile(`${dir}/motd2`, "v2\n");
  const img = `${layout}:1`;
  await umoci("init", "--layout", layout);
  await umoci("new", "--image", img);
  await umoci("insert", "--image", img, base, "/");
  await umoci("insert", "--image", img, "--whiteout", "/etc/old");
  await umoci("insert", "--image", img, `${dir}/data-file`, "/var/data");
  await umoci("insert", "--image", img, "--opaque", `${dir}/newapp`, "/opt/app");
  await umoci("insert", "--image", img, `${dir}/motd2`, "/etc/motd");
  await umoci(
    "config",
    "--image",
    img,
    "--config.entrypoint",
    "/bin/sh",
    "--config.cmd",
    "-c",
    "--config.cmd",
    "echo hi",
    "--config.env",
    "A=1",
    "--config.workingdir",
    "/srv",
    "--config.user",
    "1000:1000",
    "--config.exposedports",
    "80/tcp",
  );
}

/** PUTs an OCI index holding `entries` as `repo:tag` (the registry checks that they exist). */
async function putIndex(
  host: string,
  repo: string,
  tag: string,
  entries: { digest: string; size: number; architecture: string }[],
): Promise<void> {
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: entries.map((e) => ({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: e.digest,
      size: e.size,
      platform: { os: "linux", architecture: e.architecture },
    })),
  });
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": "application/vnd.oci.image.index.v1+json" },
    body,
  });
  const text = await res.text();
  ok(res.status === 201, `PUT index: ${res.status} ${text}`);
}

async function manifestOf(layout: string, tag: string): Promise<{ digest: string; size: number }> {
  const index = JSON.parse(await Deno.readTextFile(`${layout}/index.json`));
  const m = index.manifests.find((e: { annotations?: Record<string, string> }) =>
    e.annotations?.["org.opencontainers.image.ref.name"] === tag
  );
  return { digest: m.digest, size: m.size };
}

Deno.test("ImageStore with a real docker-registry and umoci-built busybox images", async (t) => {
  await withTempDir(async (dir) => {
    const registry = await startRegistry(`${dir}/registry`);
    try {
      const layout = `${dir}/layout`;
      await buildBusyboxImage(dir, layout);
      const host = registry.host;
      const ref = `${host}/demo/bb:1`;
      await push(layout, "1", ref);
      const pushed = await manifestOf(layout, "1");
      const store = new ImageStore(`${dir}/store`, { dockerConfigDir: `${dir}/no-docker-config` });
      let rootfsPath = "";

      await t.step("pull() stores blobs, builds the rootfs and records the config", async () => {
        const events: BlobProgress[] = [];
        const started = performance.now();
        const image = await store.pull(ref, { insecure: true, onProgress: (e) => events.push(e) });
        const ms = performance.now() - started;
        equal(image.ref, ref);
        equal(image.digest, pushed.digest);
        equal(image.platform, "linux/amd64");
        equal(image.source, "registry");
        deepEqual(image.config, {
          entrypoint: ["/bin/sh"],
          cmd: ["-c", "echo hi"],
          env: ["A=1"],
          workdir: "/srv",
          user: "1000:1000",
          exposed_ports: ["80/tcp"],
        });
        equal(image.layers.length, 5);
        deepEqual(
          new Set(events.filter((e) => e.done === e.total).map((e) => e.digest)),
          new Set(image.layers.map((l) => l.digest)),
          "every layer reported completion",
        );
        ok(events.every((e) => e.cached !== true), "nothing was cached on a cold pull");
        equal(image.rootfs.path, `${store.root}/rootfs/${image.digest.slice(7)}.erofs`);
        equal(image.rootfs.size_bytes, (await Deno.stat(image.rootfs.path)).size);
        deepEqual(await tree(`${store.root}/tmp`), []);
        deepEqual(
          (await store.blobs.list()).sort(),
          [image.digest, image.config_digest, ...image.layers.map((l) => l.digest)].sort(),
        );
        rootfsPath = image.rootfs.path;
        console.log(
          `cold pull + convert of a ${image.layers.length}-layer busybox image: ${
            ms.toFixed(0)
          } ms, ` +
            `rootfs ${image.rootfs.size_bytes} bytes`,
        );
      });

      await t.step(
        "the rootfs holds the layers' merged tree with links, owners and mount points",
        async () => {
          const out = `${dir}/extracted`;
          await run("fsck.erofs", [`--extract=${out}`, rootfsPath]);
          deepEqual(await tree(out), [
            "bin/",
            "bin/busybox",
            "bin/ls",
            "bin/sh",
            "bin/suid-tool",
            "dev/",
            "etc/",
            "etc/motd",
            "home/",
            "home/user/",
            "home/user/.profile",
            "opt/",
            "opt/app/",
            "opt/app/only",
            "proc/",
            "run/",
            "sys/",
            "tmp/",
            "var/",
            "var/data",
          ]);
          equal(await Deno.readTextFile(`${out}/etc/motd`), "v2\n");
          equal(await Deno.readTextFile(`${out}/var/data`), "now a file\n");
          equal(await Deno.readLink(`${out}/bin/sh`), "busybox");
          deepEqual(await Deno.readFile(`${out}/bin/busybox`), await Deno.readFile("/bin/busybox"));
          const bb = await inode(rootfsPath, "/bin/busybox");
          equal((await inode(rootfsPath, "/bin/ls")).nid, bb.nid);
          equal(bb.links, "2");
          equal((await inode(rootfsPath, "/home/user/.profile")).uid, "1000");
          equal((await Deno.lstat(`${out}/home/user/.profile`)).uid, 1000);
          equal((await Deno.lstat(`${out}/home/user`)).mode! & 0o777, 0o700);
        },
      );

      await t.step("a second pull downloads no blob", async () => {
        const events: BlobProgress[] = [];
        const before = await store.get(ref);
        const started = performance.now();
        const again = await store.pull(ref, { insecure: true, onProgress: (e) => events.push(e) });
        console.log(
          `warm pull (manifest check only): ${(performance.now() - started).toFixed(0)} ms`,
        );
        deepEqual(again, before);
        deepEqual(events, []);
      });

      await t.step("a pull after the rootfs was lost rebuilds it from cached layers", async () => {
        await Deno.remove(rootfsPath);
        const events: BlobProgress[] = [];
        const image = await store.pull(ref, { insecure: true, onProgress: (e) => events.push(e) });
        equal(image.rootfs.path, rootfsPath);
        ok(await Deno.stat(rootfsPath));
        equal(events.length, 5);
        ok(events.every((e) => e.cached === true));
      });

      await t.step("get(), find() and list() by reference, digest and prefix", async () => {
        const image = await store.get(ref);
        equal((await store.get(image.digest)).ref, ref);
        equal((await store.get(image.digest.slice(7, 19))).ref, ref);
        equal((await store.get(`${host}/demo/bb@${image.digest}`)).ref, ref);
        deepEqual((await store.list()).map((r) => r.ref), [ref]);
        equal(await store.find(`${host}/demo/bb:2`), undefined);
        await rejectsWith(store.get("nginx"), "not_found", "Image nginx is not in the image store");
      });

      await t.step("a second tag of the same image shares its rootfs and blobs", async () => {
        await push(layout, "1", `${host}/demo/bb:alias`);
        const alias = await store.pull(`${host}/demo/bb:alias`, { insecure: true });
        const first = await store.get(ref);
        equal(alias.digest, first.digest);
        equal(alias.rootfs.path, first.rootfs.path);
        equal((await store.list()).length, 2);
      });

      await t.step("concurrent pulls of one image share one promise", async () => {
        const fresh = new ImageStore(`${dir}/store2`);
        const a = fresh.pull(ref, { insecure: true });
        const b = fresh.pull(`${host}/demo/bb:1`, { insecure: true });
        equal(a, b);
        equal((await a).digest, pushed.digest);
        await fresh.remove(ref);
        await assertEmptyStore(fresh);
      });

      await t.step("an index with only arm64 is refused, naming its platforms", async () => {
        await umoci("new", "--image", `${layout}:arm`);
        await umoci(
          "config",
          "--image",
          `${layout}:arm`,
          "--architecture",
          "arm64",
          "--config.cmd",
          "x",
        );
        const arm = await manifestOf(layout, "arm");
        await push(layout, "arm", `${host}/demo/multi:arm-only`);
        await putIndex(host, "demo/multi", "armonly", [{ ...arm, architecture: "arm64" }]);
        const before = await store.blobs.list();
        await rejectsWith(
          store.pull(`${host}/demo/multi:armonly`, { insecure: true }),
          "invalid_argument",
          `${host}/demo/multi:armonly has no linux/amd64 image; it has linux/arm64`,
        );
        deepEqual(await store.blobs.list(), before);
        await push(layout, "1", `${host}/demo/multi:amd`);
        await putIndex(host, "demo/multi", "both", [
          { ...arm, architecture: "arm64" },
          { ...pushed, architecture: "amd64" },
        ]);
        const both = await store.pull(`${host}/demo/multi:both`, { insecure: true });
        equal(both.digest, pushed.digest);
        await store.remove(`${host}/demo/multi:both`);
      });

      await t.step("a single-platform arm64 image is refused", async () => {
        await rejectsWith(
          store.pull(`${host}/demo/multi:arm-only`, { insecure: true }),
          "invalid_argument",
          "is for linux/arm64",
        );
      });

      await t.step("unknown tags and repositories are not_found and store nothing", async () => {
        const before = await store.blobs.list();
        await rejectsWith(
          store.pull(`${host}/demo/bb:nope`, { insecure: true }),
          "not_found",
          "Tag nope",
          "its tags:",
        );
        await rejectsWith(
          store.pull(`${host}/demo/absent:1`, { insecure: true }),
          "not_found",
          `Repository ${host}/demo/absent does not exist`,
        );
        deepEqual(await store.blobs.list(), before);
      });

      await t.step(
        "a malicious layer is refused, naming the entry, and leaves nothing",
        async () => {
          const evilLayout = `${dir}/evil-layout`;
          const outside = `${dir}/outside`;
          await Deno.mkdir(outside);
          const evil = await handImage([
            [{ name: "ok", data: "fine" }, { name: "link", type: "symlink", linkname: "/etc" }],
            [{ name: "link/passwd", data: "root::0:0::/:/bin/sh\n" }],
          ]);
          const escape = await handImage([[{
            name: `../../../../../..${outside}/evil`,
            data: "x",
          }]]);
          await writeLayout(evilLayout, [{ tag: "symlink", image: evil }, {
            tag: "dotdot",
            image: escape,
          }]);
          await push(evilLayout, "symlink", `${host}/demo/evil:symlink`);
          await push(evilLayout, "dotdot", `${host}/demo/evil:dotdot`);
          const clean = new ImageStore(`${dir}/store3`);
          const passwd = await Deno.readFile("/etc/passwd");
          await rejectsWith(
            clean.pull(`${host}/demo/evil:symlink`, { insecure: true }),
            "invalid_argument",
            'entry "link/passwd" is refused',
            "symlink /link -> /etc",
          );
          deepEqual(await Deno.readFile("/etc/passwd"), passwd);
          await rejectsWith(
            clean.pull(`${host}/demo/evil:dotdot`, { insecure: true }),
            "invalid_argument",
            "climbs out of the image root",
          );
          deepEqual(await tree(outside), []);
          await assertEmptyStore(clean);
        },
      );

      await t.step("importLayout() gives the same image as the pull", async () => {
        const image = await store.importLayout(layout, { tag: "1" });
        equal(image.ref, "localhost/layout:1");
        equal(image.source, "oci-layout");
        const pulled = await store.get(ref);
        equal(image.digest, pulled.digest);
        equal(image.rootfs.path, pulled.rootfs.path);
        deepEqual(image.config, pulled.config);
        await store.remove("localhost/layout:1");
      });

      await t.step(
        "importDockerArchive() of skopeo's docker-archive gives the same tree",
        async () => {
          const archive = `${dir}/bb.tar`;
          await run("skopeo", [
            "copy",
            "--quiet",
            `oci:${layout}:1`,
            `docker-archive:${archive}:demo/bb:1`,
          ]);
          const image = await store.importDockerArchive(archive);
          equal(image.ref, "docker.io/demo/bb:1");
          equal(image.source, "docker-archive");
          const pulled = await store.get(ref);
          equal(image.config_digest, pulled.config_digest);
          deepEqual(image.config, pulled.config);
          notEqual(image.rootfs.path, pulled.rootfs.path);
          const a = `${dir}/from-archive`;
          const b = `${dir}/from-pull`;
          await run("fsck.erofs", [`--extract=${a}`, image.rootfs.path]);
          await run("fsck.erofs", [`--extract=${b}`, pulled.rootfs.path]);
          deepEqual(await tree(a), await tree(b));
          deepEqual(
            await Deno.readFile(`${a}/bin/busybox`),
            await Deno.readFile(`${b}/bin/busybox`),
          );
          deepEqual(await tree(`${store.root}/tmp`), [], "the extracted archive was removed");
          await store.remove(image.ref);
        },
      );

      await t.step(
        "a re-tagged reference keeps the replaced image reachable by digest",
        async () => {
          const old = await store.get(ref);
          await umoci("config", "--image", `${layout}:1`, "--tag", "2", "--config.env", "B=2");
          await push(layout, "2", ref);
          const updated = await store.pull(ref, { insecure: true });
          notEqual(updated.digest, old.digest);
          deepEqual(updated.config.env, ["A=1", "B=2"]);
          const dangling = await store.get(old.digest);
          // The alias still names the old image, so no digest reference was needed for it.
          equal(dangling.ref, `${host}/demo/bb:alias`);
        },
      );

      await t.step(
        "remove() deletes the record, then the rootfs and blobs no image uses",
        async () => {
          const alias = await store.get(`${host}/demo/bb:alias`);
          const current = await store.get(ref);
          const removed = await store.remove(`${host}/demo/bb:alias`);
          deepEqual(removed.map((r) => r.ref), [`${host}/demo/bb:alias`]);
          equal(await Deno.stat(alias.rootfs.path).then(() => true, () => false), false);
          ok(await Deno.stat(current.rootfs.path));
          equal(await store.blobs.size(alias.digest), null);
          for (const l of current.layers) {
            ok((await store.blobs.size(l.digest)) !== null, "shared layers stay");
          }
          await rejectsWith(store.remove(`${host}/demo/bb:alias`), "not_found");
          await store.remove(current.digest);
          await assertEmptyStore(store);
        },
      );
    } finally {
      await registry.stop();
    }
  });
});
