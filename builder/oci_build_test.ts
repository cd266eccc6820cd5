import assert from "node:assert/strict";
import { VolantError } from "../schema/mod.ts";
import { push, startRegistry } from "../images/testing_registry.ts";
import type { OciRootfsBuildResult } from "./build.ts";
import { defaultImageCache } from "./oci_build.ts";
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

/** `dump.erofs` fields of one path, or of the superblock (`-s`). */
async function dump(image: string, path?: string): Promise<string> {
  const out = await run(
    "dump.erofs",
    path === undefined ? ["-s", image] : [`--path=${path}`, image],
  );
  assert.equal(out.code, 0, out.stderr);
  return out.stdout;
}

Deno.test("defaultImageCache() prefers VOLANT_IMAGE_CACHE, then XDG_CACHE_HOME, then HOME", () => {
  const env = (vars: Record<string, string>) => (key: string) => vars[key];
  assert.equal(
    defaultImageCache(env({ VOLANT_IMAGE_CACHE: "/srv/cache", HOME: "/root" })),
    "/srv/cache",
  );
  assert.equal(
    defaultImageCache(env({ VOLANT_IMAGE_CACHE: "rel/cache" })),
    `${Deno.cwd()}/rel/cache`,
  );
  assert.equal(
    defaultImageCache(env({ XDG_CACHE_HOME: "/var/cache/u", HOME: "/home/u" })),
    "/var/cache/u/volant/images",
  );
  assert.equal(
    defaultImageCache(env({ XDG_CACHE_HOME: "relative", HOME: "/home/u" })),
    "/home/u/.cache/volant/images",
    "a relative XDG_CACHE_HOME is ignored",
  );
  assert.throws(
    () => defaultImageCache(env({})),
    (err) => err instanceof VolantError && /set VOLANT_IMAGE_CACHE/.test(err.message),
  );
});

Deno.test("buildPlugin(oci_rootfs) with a real docker-registry and a umoci-built busybox image", async (t) => {
  await withTempDir(async (dir) => {
    const layout = await buildBusyboxLayout(dir);
    const registry = await startRegistry(`${dir}/registry`);
    try {
      const ref = `${registry.host}/demo/bb:${BUSYBOX_TAG}`;
      await push(layout, BUSYBOX_TAG, ref);
      const project = `${dir}/project`;
      await Deno.mkdir(project);
      const config = async (name: string, body: string) => {
        await Deno.writeTextFile(`${project}/${name}`, HEAD + body);
        return `${project}/${name}`;
      };
      const source = `[source]\nimage = "${ref}"\ninsecure_registry = true\n`;
      const app = await config("app.toml", source + '[output]\ndir = "out"\n');
      let first: OciRootfsBuildResult | undefined;

      await t.step("pulls the image and writes its rootfs and a manifest naming it", async () => {
        const steps: string[] = [];
        const started = performance.now();
        const r = await build({
          config: app,
          imageCache: `${dir}/cache-a`,
          onProgress: (s) => steps.push(s),
        });
        console.log(`cold oci_rootfs build: ${(performance.now() - started).toFixed(0)} ms`);
        first = r;
        assert.equal(r.name, "bb");
        assert.equal(r.archive, `${project}/out/bb.rootfs.erofs`);
        assert.equal(r.manifest, `${project}/out/bb.manifest.json`);
        assert.equal(r.cache, `${dir}/cache-a`);
        assert.deepEqual(await snapshot(`${project}/out`), ["bb.manifest.json", "bb.rootfs.erofs"]);
        assert.equal(r.sha256, await sha256sum(r.archive));
        assert.equal(r.size, (await Deno.stat(r.archive)).size);
        assert.equal((await Deno.stat(r.archive)).mode! & 0o777, 0o644);
        assert.equal(r.image.ref, ref);
        assert.equal(r.image.layers, 3);
        assert.match(r.image.digest, /^sha256:[0-9a-f]{64}$/);
        const inodes = /Filesystem inode count:\s+(\d+)/.exec(await dump(r.archive))?.[1];
        assert.equal(r.files, Number(inodes));

        const m = await readManifest(r.manifest);
        assert.deepEqual(m.rootfs, { url: r.archive, checksum: r.sha256, format: "raw" });
        assert.equal(m.initramfs, undefined);
        assert.equal(m.name, "bb");
        assert.equal(m.version, BUSYBOX_TAG, "the version defaults to the tag");
        assert.deepEqual(m.workload.entrypoint, [
          "/bin/busybox",
          "httpd",
          "-f",
          "-p",
          "8080",
          "-h",
          "/www",
        ]);
        assert.equal(m.workload.env.GREETING, "hi");
        assert.match(m.workload.env.PATH ?? "", /\/bin/);
        assert.equal(m.workload.workdir, "/www");
        assert.equal(m.workload.user, "app");
        assert.equal(m.workload.base_url, "http://127.0.0.1:8080");
        assert.equal(m.health_check?.kind, "tcp");
        assert.equal(m.health_check?.port, 8080);
        assert.equal(m.init.mode, "kestrel");
        assert.deepEqual(m.resources, { cpu_cores: 1, memory_mb: 256 });
        assert.equal(m.labels["volant.image"], ref);
        assert.equal(m.labels["volant.image.digest"], r.image.digest);

        assert.match(steps.join("\n"), /^Pulling .*demo\/bb:1\.0 \(plain HTTP\)$/m);
        const downloads = steps.filter((s) => /^Downloading layer sha256:[0-9a-f]{12} \(/.test(s));
        assert.equal(new Set(downloads).size, 3, steps.join("\n"));
        assert.match(steps.at(-1)!, /^Copying the root filesystem \([\d.]+ (KiB|MiB)\) to /);
      });

      await t.step("the rootfs holds the image's files with their owners", async () => {
        const out = `${dir}/extracted`;
        const fsck = await run("fsck.erofs", [`--extract=${out}`, first!.archive]);
        assert.equal(fsck.code, 0, fsck.stderr);
        assert.deepEqual(
          await Deno.readFile(`${out}/bin/busybox`),
          await Deno.readFile("/bin/busybox"),
        );
        assert.equal(await Deno.readLink(`${out}/bin/sh`), "busybox");
        assert.equal(await Deno.readTextFile(`${out}/www/index.html`), "<h1>volant</h1>\n");
        assert.equal(await Deno.readTextFile(`${out}/etc/motd`), "built by umoci\n");
        for (const m of ["proc", "sys", "dev", "run", "tmp"]) {
          assert.ok((await Deno.lstat(`${out}/${m}`)).isDirectory, m);
        }
        if (Deno.uid() === 0) {
          assert.match(await dump(first!.archive, "/home/app/.profile"), /Uid: 1000\s+Gid: 1000/);
        }
        await Deno.remove(out, { recursive: true });
      });

      await t.step(
        "the same image gives the same sha256, from a fresh cache or the warm one",
        async () => {
          // A second, empty cache pulls and builds the erofs image again, in another second.
          await new Promise((r) => setTimeout(r, 1100));
          const fresh = await build({
            config: app,
            imageCache: `${dir}/cache-b`,
            outputDir: `${dir}/b`,
          });
          assert.equal(fresh.sha256, first!.sha256, "a rebuild of the rootfs differs");
          assert.equal(fresh.image.digest, first!.image.digest);
          assert.equal(await sha256sum(fresh.archive), first!.sha256);
          const steps: string[] = [];
          const started = performance.now();
          const warm = await build({
            config: app,
            imageCache: `${dir}/cache-a`,
            onProgress: (s) => steps.push(s),
          });
          console.log(`warm oci_rootfs build: ${(performance.now() - started).toFixed(0)} ms`);
          assert.equal(warm.sha256, first!.sha256);
          assert.deepEqual(steps.filter((s) => s.startsWith("Downloading")), []);
          assert.deepEqual(await snapshot(`${project}/out`), [
            "bb.manifest.json",
            "bb.rootfs.erofs",
          ]);
        },
      );

      await t.step(
        "[plugin], [workload] and the manifest sections override the image's",
        async () => {
          const path = await config(
            "web.toml",
            source + `[plugin]
name = "web"
version = "2.0.0"
description = "busybox httpd"
[output]
dir = "web-out"
[resources]
cpu_cores = 2
memory_mb = 512
[workload]
entrypoint = ["/bin/busybox"]
cmd = ["httpd", "-f", "-p", "9090"]
base_url = "http://127.0.0.1:9090"
user = "1000:1000"
workdir = "/"
[workload.env]
GREETING = "hello"
MODE = "prod"
[health_check]
kind = "http"
endpoint = "/"
[actions.reload]
path = "/reload"
[restart]
policy = "always"
[labels]
team = "edge"
"volant.image" = "spoofed"
`,
          );
          const r = await build({ config: path, imageCache: `${dir}/cache-a` });
          assert.equal(r.archive, `${project}/web-out/web.rootfs.erofs`);
          assert.equal(r.sha256, first!.sha256, "overrides do not change the rootfs");
          const m = await readManifest(r.manifest);
          assert.equal(m.name, "web");
          assert.equal(m.version, "2.0.0");
          assert.equal(m.description, "busybox httpd");
          assert.deepEqual(m.resources, { cpu_cores: 2, memory_mb: 512 });
          assert.deepEqual(m.workload.entrypoint, ["/bin/busybox", "httpd", "-f", "-p", "9090"]);
          assert.equal(m.workload.base_url, "http://127.0.0.1:9090");
          assert.equal(m.workload.user, "1000:1000");
          assert.equal(m.workload.workdir, "/");
          assert.equal(m.workload.env.GREETING, "hello");
          assert.equal(m.workload.env.MODE, "prod");
          assert.deepEqual(
            [m.health_check?.kind, m.health_check?.endpoint, m.health_check?.port],
            ["http", "/", undefined],
          );
          assert.equal(m.actions.reload?.path, "/reload");
          assert.equal(m.restart.policy, "always");
          assert.equal(m.labels.team, "edge");
          assert.equal(m.labels["volant.image"], ref, "the image labels stay the image's");
          assert.deepEqual(m.rootfs, { url: r.archive, checksum: r.sha256, format: "raw" });

          const cmdOnly = await config(
            "cmd.toml",
            source + '[workload]\ncmd = ["-f", "-p", "9999"]\n',
          );
          const c = await readManifest(
            (await build({ config: cmdOnly, imageCache: `${dir}/cache-a`, outputDir: `${dir}/c` }))
              .manifest,
          );
          assert.deepEqual(c.workload.entrypoint, ["/bin/busybox", "httpd", "-f", "-p", "9999"]);
          assert.equal(c.health_check?.port, 8080, "the image's exposed port is still checked");
        },
      );

      await t.step("an unknown tag fails naming source.image and writes nothing", async () => {
        const path = await config(
          "missing.toml",
          `[source]\nimage = "${registry.host}/demo/bb:nope"\ninsecure_registry = true\n`,
        );
        const before = await snapshot(project);
        await refused(
          () => build({ config: path, imageCache: `${dir}/cache-a` }),
          "not_found",
          path,
          "source.image",
          /Tag nope does not exist in .*demo\/bb; its tags: 1\.0/,
        );
        assert.deepEqual(await snapshot(project), before);
      });

      await t.step(
        "a plain-HTTP registry without insecure_registry fails naming source.image",
        async () => {
          const path = await config("tls.toml", `[source]\nimage = "${ref}"\n`);
          const before = await snapshot(project);
          const err = await refused(
            () => build({ config: path, imageCache: `${dir}/cache-a` }),
            "artifact_unavailable",
            path,
            "source.image",
          );
          assert.match(err.message, /set insecure_registry = true under \[source\]/);
          assert.deepEqual(await snapshot(project), before);
        },
      );

      await t.step(
        "an output dir nobody can write fails after the pull and leaves nothing",
        async () => {
          const proc = await config("proc.toml", source + '[output]\ndir = "/proc"\n');
          const before = await snapshot(project);
          await refused(
            () => build({ config: proc, imageCache: `${dir}/cache-a` }),
            "invalid_argument",
            proc,
            "output.dir",
            /cannot write the outputs to \/proc/,
          );
          await refused(
            () =>
              build({
                config: app,
                imageCache: `${dir}/cache-a`,
                outputDir: `${project}/app.toml/x`,
              }),
            "invalid_argument",
            app,
            "--output-dir",
            /cannot use .*app\.toml\/x/,
          );
          await refused(
            () =>
              build({
                config: app,
                imageCache: `${dir}/cache-a`,
                outputDir: "/proc/volant-oci-test",
              }),
            "invalid_argument",
            app,
            "--output-dir",
            /cannot write the outputs to \/proc\/volant-oci-test/,
          );
          assert.deepEqual(await snapshot(project), before);
        },
      );
    } finally {
      await registry.stop();
    }
  });
});
