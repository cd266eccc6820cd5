import assert from "node:assert/strict";
import { VolantError } from "../schema/mod.ts";
import { buildPlugin } from "./build.ts";
import { fabricateElf, snapshot, withTempDir } from "./testing.ts";

const HEAD = `version = "1"
[plugin]
name = "bad"
version = "1"
`;
const WORKLOAD = `[workload]
entrypoint = ["/usr/bin/app"]
base_url = "http://127.0.0.1:8080"
`;

interface Case {
  name: string;
  config: string;
  /** Extra files before the build (relative path → contents, or a setup function). */
  setup?: (dir: string) => Promise<void>;
  /** What the message must say. */
  message: RegExp[];
  /** The field the error names (details.field), when it names one. */
  field?: string;
}

async function app(dir: string, data: Uint8Array | string = "#!/bin/sh\necho app\n") {
  if (typeof data === "string") await Deno.writeTextFile(`${dir}/app`, data);
  else await Deno.writeFile(`${dir}/app`, data);
  await Deno.chmod(`${dir}/app`, 0o755);
}

const APP = '[mappings]\n"./app" = "/usr/bin/app"\n';

const CASES: Case[] = [
  {
    name: "a missing [workload]",
    config: HEAD + APP,
    setup: app,
    message: [/workload: is required/],
  },
  {
    name: "a missing plugin.name",
    config: HEAD.replace('name = "bad"\n', "") + APP + WORKLOAD,
    setup: app,
    message: [/plugin\.name: is required/],
  },
  {
    name: "an unknown key",
    config: HEAD + APP + WORKLOAD + '[output]\ndirectory = "x"\n',
    setup: app,
    message: [/output\.directory: unknown key/],
  },
  {
    name: "a mapping source that does not exist",
    config: HEAD + '[mappings]\n"./x" = "/usr/bin/app"\n' + WORKLOAD,
    message: [/mappings\."\.\/x": source does not exist/],
    field: 'mappings."./x"',
  },
  {
    name: "a relative destination",
    config: HEAD + '[mappings]\n"./app" = "usr/bin/app"\n' + WORKLOAD,
    setup: app,
    message: [/mappings\."\.\/app": must be an absolute guest path/],
  },
  {
    name: "a destination escaping with ..",
    config: HEAD + '[mappings]\n"./app" = "/usr/../../usr/bin/app"\n' + WORKLOAD,
    setup: app,
    message: [/mappings\."\.\/app": must not contain '\.' or '\.\.' segments/],
  },
  {
    name: "a symlink leaving its mapped directory",
    config: HEAD + APP + '"./www" = "/srv/www"\n' + WORKLOAD,
    setup: async (dir) => {
      await app(dir);
      await Deno.mkdir(`${dir}/www/sub`, { recursive: true });
      await Deno.symlink("../../app.toml", `${dir}/www/sub/escape`);
    },
    message: [/mappings\."\.\/www": .*escape is a symlink to \.\.\/\.\.\/app\.toml, which leaves/],
    field: 'mappings."./www"',
  },
  {
    name: "an absolute symlink in a mapped directory",
    config: HEAD + APP + '"./www" = "/srv/www"\n' + WORKLOAD,
    setup: async (dir) => {
      await app(dir);
      await Deno.mkdir(`${dir}/www`);
      await Deno.symlink("/etc/passwd", `${dir}/www/passwd`);
    },
    message: [/symlink to \/etc\/passwd, which leaves the mapped directory/],
  },
  {
    name: "a mapping to /init",
    config: HEAD + '[mappings]\n"./app" = "/init"\n' + WORKLOAD,
    setup: app,
    message: [/mappings\."\.\/app": puts a file at \/init, which belongs to Volant's stage 0/],
  },
  {
    name: "a mapping into /.volant (stage 0's tools)",
    config: HEAD + '[mappings]\n"./app" = "/.volant/bin/sh"\n' + WORKLOAD,
    setup: app,
    message: [
      /mappings\."\.\/app": puts something at \/\.volant\/bin\/sh: \/\.volant and \/volant belong to Volant/,
    ],
  },
  {
    name: "a directory mapped to / that holds init",
    config: HEAD + '[mappings]\n"./root" = "/"\n' + WORKLOAD,
    setup: async (dir) => {
      await Deno.mkdir(`${dir}/root/usr/bin`, { recursive: true });
      await Deno.writeTextFile(`${dir}/root/init`, "#!/bin/sh\n");
    },
    message: [/mappings\."\.\/root": puts a file at \/init/],
  },
  {
    name: "two mappings onto one path",
    config: HEAD + APP + '"./other" = "/usr/bin/app"\n' + WORKLOAD,
    setup: async (dir) => {
      await app(dir);
      await Deno.writeTextFile(`${dir}/other`, "x");
    },
    message: [/puts a file at \/usr\/bin\/app, where mappings\."\.\/(app|other)" puts a file/],
  },
  {
    name: "an unknown strategy",
    config: HEAD.replace('version = "1"\n', 'version = "1"\nstrategy = "docker"\n') + APP +
      WORKLOAD,
    setup: app,
    message: [/strategy: must be one of/],
  },
  {
    name: "an unknown init mode",
    config: HEAD + APP + '[init]\nmode = "systemd"\n' + WORKLOAD,
    setup: app,
    message: [/init\.mode: must be one of "kestrel", "custom", "none"/],
  },
  {
    name: "init.mode custom without path",
    config: HEAD + APP + '[init]\nmode = "custom"\n' + WORKLOAD,
    setup: app,
    message: [/init\.path: init\.mode custom needs init\.path/],
  },
  {
    name: "init.path that is not in the appliance",
    config: HEAD + APP + '[init]\nmode = "custom"\npath = "/sbin/myinit"\n' + WORKLOAD,
    setup: app,
    message: [/init\.path: \/sbin\/myinit is not in the appliance/],
    field: "init.path",
  },
  {
    name: "an entrypoint that is not in the appliance",
    config: HEAD + '[mappings]\n"./app" = "/usr/bin/other"\n' + WORKLOAD,
    setup: app,
    message: [/workload\.entrypoint\[0\]: \/usr\/bin\/app is not in the appliance/],
    field: "workload.entrypoint[0]",
  },
  {
    name: "an entrypoint that is not executable",
    config: HEAD + APP + WORKLOAD,
    setup: async (dir) => {
      await Deno.writeTextFile(`${dir}/app`, "data");
      await Deno.chmod(`${dir}/app`, 0o644);
    },
    message: [/workload\.entrypoint\[0\]: \/usr\/bin\/app .*is not executable \(mode 0644\)/],
  },
  {
    name: "a relative entrypoint with init.mode none",
    config: HEAD + APP + '[init]\nmode = "none"\n' +
      WORKLOAD.replace('["/usr/bin/app"]', '["app"]'),
    setup: app,
    message: [/workload\.entrypoint\[0\]: "app" must be an absolute path when init\.mode = "none"/],
  },
  {
    name: "a user missing from a mapped /etc/passwd",
    config: HEAD + APP + '"./passwd" = "/etc/passwd"\n' +
      WORKLOAD.replace("base_url", 'user = "web"\nbase_url'),
    setup: async (dir) => {
      await app(dir);
      await Deno.writeTextFile(`${dir}/passwd`, "root:x:0:0:root:/root:/bin/sh\n");
    },
    message: [/workload\.user: user "web" is not in \/etc\/passwd/],
  },
  {
    name: "a dynamic binary whose library cannot be found",
    config: HEAD + APP + WORKLOAD,
    setup: (dir) =>
      app(
        dir,
        fabricateElf({
          interpreter: "/lib64/ld-linux-x86-64.so.2",
          needed: ["libc.so.6", "libvolant-missing.so.7"],
        }),
      ),
    message: [
      /\/usr\/bin\/app is dynamically linked and needs libraries that were not found: libvolant-missing\.so\.7 \(searched/,
      /link the program statically/,
    ],
  },
  {
    name: "a binary for another architecture",
    config: HEAD + APP + WORKLOAD,
    setup: (dir) => app(dir, fabricateElf({ machine: 183 })),
    message: [
      /\/usr\/bin\/app is a 64-bit little-endian ELF for machine 183, but the guest runs x86-64/,
    ],
  },
  {
    name: "an output dir that is a file",
    config: HEAD + APP + WORKLOAD + '[output]\ndir = "out"\n',
    setup: async (dir) => {
      await app(dir);
      await Deno.writeTextFile(`${dir}/out`, "not a directory");
    },
    message: [/output\.dir: .*out exists and is not a directory/],
    field: "output.dir",
  },
  {
    name: "an output dir below a file",
    config: HEAD + APP + WORKLOAD + '[output]\ndir = "out/sub"\n',
    setup: async (dir) => {
      await app(dir);
      await Deno.writeTextFile(`${dir}/out`, "not a directory");
    },
    message: [/output\.dir: cannot use .*out\/sub/],
  },
  {
    name: "an output dir nobody can write (even root)",
    config: HEAD + APP + WORKLOAD + '[output]\ndir = "/proc"\n',
    setup: app,
    message: [/output\.dir: cannot write the outputs to \/proc/],
  },
  {
    name: "an output dir that cannot be created",
    config: HEAD + APP + WORKLOAD + '[output]\ndir = "/proc/volant-builder-test/out"\n',
    setup: app,
    message: [/output\.dir: cannot write the outputs to \/proc\/volant-builder-test\/out/],
  },
  {
    name: "an archive path taken by a directory (the rename fails)",
    config: HEAD + APP + WORKLOAD + '[output]\ndir = "out"\n',
    setup: async (dir) => {
      await app(dir);
      await Deno.mkdir(`${dir}/out/bad.cpio.gz/inside`, { recursive: true });
    },
    message: [/output\.dir: cannot write the outputs to/],
  },
  {
    name: "a TOML syntax error",
    config: HEAD + "[mappings\n",
    message: [/invalid TOML at line 5/],
  },
];

for (const c of CASES) {
  Deno.test(`buildPlugin() refuses ${c.name} and leaves no files`, async () => {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/app.toml`, c.config);
      await c.setup?.(dir);
      const before = await snapshot(dir);
      let caught: unknown;
      try {
        await buildPlugin({ config: `${dir}/app.toml` });
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof VolantError, `expected a VolantError, got ${caught}`);
      assert.equal(caught.code, "invalid_argument");
      assert.ok(caught.message.startsWith(`${dir}/app.toml: `), caught.message);
      for (const pattern of c.message) assert.match(caught.message, pattern);
      if (c.field !== undefined) assert.equal(caught.details?.field, c.field);
      assert.deepEqual(await snapshot(dir), before, "the failed build left files behind");
    });
  });
}
