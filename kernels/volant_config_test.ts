import { deepEqual, equal, match, notEqual, ok, throws } from "node:assert/strict";
import {
  assertVolantConfig,
  configProblems,
  parseKconfig,
  REQUIRED_OPTIONS,
  VOLANT_CONFIG_FRAGMENT,
} from "./volant_config.ts";
import { resolveVolantConfig, VOLANT_KERNEL_SOURCE, volantKernelKey } from "./volant_kernel.ts";
import { KERNEL_CACHE } from "./testing.ts";

const FRAGMENT = await Deno.readTextFile(VOLANT_CONFIG_FRAGMENT);

function sourceMissing(): string | undefined {
  try {
    Deno.statSync(VOLANT_KERNEL_SOURCE);
    return undefined;
  } catch {
    return `${VOLANT_KERNEL_SOURCE} is absent (apt-get install linux-source-6.1)`;
  }
}
const NO_SOURCE = sourceMissing();
const skipped = NO_SOURCE === undefined ? "" : ` (skipped: ${NO_SOURCE})`;

/** A config holding exactly the required values (what a resolved config must at least have). */
function minimalConfig(): string {
  return REQUIRED_OPTIONS.map((o) =>
    o.value === "n" ? `# ${o.name} is not set` : `${o.name}=${o.value}`
  ).join("\n") + "\n";
}

Deno.test("parseKconfig() reads values, `is not set` lines as n, and ignores comments", () => {
  const c = parseKconfig(
    '# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="-volant"\nCONFIG_D=64\n\n',
  );
  deepEqual([...c], [["CONFIG_A", "y"], ["CONFIG_B", "n"], ["CONFIG_C", '"-volant"'], [
    "CONFIG_D",
    "64",
  ]]);
});

Deno.test("the fragment builds everything in: no =m, no module support, every line a setting", () => {
  for (const line of FRAGMENT.split("\n")) {
    if (line === "" || line.startsWith("# ---")) continue;
    ok(
      /^CONFIG_[A-Z0-9_]+=/.test(line) || /^# CONFIG_[A-Z0-9_]+ is not set$/.test(line) ||
        line.startsWith("# "),
      line,
    );
    ok(!line.endsWith("=m"), line);
  }
  equal(parseKconfig(FRAGMENT).get("CONFIG_MODULES"), "n");
});

Deno.test("every required option has a reason, and the fragment asks for each one", () => {
  const fragment = parseKconfig(FRAGMENT);
  const names = new Set<string>();
  for (const option of REQUIRED_OPTIONS) {
    ok(!names.has(option.name), `${option.name} is listed twice`);
    names.add(option.name);
    ok(option.why.length > 10, option.name);
    equal(fragment.get(option.name), option.value, `${option.name} is not in the fragment`);
  }
});

Deno.test("a config without CONFIG_VIRTIO_BLK is refused, naming it and why", () => {
  const config = minimalConfig().replace("CONFIG_VIRTIO_BLK=y\n", "");
  throws(
    () => assertVolantConfig(config, ""),
    /lacks 1 option\(s\).*CONFIG_VIRTIO_BLK=n \(want y: the runtime disk/,
  );
  // Built as a module is not built in.
  throws(
    () => assertVolantConfig(config + "CONFIG_VIRTIO_BLK=m\n", ""),
    /CONFIG_VIRTIO_BLK=m \(want y/,
  );
  assertVolantConfig(minimalConfig(), "");
});

Deno.test("a fragment value Kconfig dropped is named too", () => {
  const problems = configProblems(minimalConfig(), "CONFIG_EROFS_FS_ZIP=y\nCONFIG_64BIT=y\n");
  deepEqual(problems.map((p) => [p.name, p.got, p.why]), [
    ["CONFIG_EROFS_FS_ZIP", "n", "asked for by the fragment"],
  ]);
});

Deno.test("the cache key changes with the fragment, the source and the toolchain", async () => {
  const base = { fragmentSha256: "sha256:f", sourceSha256: "sha256:s", toolchain: ["gcc 12"] };
  const key = await volantKernelKey(base);
  equal(await volantKernelKey({ ...base }), key);
  notEqual(await volantKernelKey({ ...base, fragmentSha256: "sha256:g" }), key);
  notEqual(await volantKernelKey({ ...base, sourceSha256: "sha256:t" }), key);
  notEqual(await volantKernelKey({ ...base, toolchain: ["gcc 13"] }), key);
});

Deno.test({
  name: "tinyconfig + the fragment resolves to a config with every required option" + skipped,
  ignore: NO_SOURCE !== undefined,
  fn: async () => {
    const config = await resolveVolantConfig({ cacheDir: KERNEL_CACHE });
    assertVolantConfig(config, FRAGMENT);
    const values = parseKconfig(config);
    deepEqual([...values].filter(([, v]) => v === "m"), [], "nothing is a module");
    equal(values.get("CONFIG_X86_64"), "y");
    equal(values.get("CONFIG_KERNEL_LZ4"), "y");
  },
});

Deno.test({
  name: "a fragment without CONFIG_VIRTIO_BLK resolves to a config that is refused, naming it" +
    skipped,
  ignore: NO_SOURCE !== undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "volant-kconfig-test-" });
    try {
      const fragment = FRAGMENT.replace("CONFIG_VIRTIO_BLK=y\n", "");
      await Deno.writeTextFile(`${dir}/f.config`, fragment);
      const config = await resolveVolantConfig({
        cacheDir: KERNEL_CACHE,
        fragment: `${dir}/f.config`,
      });
      const problems = configProblems(config, fragment);
      deepEqual(problems.map((p) => p.name), ["CONFIG_VIRTIO_BLK"]);
      throws(() => assertVolantConfig(config, fragment), (err: Error) => {
        match(err.message, /CONFIG_VIRTIO_BLK=n \(want y: the runtime disk/);
        match(err.message, /volant-microvm\.config/);
        return true;
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
