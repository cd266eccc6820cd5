import assert from "node:assert/strict";
import type { CommanderError } from "commander";
import { Manifest } from "../../schema/mod.ts";
import { readCpio } from "../../kernels/mod.ts";
import { parseBuildConfig } from "../../builder/mod.ts";
import { buildBusyboxLayout, BUSYBOX_TAG, snapshot } from "../../builder/testing.ts";
import { push, startRegistry } from "../../images/testing_registry.ts";
import { reportError } from "../errors.ts";
import type { Io } from "../io.ts";
import { buildProgram, HelpShown, wantsJson } from "../program.ts";
import { registerBuild } from "./build.ts";

function captureIo(
  env: Record<string, string> = {},
): Io & { stdout(): string; stderr(): string } {
  let out = "";
  let err = "";
  return {
    out: (text) => void (out += text),
    err: (text) => void (err += text),
    outIsTerminal: false,
    errIsTerminal: false,
    env: (key) => env[key],
    now: () => Date.now(),
    stdout: () => out,
    stderr: () => err,
  };
}

/** Runs volar with `build` registered (whether or not program.ts registers it yet). */
async function volar(args: string[], env: Record<string, string> = {}) {
  const io = captureIo(env);
  const program = buildProgram(io);
  if (!program.commands.some((c) => c.name() === "build")) {
    registerBuild(program, io);
    program.commands.find((c) => c.name() === "build")!.exitOverride((err: CommanderError) => {
      throw err;
    });
  }
  let code = 0;
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (err) {
    code = err instanceof HelpShown ? err.exitCode : reportError(io, err, wantsJson(args));
  }
  return { code, stdout: io.stdout(), stderr: io.stderr() };
}

async function withProject(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volar-build-test-" });
  try {
    await Deno.writeTextFile(`${dir}/serve.sh`, "#!/bin/sh\nexec httpd -f -p 8080\n");
    await Deno.chmod(`${dir}/serve.sh`, 0o755);
    await Deno.writeTextFile(
      `${dir}/app.toml`,
      `version = "1"
[plugin]
name = "script"
version = "2.0.0"
[mappings]
"./serve.sh" = "/usr/bin/serve"
[workload]
entrypoint = ["/usr/bin/serve"]
base_url = "http://127.0.0.1:8080"
`,
    );
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function sha256sum(path: string): Promise<string> {
  const out = await new Deno.Command("sha256sum", { args: [path], stdout: "piped" }).output();
  return "sha256:" + new TextDecoder().decode(out.stdout).split(" ")[0];
}

Deno.test("volar build --json prints the build summary", async () => {
  await withProject(async (dir) => {
    const r = await volar(["--json", "build", "-c", `${dir}/app.toml`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "", "no progress on a non-terminal stderr with --json");
    const summary = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(summary).sort(), [
      "archive",
      "files",
      "manifest",
      "ms",
      "name",
      "sha256",
      "size",
      "strategy",
    ]);
    assert.equal(summary.strategy, "initramfs");
    assert.equal(summary.name, "script");
    assert.equal(summary.archive, `${dir}/script.cpio.gz`);
    assert.equal(summary.sha256, await sha256sum(summary.archive));
    assert.equal(summary.size, (await Deno.stat(summary.archive)).size);
    const manifest = Manifest.parse(JSON.parse(await Deno.readTextFile(summary.manifest)));
    assert.equal(manifest.initramfs?.checksum, summary.sha256);
    assert.equal(manifest.version, "2.0.0");
  });
});

Deno.test("volar build shows progress on stderr and a summary on stdout", async () => {
  await withProject(async (dir) => {
    const r = await volar(["build", "--config", `${dir}/app.toml`, "-o", `${dir}/out`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Built script in \d+\.\d\d s: \d+ files, [\d.]+ (B|KiB)\n/);
    assert.match(r.stdout, new RegExp(`archive:\\s+${dir}/out/script\\.cpio\\.gz\\n`));
    assert.match(r.stdout, new RegExp(`manifest:\\s+${dir}/out/script\\.manifest\\.json\\n`));
    assert.match(r.stderr, /^Building from .*app\.toml…\n/);
    assert.match(r.stderr, /Resolving shared libraries…\n/);
    assert.match(r.stderr, /Compressing the archive \(gzip\)…\n/);
    const gz = await Deno.readFile(`${dir}/out/script.cpio.gz`);
    const cpio = new Uint8Array(
      await new Response(new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip")))
        .arrayBuffer(),
    );
    const serve = readCpio(cpio).find((m) => m.path === "usr/bin/serve");
    assert.equal(serve?.mode, 0o755);
    assert.equal(new TextDecoder().decode(serve!.data), "#!/bin/sh\nexec httpd -f -p 8080\n");
  });
});

Deno.test("volar build reports a bad config with the key and exit code 1", async () => {
  await withProject(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/app.toml`,
      (await Deno.readTextFile(`${dir}/app.toml`)).replace("./serve.sh", "./nope.sh"),
    );
    const r = await volar(["build", "-c", `${dir}/app.toml`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /volar: .*app\.toml: mappings\."\.\/nope\.sh": source does not exist/);
    assert.equal(r.stdout, "");
    const json = await volar(["--json", "build", "-c", `${dir}/app.toml`]);
    assert.equal(JSON.parse(json.stderr).details.field, 'mappings."./nope.sh"');
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "app.toml",
      "serve.sh",
    ]);
  });
});

Deno.test("volar build --init writes a starter config once", async () => {
  await withProject(async (dir) => {
    const path = `${dir}/starter.toml`;
    const r = await volar(["build", "--init", path]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Wrote .*starter\.toml: map your program under \[mappings\]/);
    const text = await Deno.readTextFile(path);
    assert.match(text, /^# Volant build config/);
    const again = await volar(["build", "--init", path]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /starter\.toml already exists/);
    assert.equal(await Deno.readTextFile(path), text, "never overwritten");
    // -c names the file when --init has no path.
    const viaConfig = await volar(["--json", "build", "-c", `${dir}/other.toml`, "--init"]);
    assert.deepEqual(JSON.parse(viaConfig.stdout), {
      written: `${dir}/other.toml`,
      strategy: "initramfs",
    });
  });
});

Deno.test("volar build says how to start when the config is missing", async () => {
  await withProject(async (dir) => {
    const r = await volar(["build", "-c", `${dir}/missing.toml`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not exist \(write a starter one with volar build --init/);
  });
});

Deno.test("volar build --init --strategy oci_rootfs writes the image starter config", async () => {
  await withProject(async (dir) => {
    const path = `${dir}/web.toml`;
    const r = await volar(["build", "--init", path, "--strategy", "oci_rootfs"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Wrote .*web\.toml: name the image under \[source\]/);
    const config = parseBuildConfig(await Deno.readTextFile(path), path);
    assert.equal(config.strategy, "oci_rootfs");
    const json = await volar([
      "--json",
      "build",
      "--strategy",
      "oci_rootfs",
      "--init",
      `${dir}/b.toml`,
    ]);
    assert.deepEqual(JSON.parse(json.stdout), { written: `${dir}/b.toml`, strategy: "oci_rootfs" });
    const bad = await volar(["build", "--init", `${dir}/c.toml`, "--strategy", "docker"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--strategy: expected one of initramfs, oci_rootfs, got 'docker'/);
    const noInit = await volar(["build", "-c", path, "--strategy", "oci_rootfs"]);
    assert.equal(noInit.code, 2);
    assert.match(noInit.stderr, /--strategy only chooses the starter config of --init/);
    assert.deepEqual(
      (await snapshot(dir)).filter((p) => p.endsWith(".toml")),
      ["app.toml", "b.toml", "web.toml"],
    );
  });
});

Deno.test("volar build with strategy oci_rootfs pulls from a real docker-registry", async (t) => {
  await withProject(async (dir) => {
    const layout = await buildBusyboxLayout(dir);
    const registry = await startRegistry(`${dir}/registry`);
    try {
      const ref = `${registry.host}/demo/bb:${BUSYBOX_TAG}`;
      await push(layout, BUSYBOX_TAG, ref);
      const config = `${dir}/bb.toml`;
      await Deno.writeTextFile(
        config,
        `version = "1"\nstrategy = "oci_rootfs"\n[source]\nimage = "${ref}"\n` +
          'insecure_registry = true\n[output]\ndir = "out"\n[workload.env]\nMODE = "cli"\n',
      );
      let sha = "";

      await t.step(
        "--json prints the summary; the manifest names the rootfs by sha256",
        async () => {
          const r = await volar(["--json", "build", "-c", config, "--image-cache", `${dir}/cache`]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stderr, "");
          const summary = JSON.parse(r.stdout);
          assert.deepEqual(Object.keys(summary).sort(), [
            "archive",
            "cache",
            "files",
            "image",
            "manifest",
            "ms",
            "name",
            "sha256",
            "size",
            "strategy",
          ]);
          assert.equal(summary.strategy, "oci_rootfs");
          assert.equal(summary.name, "bb");
          assert.equal(summary.archive, `${dir}/out/bb.rootfs.erofs`);
          assert.equal(summary.cache, `${dir}/cache`);
          assert.equal(summary.image.ref, ref);
          assert.equal(summary.sha256, await sha256sum(summary.archive));
          assert.equal(summary.size, (await Deno.stat(summary.archive)).size);
          const manifest = Manifest.parse(JSON.parse(await Deno.readTextFile(summary.manifest)));
          assert.deepEqual(manifest.rootfs, {
            url: summary.archive,
            checksum: summary.sha256,
            format: "raw",
          });
          assert.equal(manifest.workload.env.MODE, "cli");
          assert.equal(manifest.workload.env.GREETING, "hi");
          assert.equal(manifest.workload.entrypoint[0], "/bin/busybox");
          sha = summary.sha256;
        },
      );

      await t.step(
        "progress on stderr, the cache from VOLANT_IMAGE_CACHE, the same sha256",
        async () => {
          const r = await volar(["build", "-c", config, "-o", `${dir}/out2`], {
            VOLANT_IMAGE_CACHE: `${dir}/env-cache`,
          });
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stderr, /^Building from .*bb\.toml…\n/);
          assert.match(r.stderr, /Pulling .*demo\/bb:1\.0 \(plain HTTP\)…\n/);
          assert.match(r.stderr, /Downloading layer sha256:[0-9a-f]{12} \([\d.]+ (KiB|MiB)\)…\n/);
          assert.match(r.stderr, /Copying the root filesystem/);
          assert.match(r.stdout, /^Built bb in \d+\.\d\d s: \d+ files, [\d.]+ (KiB|MiB)\n/);
          assert.match(r.stdout, new RegExp(`rootfs:\\s+${dir}/out2/bb\\.rootfs\\.erofs\\n`));
          assert.match(r.stdout, new RegExp(`sha256:\\s+${sha}\\n`));
          assert.match(
            r.stdout,
            /image:\s+127\.0\.0\.1:\d+\/demo\/bb:1\.0 \(sha256:[0-9a-f]{64}\)/,
          );
          assert.ok((await Deno.stat(`${dir}/env-cache/images.json`)).isFile);
          assert.equal(await sha256sum(`${dir}/out2/bb.rootfs.erofs`), sha);
        },
      );

      await t.step("an unknown tag exits 1 naming source.image and writes nothing", async () => {
        const bad = `${dir}/bad.toml`;
        await Deno.writeTextFile(
          bad,
          (await Deno.readTextFile(config)).replace(":1.0", ":nope").replace('"out"', '"bad-out"'),
        );
        const before = await snapshot(dir);
        const r = await volar(["build", "-c", bad, "--image-cache", `${dir}/cache`]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /\nvolar: .*bad\.toml: source\.image: Tag nope does not exist in /);
        assert.equal(r.stdout, "");
        const json = await volar(["--json", "build", "-c", bad, "--image-cache", `${dir}/cache`]);
        const body = JSON.parse(json.stderr);
        assert.equal(body.code, "not_found");
        assert.equal(body.details.field, "source.image");
        assert.deepEqual(await snapshot(dir), before);
      });
    } finally {
      await registry.stop();
    }
  });
});
