import assert from "node:assert/strict";
import { VolantError } from "../schema/mod.ts";
import { formatKeyPath, loadBuildConfig, parseBuildConfig } from "./config.ts";
import { STARTER_CONFIG, writeStarterConfig } from "./starter.ts";
import { withTempDir } from "./_testing.ts";

const MINIMAL = `version = "1"
[plugin]
name = "hello"
version = "0.1.0"
[workload]
entrypoint = ["/usr/bin/hello"]
base_url = "http://127.0.0.1:8080"
`;

function rejects(text: string, ...patterns: RegExp[]): VolantError {
  let caught: unknown;
  try {
    parseBuildConfig(text, "app.toml");
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof VolantError, `expected a VolantError, got ${caught}`);
  assert.equal(caught.code, "invalid_argument");
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}

Deno.test("parseBuildConfig() applies the defaults", () => {
  const c = parseBuildConfig(MINIMAL, "app.toml");
  assert.equal(c.strategy, "initramfs");
  assert.deepEqual(c.source, { busybox: false });
  assert.deepEqual(c.init, { mode: "kestrel" });
  assert.deepEqual(c.output, { dir: ".", compression: "gzip" });
  assert.deepEqual(c.resources, { cpu_cores: 1, memory_mb: 256 });
  assert.deepEqual(c.mappings, {});
});

Deno.test("parseBuildConfig() accepts the starter config", () => {
  const c = parseBuildConfig(STARTER_CONFIG, "app.toml");
  assert.equal(c.plugin.name, "hello");
  assert.deepEqual(c.mappings, { "./hello": "/usr/bin/hello" });
  assert.equal(c.health_check?.endpoint, "/");
});

Deno.test("parseBuildConfig() names unknown keys and wrong types by their TOML path", () => {
  const err = rejects(
    MINIMAL.replace('name = "hello"', 'name = "hello"\nnmae = "x"') +
      '[resources]\ncpu_cores = "two"\nmemory_mb = 256\n',
    /^app\.toml: /,
    /plugin\.nmae: unknown key/,
    /resources\.cpu_cores: expected number, got the string "two"/,
  );
  assert.equal(err.details?.file, "app.toml");
});

Deno.test("parseBuildConfig() reports missing required fields", () => {
  rejects(
    'version = "1"\n[plugin]\nversion = "1"\n',
    /plugin\.name: is required/,
    /workload: is required/,
  );
  rejects(MINIMAL.replace('version = "1"\n', ""), /version: must be "1"/);
  rejects(
    MINIMAL.replace('base_url = "http://127.0.0.1:8080"\n', ""),
    /workload\.base_url: is required/,
  );
});

Deno.test("parseBuildConfig() refuses bad guest paths in [mappings] and quotes the key", () => {
  rejects(
    MINIMAL + '[mappings]\n"./hello" = "usr/bin/hello"\n',
    /mappings\."\.\/hello": must be an absolute/,
  );
  rejects(
    MINIMAL + '[mappings]\n"./x" = "/usr/../../etc/x"\n',
    /mappings\."\.\/x": must not contain/,
  );
});

Deno.test("parseBuildConfig() refuses unknown strategies and init modes", () => {
  rejects(
    MINIMAL.replace('version = "1"', 'version = "1"\nstrategy = "docker"'),
    /strategy: must be one of "initramfs", "oci_rootfs"/,
  );
  rejects(
    MINIMAL.replace('version = "1"', 'version = "1"\nstrategy = "oci_rootfs"'),
    /strategy: "oci_rootfs" is not supported by this build yet/,
  );
  rejects(
    MINIMAL + '[init]\nmode = "systemd"\n',
    /init\.mode: must be one of "kestrel", "custom", "none"/,
  );
  rejects(MINIMAL + '[init]\nmode = "custom"\n', /init\.path: init\.mode custom needs init\.path/);
  rejects(MINIMAL + '[output]\ncompression = "xz"\n', /output\.compression: must be one of/);
});

Deno.test("parseBuildConfig() reports TOML syntax errors with their line", () => {
  rejects('version = "1"\n[plugin\n', /app\.toml: invalid TOML at line 2/);
});

Deno.test("formatKeyPath() quotes keys TOML cannot write bare", () => {
  assert.equal(formatKeyPath(["mappings", "./x"]), 'mappings."./x"');
  assert.equal(formatKeyPath(["workload", "entrypoint", 0]), "workload.entrypoint[0]");
  assert.equal(formatKeyPath(["actions", "re-load", "path"]), "actions.re-load.path");
});

Deno.test("loadBuildConfig() says how to start when the file is missing", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      loadBuildConfig(`${dir}/app.toml`),
      (err) =>
        err instanceof VolantError && err.code === "not_found" &&
        /volar build --init/.test(err.message),
    );
  });
});

Deno.test("writeStarterConfig() writes a loadable config and never overwrites", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/app.toml`;
    await writeStarterConfig(path);
    assert.equal((await loadBuildConfig(path)).plugin.name, "hello");
    await Deno.writeTextFile(path, "# mine\n");
    await assert.rejects(
      writeStarterConfig(path),
      (err) => err instanceof VolantError && err.code === "already_exists",
    );
    assert.equal(await Deno.readTextFile(path), "# mine\n");
  });
});
