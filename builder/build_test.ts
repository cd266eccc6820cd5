import assert from "node:assert/strict";
import { Manifest } from "../schema/mod.ts";
import { buildPlugin } from "./build.ts";
import { inspectElf } from "./elf.ts";
import {
  CAN_CHROOT,
  CHROOT_SKIP,
  decompress,
  fabricateElf,
  HAS_BUSYBOX,
  HAS_MUSL,
  readArchive,
  run,
  unpack,
  withTempDir,
} from "./testing.ts";

const BUSYBOX_SKIP = "/bin/busybox is missing (apt-get install busybox-static)";
const MUSL_SKIP = "musl-gcc is missing (apt-get install musl-tools)";

function test(
  name: string,
  skip: string | undefined,
  fn: (t: Deno.TestContext) => Promise<void>,
): void {
  Deno.test({ name: skip ? `${name} (skipped: ${skip})` : name, ignore: skip !== undefined, fn });
}

/** A step that runs a program inside the unpacked appliance (needs chroot). */
async function chrootStep(t: Deno.TestContext, name: string, fn: () => Promise<void>) {
  await t.step({
    name: CAN_CHROOT ? name : `${name} (skipped: ${CHROOT_SKIP})`,
    ignore: !CAN_CHROOT,
    fn,
  });
}

async function write(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  if (typeof data === "string") await Deno.writeTextFile(path, data);
  else await Deno.writeFile(path, data);
  await Deno.chmod(path, mode);
}

async function sha256sum(path: string): Promise<string> {
  const out = await run("sha256sum", [path]);
  return "sha256:" + out.stdout.split(" ")[0];
}

/** Runs `args` inside the unpacked appliance with chroot. */
async function inAppliance(archive: string, args: string[]) {
  const root = await Deno.makeTempDir({ prefix: "volant-appliance-" });
  try {
    await unpack(archive, root);
    return await run("chroot", [root, ...args]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const WEB_CONFIG = `version = "1"
[plugin]
name = "web"
version = "1.0.0"
description = "busybox httpd"
[mappings]
"/bin/busybox" = "/usr/sbin/httpd"
"./www" = "/srv/www"
[workload]
entrypoint = ["/usr/sbin/httpd", "-f", "-p", "8080", "-h", "/srv/www"]
base_url = "http://127.0.0.1:8080"
[health_check]
kind = "http"
endpoint = "/"
`;

async function webProject(dir: string, extra = ""): Promise<string> {
  await write(`${dir}/www/index.html`, "<h1>hello</h1>\n");
  await write(`${dir}/www/cgi-bin/hello.sh`, "#!/bin/sh\necho hello\n", 0o755);
  await Deno.mkdir(`${dir}/www/private`);
  await write(`${dir}/www/private/key.txt`, "secret\n", 0o600);
  await Deno.chmod(`${dir}/www/private`, 0o750);
  await Deno.symlink("index.html", `${dir}/www/home.html`);
  await Deno.symlink("../index.html", `${dir}/www/cgi-bin/up.html`);
  await Deno.writeTextFile(`${dir}/app.toml`, WEB_CONFIG + extra);
  return `${dir}/app.toml`;
}

test(
  "buildPlugin() packs busybox as httpd and a www tree with modes",
  HAS_BUSYBOX ? undefined : BUSYBOX_SKIP,
  async (t) => {
    await withTempDir(async (dir) => {
      const steps: string[] = [];
      const result = await buildPlugin({
        config: await webProject(dir),
        onProgress: (s) => steps.push(s),
      });
      assert.equal(result.archive, `${dir}/web.cpio.gz`);
      assert.equal(result.manifest, `${dir}/web.manifest.json`);
      assert.equal(result.sha256, await sha256sum(result.archive));
      assert.equal(result.size, (await Deno.stat(result.archive)).size);
      assert.ok(steps.some((s) => /Compressing the archive \(gzip\)/.test(s)), steps.join("\n"));

      const m = await readArchive(result.archive);
      assert.equal(result.files, m.size);
      const httpd = m.get("usr/sbin/httpd")!;
      assert.equal(httpd.type, "file");
      assert.equal(httpd.mode, 0o755);
      assert.deepEqual(httpd.data, await Deno.readFile("/bin/busybox"));
      assert.equal(m.get("srv/www/index.html")?.mode, 0o644);
      assert.equal(m.get("srv/www/cgi-bin/hello.sh")?.mode, 0o755);
      assert.equal(m.get("srv/www/private")?.type, "dir");
      assert.equal(m.get("srv/www/private")?.mode, 0o750);
      assert.equal(m.get("srv/www/private/key.txt")?.mode, 0o600);
      assert.equal(m.get("srv/www/home.html")?.type, "symlink");
      assert.equal(
        new TextDecoder().decode(m.get("srv/www/cgi-bin/up.html")!.data),
        "../index.html",
      );
      for (const d of ["dev", "proc", "sys", "etc"]) assert.equal(m.get(d)?.type, "dir", d);
      assert.equal(m.get("tmp")?.mode, 0o1777);
      assert.match(new TextDecoder().decode(m.get("etc/passwd")!.data), /^root:x:0:0:/);
      assert.equal(m.has("init"), false, "stage 0 owns /init");
      assert.ok(
        ![...m.keys()].some((p) => p.startsWith("lib")),
        "a static binary needs no libraries",
      );
      for (const member of m.values()) {
        assert.deepEqual([member.uid, member.gid, member.mtime], [0, 0, 0], member.path);
      }
      const raw = new TextDecoder("latin1").decode(await decompress(result.archive));
      assert.ok(!raw.includes(dir), "no host path leaks into the archive");

      const manifest = Manifest.parse(JSON.parse(await Deno.readTextFile(result.manifest)));
      assert.deepEqual(manifest.initramfs, { url: result.archive, checksum: result.sha256 });
      assert.equal(manifest.init.mode, "kestrel");
      assert.equal(manifest.description, "busybox httpd");
      assert.deepEqual(manifest.workload.entrypoint.slice(0, 2), ["/usr/sbin/httpd", "-f"]);
      assert.equal(manifest.health_check?.endpoint, "/");

      await chrootStep(t, "busybox runs as httpd in the appliance", async () => {
        const out = await inAppliance(result.archive, ["/usr/sbin/httpd", "--help"]);
        assert.match(out.stdout + out.stderr, /Usage: httpd/);
      });
    });
  },
);

test(
  "buildPlugin() is reproducible across output dirs and source mtimes",
  HAS_BUSYBOX ? undefined : BUSYBOX_SKIP,
  async () => {
    await withTempDir(async (dir) => {
      const config = await webProject(dir, "[source]\nbusybox = true\n");
      const first = await buildPlugin({ config, outputDir: `${dir}/out1` });
      const later = new Date(Date.now() + 3_600_000);
      for (const p of ["www/index.html", "www/cgi-bin/hello.sh", "www/private", "www"]) {
        await Deno.utime(`${dir}/${p}`, later, later);
      }
      const second = await buildPlugin({ config, outputDir: `${dir}/out2` });
      assert.notEqual(first.archive, second.archive);
      assert.equal(second.sha256, first.sha256);
      assert.deepEqual(await Deno.readFile(second.archive), await Deno.readFile(first.archive));
      const m = await readArchive(first.archive);
      assert.equal(m.get("bin/sh")?.type, "symlink", "busybox applet links");
      assert.equal(new TextDecoder().decode(m.get("usr/bin/wget")!.data), "../../bin/busybox");
    });
  },
);

test(
  "buildPlugin() adds a dynamic binary's loader and libraries (as ldd sees them)",
  undefined,
  async (t) => {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(
        `${dir}/app.toml`,
        `version = "1"
[plugin]
name = "lister"
version = "1"
[mappings]
"/bin/ls" = "/usr/bin/ls"
[output]
compression = "none"
[workload]
entrypoint = ["/usr/bin/ls", "/"]
base_url = "http://127.0.0.1:8080"
`,
      );
      const result = await buildPlugin({ config: `${dir}/app.toml` });
      assert.ok(result.archive.endsWith("/lister.cpio"));
      const listed = (await run("sh", ["-c", `cpio -it --quiet < '${result.archive}'`])).stdout
        .split("\n");
      const ldd = (await run("ldd", ["/bin/ls"])).stdout;
      const wanted = [...ldd.matchAll(/(\/\S+) \(0x/g)].map((x) => x[1]!);
      assert.ok(wanted.length >= 2, ldd);
      for (const path of wanted) {
        const name = path.slice(path.lastIndexOf("/") + 1);
        assert.ok(
          listed.some((p) => p.endsWith(`/${name}`)),
          `${name} in the archive:\n${listed.join("\n")}`,
        );
      }
      const m = await readArchive(result.archive);
      const loader = inspectElf(await Deno.readFile("/bin/ls")).interpreter!;
      const member = m.get(loader.slice(1))!;
      assert.equal(member.type, "file", "the loader is a file, not the host's symlink");
      assert.deepEqual(member.data, await Deno.readFile(await Deno.realPath(loader)));
      await chrootStep(t, "ls runs in the appliance with only the copied libraries", async () => {
        const out = await inAppliance(result.archive, ["/usr/bin/ls", "/usr/bin"]);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout.trim(), "ls");
      });
    });
  },
);

test(
  "buildPlugin() packs a static musl program with init.mode none and zstd",
  HAS_MUSL ? undefined : MUSL_SKIP,
  async (t) => {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(
        `${dir}/hello.c`,
        '#include <stdio.h>\nint main(void) { puts("hello from musl"); return 0; }\n',
      );
      const cc = await run("musl-gcc", ["-static", "-Os", "-o", `${dir}/hello`, `${dir}/hello.c`]);
      assert.equal(cc.code, 0, cc.stderr);
      assert.equal(inspectElf(await Deno.readFile(`${dir}/hello`)).static, true);
      await Deno.writeTextFile(
        `${dir}/app.toml`,
        `version = "1"
[plugin]
name = "hello"
version = "0.1.0"
[mappings]
"./hello" = "/usr/bin/hello"
[init]
mode = "none"
[output]
dir = "dist"
compression = "zstd"
[workload]
entrypoint = ["/usr/bin/hello"]
base_url = "http://127.0.0.1:8080"
`,
      );
      const result = await buildPlugin({ config: `${dir}/app.toml` });
      assert.equal(result.archive, `${dir}/dist/hello.cpio.zst`);
      const head = (await Deno.readFile(result.archive)).subarray(0, 4);
      assert.deepEqual([...head], [0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
      const m = await readArchive(result.archive);
      const files = [...m.values()].filter((x) => x.type === "file").map((x) => x.path).sort();
      assert.deepEqual(files, ["etc/group", "etc/hosts", "etc/passwd", "usr/bin/hello"]);
      const manifest = Manifest.parse(JSON.parse(await Deno.readTextFile(result.manifest)));
      assert.equal(manifest.init.mode, "none");
      await chrootStep(t, "the program runs in the appliance", async () => {
        const out = await inAppliance(result.archive, ["/usr/bin/hello"]);
        assert.equal(out.stdout, "hello from musl\n");
      });
    });
  },
);

test(
  "buildPlugin() follows $ORIGIN runpaths into the tree and onto the host",
  undefined,
  async () => {
    await withTempDir(async (dir) => {
      const tool = fabricateElf({ needed: ["libfake.so.1"], runpath: "$ORIGIN/../lib" });
      await write(`${dir}/app/bin/tool`, tool, 0o755);
      await write(`${dir}/app/lib/libfake.so.1`, fabricateElf({}), 0o644);
      const config = (mapping: string) =>
        `version = "1"
[plugin]
name = "tool"
version = "1"
[mappings]
${mapping}
[workload]
entrypoint = ["/opt/app/bin/tool"]
base_url = "http://127.0.0.1:8080"
`;
      // The whole directory: the library is already in the tree.
      await Deno.writeTextFile(`${dir}/a.toml`, config('"./app" = "/opt/app"'));
      const a = await readArchive(
        (await buildPlugin({ config: `${dir}/a.toml`, outputDir: `${dir}/a` })).archive,
      );
      assert.equal(a.get("opt/app/lib/libfake.so.1")?.mode, 0o644);
      // Only the program: the library is found beside it on the host and copied.
      await Deno.writeTextFile(`${dir}/b.toml`, config('"./app/bin/tool" = "/opt/app/bin/tool"'));
      const b = await readArchive(
        (await buildPlugin({ config: `${dir}/b.toml`, outputDir: `${dir}/b` })).archive,
      );
      assert.deepEqual(b.get("opt/app/lib/libfake.so.1")?.data, fabricateElf({}));
    });
  },
);

test(
  "buildPlugin() writes workload.user into a generated /etc/passwd",
  HAS_BUSYBOX ? undefined : BUSYBOX_SKIP,
  async () => {
    await withTempDir(async (dir) => {
      const config = await webProject(dir, "");
      await Deno.writeTextFile(
        config,
        WEB_CONFIG.replace("[health_check]", 'user = "www"\nworkdir = "/srv/data"\n[health_check]'),
      );
      const result = await buildPlugin({ config });
      const m = await readArchive(result.archive);
      const passwd = new TextDecoder().decode(m.get("etc/passwd")!.data);
      assert.match(passwd, /^www:x:1000:1000:www:\/srv\/data:\/bin\/sh$/m);
      assert.match(new TextDecoder().decode(m.get("etc/group")!.data), /^www:x:1000:$/m);
      assert.equal(m.get("srv/data")?.type, "dir");
    });
  },
);

test(
  "buildPlugin() replaces earlier outputs and never packs its own outputs",
  undefined,
  async () => {
    await withTempDir(async (dir) => {
      await write(`${dir}/run.sh`, "#!/bin/sh\nexec sleep 1000\n", 0o755);
      await Deno.writeTextFile(
        `${dir}/app.toml`,
        `version = "1"
[plugin]
name = "self"
version = "1"
[mappings]
"." = "/srv/app"
[workload]
entrypoint = ["/srv/app/run.sh"]
base_url = "http://127.0.0.1:8080"
`,
      );
      const first = await buildPlugin({ config: `${dir}/app.toml` });
      const second = await buildPlugin({ config: `${dir}/app.toml` });
      assert.equal(second.sha256, first.sha256);
      const m = await readArchive(second.archive);
      assert.ok(m.has("srv/app/app.toml") && m.has("srv/app/run.sh"));
      assert.ok(!m.has("srv/app/self.cpio.gz") && !m.has("srv/app/self.manifest.json"));
      const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.deepEqual(left, ["app.toml", "run.sh", "self.cpio.gz", "self.manifest.json"]);
    });
  },
);

test(
  "buildPlugin() gives a dynamic musl program its loader and nothing else",
  HAS_MUSL ? undefined : MUSL_SKIP,
  async (t) => {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(
        `${dir}/hi.c`,
        '#include <stdio.h>\nint main(void) { puts("dyn"); }\n',
      );
      const cc = await run("musl-gcc", ["-Os", "-o", `${dir}/hi`, `${dir}/hi.c`]);
      assert.equal(cc.code, 0, cc.stderr);
      const info = inspectElf(await Deno.readFile(`${dir}/hi`));
      assert.equal(info.interpreter, "/lib/ld-musl-x86_64.so.1");
      await Deno.writeTextFile(
        `${dir}/app.toml`,
        `version = "1"
[plugin]
name = "hi"
version = "1"
[mappings]
"./hi" = "/usr/bin/hi"
[workload]
entrypoint = ["/usr/bin/hi"]
base_url = "http://127.0.0.1:8080"
`,
      );
      const result = await buildPlugin({ config: `${dir}/app.toml` });
      const m = await readArchive(result.archive);
      const files = [...m.values()].filter((x) => x.type === "file").map((x) => x.path).sort();
      assert.deepEqual(files, [
        "etc/group",
        "etc/hosts",
        "etc/passwd",
        "lib/ld-musl-x86_64.so.1",
        "usr/bin/hi",
      ]);
      await chrootStep(t, "the program runs in the appliance", async () => {
        const out = await inAppliance(result.archive, ["/usr/bin/hi"]);
        assert.equal(out.stdout, "dyn\n");
      });
    });
  },
);
