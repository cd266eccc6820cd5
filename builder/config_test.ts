import assert from "node:assert/strict";
import { VolantError } from "../schema/mod.ts";
import { formatKeyPath, loadBuildConfig, parseBuildConfig } from "./config.ts";
import { OCI_STARTER_CONFIG, STARTER_CONFIG, writeStarterConfig } from "./starter.ts";
import { withTempDir } from "./testing.ts";

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
  assert.equal(c.strategy, "initramfs");
  assert.equal(c.plugin.name, "hello");
  assert.deepEqual(c.mappings, { "./hello": "/usr/bin/hello" });
  assert.equal(c.health_check?.endpoint, "/");
  assert.equal(c.workload.base_url, "http://127.0.0.1:80", "a plain port, not kestrel's");
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
  const err = rejects(
    MINIMAL.replace('version = "1"', 'version = "1"\nstrategy = 7'),
    /^app\.toml: strategy: must be one of "initramfs", "oci_rootfs", got number 7$/,
  );
  assert.equal(err.details?.field, "strategy");
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

const OCI = `version = "1"
strategy = "oci_rootfs"
[source]
image = "127.0.0.1:5000/demo/web:1.0"
`;

Deno.test("parseBuildConfig() reads an oci_rootfs config and applies its defaults", () => {
  const c = parseBuildConfig(OCI, "web.toml");
  assert.equal(c.strategy, "oci_rootfs");
  assert.deepEqual(c.source, { image: "127.0.0.1:5000/demo/web:1.0" });
  assert.deepEqual(c.plugin, {});
  assert.deepEqual(c.output, { dir: "." });
  assert.deepEqual(c.resources, { cpu_cores: 1, memory_mb: 256 });
  assert.deepEqual(c.workload, { env: {} });
  assert.deepEqual(c.actions, {});
  assert.deepEqual(c.labels, {});
  assert.equal(c.health_check, undefined);
  const full = parseBuildConfig(
    `version = "1"
strategy = "oci_rootfs"
[plugin]
name = "web"
version = "2.0"
[source]
oci_layout = "./layout"
tag = "1.0"
[output]
dir = "out"
[workload]
entrypoint = ["/bin/httpd"]
cmd = []
base_url = "http://127.0.0.1:8080"
user = "1000:1000"
[workload.env]
MODE = "prod"
[health_check]
kind = "http"
endpoint = "/healthz"
[actions.reload]
path = "/reload"
`,
    "web.toml",
  );
  assert.equal(full.strategy, "oci_rootfs");
  assert.deepEqual(full.source, { oci_layout: "./layout", tag: "1.0" });
  assert.deepEqual(full.workload, {
    entrypoint: ["/bin/httpd"],
    cmd: [],
    base_url: "http://127.0.0.1:8080",
    user: "1000:1000",
    env: { MODE: "prod" },
  });
  assert.equal(full.health_check?.kind, "http");
  assert.equal(full.actions.reload?.method, "POST");
});

Deno.test("parseBuildConfig() accepts the oci_rootfs starter config", () => {
  const c = parseBuildConfig(OCI_STARTER_CONFIG, "app.toml");
  assert.equal(c.strategy, "oci_rootfs");
  assert.equal(c.source.image, "127.0.0.1:5000/demo/web:1.0");
  assert.equal(c.source.insecure_registry, true);
  assert.equal(c.plugin.name, "web");
});

Deno.test("parseBuildConfig() requires exactly one image source for oci_rootfs", () => {
  const head = 'version = "1"\nstrategy = "oci_rootfs"\n';
  const missing = rejects(
    head,
    /^app\.toml: source: is required: name the image with \[source\] image = /,
  );
  assert.equal(missing.details?.field, "source");
  rejects(
    head + "[source]\n",
    /source: names no image: set one of image, oci_layout or docker_archive/,
  );
  rejects(
    head + '[source]\nimage = "a:1"\noci_layout = "./l"\n',
    /source: sets image and oci_layout: give only one of image, oci_layout or docker_archive/,
  );
  rejects(
    head + '[source]\ndocker_archive = "./a.tar"\noci_layout = "./l"\n',
    /source: sets oci_layout and docker_archive: give only one/,
  );
  rejects(head + 'source = "busybox"\n', /source: expected object, got the string "busybox"/);
});

Deno.test("parseBuildConfig() checks the oci_rootfs source's values and names the key", () => {
  const head = 'version = "1"\nstrategy = "oci_rootfs"\n[source]\n';
  const bad = rejects(
    head + 'image = "Not A Ref"\n',
    /source\.image: Image reference "Not A Ref" is invalid: it contains white space/,
  );
  assert.equal(bad.details?.field, "source.image");
  rejects(head + 'image = ""\n', /source\.image: must not be empty/);
  rejects(
    head + 'image = "a:1"\ntag = "2"\n',
    /source\.tag: only applies to oci_layout and docker_archive: put the tag in source\.image/,
  );
  rejects(
    head + 'oci_layout = "./l"\ninsecure_registry = true\n',
    /source\.insecure_registry: only applies to source\.image \(a registry\), not source\.oci_layout/,
  );
  rejects(
    head + 'image = "a:1"\ninsecure_registry = "yes"\n',
    /source\.insecure_registry: expected boolean, got the string "yes"/,
  );
  rejects(
    head + 'image = "a:1"\nbusybox = true\n',
    /source\.busybox: unknown key \(not used by strategy "oci_rootfs"/,
  );
});

Deno.test("parseBuildConfig() reports every oci_rootfs problem at once, with hints for the other strategy's keys", () => {
  const err = rejects(
    `version = "1"
strategy = "oci_rootfs"
[plugin]
name = "Bad_Name"
[mappings]
"./x" = "/x"
[output]
compression = "zstd"
[resources]
cpu_cores = 1
memory_mb = 64
[workload]
entrypoint = []
`,
    /plugin\.name: must be 1-63 lowercase letters/,
    /mappings: unknown key \(not used by strategy "oci_rootfs": the files come from the image\)/,
    /output\.compression: unknown key \(not used by strategy "oci_rootfs": the rootfs is an erofs image\)/,
    /resources\.memory_mb: must be at least 128/,
    /workload\.entrypoint: must name the program to run/,
    /source: is required/,
  );
  assert.equal((err.details?.issues as unknown[]).length, 6);
  rejects(
    MINIMAL + '[source]\nimage = "busybox"\n',
    /source\.image: unknown key \(only with strategy = "oci_rootfs"\)/,
  );
});
