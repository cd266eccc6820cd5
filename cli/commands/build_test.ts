import assert from "node:assert/strict";
import type { CommanderError } from "commander";
import { Manifest } from "../../schema/mod.ts";
import { readCpio } from "../../kernels/mod.ts";
import { reportError } from "../errors.ts";
import type { Io } from "../io.ts";
import { buildProgram, HelpShown, wantsJson } from "../program.ts";
import { registerBuild } from "./build.ts";

function captureIo(): Io & { stdout(): string; stderr(): string } {
  let out = "";
  let err = "";
  return {
    out: (text) => void (out += text),
    err: (text) => void (err += text),
    outIsTerminal: false,
    errIsTerminal: false,
    env: () => undefined,
    now: () => Date.now(),
    stdout: () => out,
    stderr: () => err,
  };
}

/** Runs volar with `build` registered (whether or not program.ts registers it yet). */
async function volar(args: string[]) {
  const io = captureIo();
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
    ]);
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
    assert.deepEqual(JSON.parse(viaConfig.stdout), { written: `${dir}/other.toml` });
  });
});

Deno.test("volar build says how to start when the config is missing", async () => {
  await withProject(async (dir) => {
    const r = await volar(["build", "-c", `${dir}/missing.toml`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not exist \(write a starter one with volar build --init/);
  });
});
