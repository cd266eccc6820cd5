/**
 * The README is true: every command line of its ```sh blocks is accounted for here.
 *
 * - Every `volar …` line (each optional `[--flag …]` with and without it) must parse with
 *   volar's own command tree (cli/program.ts): the command, its subcommands, flags and argument
 *   values exist and are accepted. Nothing runs: a preAction hook stops before the action.
 * - Every line is then either run end to end, as written, by `sh` in a network namespace
 *   against a real volantd booting the real guest (`volar` is a launcher on PATH and finds the
 *   daemon through `VOLANT_SOCKET`, as the README says), or listed in {@linkcode EXCLUDED}
 *   with the reason. What cannot exist here (Docker Hub, ghcr.io, paths on someone's disk, the
 *   key a previous line printed) is replaced through the small {@linkcode SUBSTITUTIONS} table;
 *   what the README leaves to the reader (the program `./hello`, images in a registry, a VM out
 *   of the way) is done in a step's `before`.
 *
 * A README command that is neither run nor excluded fails the test, and so does an entry here
 * that the README no longer has. At most two VMs run at once; eight boots in all.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { buildProgram } from "../cli/program.ts";
import { captureIo } from "../cli/testing.ts";
import { PluginRecord, VmRecord } from "../schema/mod.ts";
import { wgetInNetns } from "../net/testing.ts";
import { type CliResult, type E2eDaemon, startDaemon, terminate } from "./harness.ts";
import { buildTestImage, run, startRegistryInNetns } from "./registry.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const README = `${REPO}/README.md`;
/** The README's local registry; free in the test's own network namespace. */
const REGISTRY = "127.0.0.1:5000";

// ---------------------------------------------------------------------------------------------
// Reading the README

/** `line` without its shell comment (a `#` starting a word, outside quotes). */
export function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"') i++;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === "\\") {
      i++;
    } else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) {
      return line.slice(0, i).trimEnd();
    }
  }
  return line.trimEnd();
}

/** The command lines of the ```sh blocks of `markdown`, comments and blank lines left out. */
export function readmeCommands(markdown: string): string[] {
  const lines: string[] = [];
  for (const block of markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    for (const raw of block[1]!.split("\n")) {
      const line = stripComment(raw).trim();
      if (line !== "") lines.push(line);
    }
  }
  return lines;
}

/**
 * The words of a simple shell command line (quotes and backslashes as `sh` reads them). Shell
 * syntax beyond that (pipes, redirections, expansions) is refused: such a README line needs a
 * runner of its own.
 */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in ${line}`);
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let text = "";
      for (i++; i < line.length && line[i] !== '"'; i++) {
        if (/[$`]/.test(line[i]!)) throw new Error(`expansion in "…" of ${line}`);
        if (line[i] === "\\" && /["\\$`]/.test(line[i + 1] ?? "")) i++;
        text += line[i];
      }
      if (i >= line.length) throw new Error(`unterminated " in ${line}`);
      word = (word ?? "") + text;
    } else if (c === "\\") {
      word = (word ?? "") + (line[++i] ?? "");
    } else if (/[|&;<>()$`*?]/.test(c)) {
      throw new Error(`shell syntax ${JSON.stringify(c)} in ${line}`);
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

/** A line with the README's optional `[--flag …]` groups: without them, and with them. */
export function variants(line: string): string[] {
  const optional = / \[(--[^\]]+)\]/g;
  const without = line.replace(optional, "");
  const withAll = line.replace(optional, " $1");
  return without === withAll ? [line] : [without, withAll];
}

/** Thrown by the preAction hook: commander parsed the line and would run this command now. */
class Parsed extends Error {
  constructor(readonly command: string) {
    super(`parsed: ${command}`);
  }
}

/** Parses volar's arguments with its real command tree, stopping before any action runs. */
async function parseVolar(args: string[]): Promise<string> {
  const program = buildProgram(captureIo());
  program.hook("preAction", (_self, action) => {
    const names: string[] = [];
    for (let c: typeof action | null = action; c; c = c.parent) names.unshift(c.name());
    throw new Parsed(names.join(" "));
  });
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (err) {
    if (err instanceof Parsed) return err.command;
    throw err;
  }
  throw new Error("volar ran no command");
}

// ---------------------------------------------------------------------------------------------
// What cannot run here, and what is replaced

/** README lines not run here, each with the reason (and a static check where one helps). */
const EXCLUDED: Record<string, { why: string; check?: () => Promise<void> }> = {
  "sudo ./volant up": {
    why: "installs Debian packages and Deno, builds the guest into /var/lib/volant and starts a " +
      "system-wide volantd; the tests build the same guest (VOLANT_TEST_GUEST_DIR) instead",
    check: () => launcherHas("up"),
  },
  "sudo ./volant test": {
    why: "the test suite itself (this test is part of it)",
    check: () => launcherHas("test"),
  },
  "./volant test schema/ daemon/": {
    why: "the test suite itself, on some files",
    check: () => launcherHas("test"),
  },
  "./volant bench": {
    why: "the benchmarks: minutes of VM boots, a tool of their own (bench/)",
    check: () => launcherHas("bench"),
  },
  ".toolchain/node_modules/.bin/deno task check": {
    why: "type-check, fmt --check and lint of the whole tree: a development command, not behaviour",
    check: async () => {
      const tasks = JSON.parse(await Deno.readTextFile(`${REPO}/deno.json`)).tasks ?? {};
      ok("check" in tasks, "deno.json has no task check");
    },
  },
};

/** Whether the `./volant` launcher dispatches `command`. */
async function launcherHas(command: string): Promise<void> {
  const text = await Deno.readTextFile(`${REPO}/volant`);
  match(text, new RegExp(`^\\s*${command}\\)`, "m"), `./volant has no ${command} command`);
}

/** The state the steps share. */
interface Ctx {
  daemon: E2eDaemon;
  /** The README's working directory: `app.toml`, `key.json`, … live here. */
  work: string;
  /** The environment the lines run with (PATH with the volar launcher, VOLANT_SOCKET, …). */
  env: Record<string, string>;
  /** Values a line printed that a later line uses. */
  vars: Map<string, string>;
}

/** Placeholders of the README that cannot exist here, replaced in every line, with the reason. */
const SUBSTITUTIONS: { readme: string; here: (ctx: Ctx) => string; why: string }[] = [
  {
    readme: "/run/volant/volantd.sock",
    here: (ctx) => ctx.daemon.socket,
    why: "the test's own volantd (volar reaches it through VOLANT_SOCKET)",
  },
  {
    readme: "ghcr.io/acme/app:2",
    here: () => `${REGISTRY}/acme/app:2`,
    why: "no internet: the test image, pushed to the local registry under that name",
  },
  {
    readme: "busybox:1.36",
    here: () => `${REGISTRY}/library/busybox:1.36`,
    why: "no internet (Docker Hub): a busybox image built here, in the local registry",
  },
  {
    readme: "/srv/layouts/app",
    here: (ctx) => `${ctx.work}/layouts/app`,
    why: "an OCI layout written here (umoci, skopeo)",
  },
  {
    readme: "/tmp/app.tar",
    here: (ctx) => `${ctx.work}/app.tar`,
    why: "an archive in docker save's format, written here by skopeo",
  },
  {
    readme: "volant_…",
    here: (ctx) => ctx.vars.get("token")!,
    why: "the token `volar tokens create` printed",
  },
  {
    readme: "ed25519:…",
    here: (ctx) => ctx.vars.get("public_key")!,
    why: "the public key `volar keys generate` printed",
  },
];

function substitute(line: string, ctx: Ctx): string {
  let out = line;
  for (const s of SUBSTITUTIONS) out = out.split(s.readme).join(s.here(ctx));
  // Optional `[--flag …]` groups run with the flag.
  return variants(out).at(-1)!;
}

// ---------------------------------------------------------------------------------------------
// The steps

/** How one README line runs. */
interface Step {
  /** The README's command line, comment stripped. */
  line: string;
  /** What the README leaves to the reader, done first. */
  before?: (ctx: Ctx) => Promise<void>;
  /** Input typed into the command; stdin is closed after it. */
  stdin?: string;
  /** A command that runs until interrupted: stopped once its output matches `until`. */
  follow?: { until: RegExp; trigger?: (ctx: Ctx) => Promise<void> };
  /** A full-screen command: run on a terminal (script(1)), `keys` typed once `until` shows. */
  terminal?: { until: RegExp; keys: string };
  /** Its exit code (default 0). */
  code?: number;
  /** Each must match its stdout + stderr. */
  expect?: RegExp[];
  /** More checks. */
  check?: (out: CliResult, ctx: Ctx) => void | Promise<void>;
}

async function volarOk(ctx: Ctx, ...args: string[]): Promise<string> {
  const r = await ctx.daemon.volar(...args);
  equal(r.code, 0, `volar ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function vm(ctx: Ctx, name: string): Promise<VmRecord> {
  return VmRecord.parse(JSON.parse(await volarOk(ctx, "vms", "get", name, "--json")));
}

async function deleteVms(ctx: Ctx, ...names: string[]): Promise<void> {
  for (const name of names) await volarOk(ctx, "vms", "delete", name);
}

/** The busybox stand-in for Docker Hub's busybox:1.36: busybox, its applets sh and httpd. */
async function pushBusybox(ctx: Ctx, dir: string): Promise<void> {
  const tree = `${dir}/tree`;
  await Deno.mkdir(`${tree}/bin`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${tree}/bin/busybox`);
  await Deno.chmod(`${tree}/bin/busybox`, 0o755);
  for (const applet of ["sh", "httpd"]) await Deno.symlink("busybox", `${tree}/bin/${applet}`);
  await Deno.writeTextFile(`${tree}/index.html`, "hello from busybox\n");
  const image = `${dir}/layout:1.36`;
  await run("umoci", "init", "--layout", `${dir}/layout`);
  await run("umoci", "new", "--image", image);
  await run("umoci", "insert", "--image", image, tree, "/");
  await run("umoci", "config", "--image", image, "--config.cmd", "sh");
  await push(ctx, `oci:${image}`, `${REGISTRY}/library/busybox:1.36`);
}

async function push(ctx: Ctx, from: string, ref: string): Promise<void> {
  await run(
    "ip",
    ...["netns", "exec", ctx.daemon.ns, "skopeo", "copy", "--quiet", "--dest-tls-verify=false"],
    from,
    `docker://${ref}`,
  );
}

/** Cleanups the steps register (the registry to stop). */
const cleanups: (() => Promise<void>)[] = [];

const STEPS: Step[] = [
  // ## Using it
  {
    line: "volar vms list",
    expect: [/^No VMs yet|^NAME/m],
  },
  {
    line: "volar vms create web --cpu 1 --memory 256",
    check: async (_out, ctx) => {
      const web = await vm(ctx, "web");
      deepEqual([web.state, web.cpu_cores, web.memory_mb, web.ip], [
        "running",
        1,
        256,
        "192.168.127.2",
      ]);
    },
  },
  {
    line: "volar vms create api --ip 192.168.127.50 --publish 8080:80",
    check: async (_out, ctx) => {
      const api = await vm(ctx, "api");
      equal(api.ip, "192.168.127.50");
      deepEqual(api.ports.map((p) => [p.host_port, p.guest_port]), [[8080, 80]]);
    },
  },
  {
    line: "volar vms get web",
    expect: [/^ip: +192\.168\.127\.2$/m, /^mac: +02:/m, /^tap: +vt-web$/m, /^ports: /m],
  },
  {
    line: "curl --unix-socket /run/volant/volantd.sock http://volant/api/v1/vms/web/agent/healthz",
    check: (out) => {
      const health = JSON.parse(out.stdout);
      deepEqual([health.status, health.name, health.ip], ["ok", "web", "192.168.127.2"]);
    },
  },
  {
    line: "curl -si http://192.168.127.2:12751/healthz",
    expect: [
      /^HTTP\/1\.1 401 /,
      /^www-authenticate: Bearer realm="kestrel"/im,
      /"unauthenticated"/,
    ],
  },
  {
    line: "volar vms stop web",
    check: async (_out, ctx) => equal((await vm(ctx, "web")).state, "stopped"),
  },
  {
    line: "volar vms start web",
    check: async (_out, ctx) => equal((await vm(ctx, "web")).ip, "192.168.127.2", "same address"),
  },
  {
    line: "volar vms restart web",
    check: async (_out, ctx) => equal((await vm(ctx, "web")).state, "running"),
  },
  {
    line: "volar vms list",
    expect: [
      /^NAME +STATE +IP +CPU +MEM\(MiB\) +HYPERVISOR +KVM +PID +BOOT +AGE$/m,
      /^web +running/m,
    ],
  },
  // The REST lines while web still runs.
  {
    line: "curl --unix-socket /run/volant/volantd.sock http://volant/api/v1/vms",
    check: (out) => {
      const names = JSON.parse(out.stdout).vms.map((v: { name: string }) => v.name);
      deepEqual(names.sort(), ["api", "web"]);
    },
  },
  {
    line:
      "curl --unix-socket /run/volant/volantd.sock http://volant/api/v1/vms/web/wait?state=running",
    check: (out) => equal(VmRecord.parse(JSON.parse(out.stdout)).state, "running"),
  },
  {
    line: "curl --unix-socket /run/volant/volantd.sock http://volant/openapi.json",
    check: (out) => match(JSON.parse(out.stdout).openapi, /^3\./),
  },
  {
    line: "volar events [--vm web]",
    follow: {
      until: /web {2}stopping → stopped/,
      trigger: async (ctx) => void await volarOk(ctx, "vms", "stop", "web"),
    },
  },
  {
    line: "volar vms delete web",
    check: async (_out, ctx) => equal((await ctx.daemon.volar("vms", "get", "web")).code, 1),
  },
  {
    line: "volar dashboard",
    terminal: { until: /volantd \d[\s\S]*api/, keys: "q" },
  },
  {
    line: "volar doctor",
    expect: [/qemu/i, /kvm/i],
  },
  {
    line: "volar setup --dry-run",
    expect: [/would |nothing to change/],
  },
  {
    line: "volar version",
    expect: [/\d+\.\d+/],
  },
  // ### Who may call volantd (the test's volantd also listens on 127.0.0.1:7777 in its namespace)
  {
    line: "volar tokens create ci [--scope admin]",
    check: (out, ctx) => {
      const token = out.stdout.trim();
      match(token, /^volant_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
      match(out.stderr, /scope admin\) created: it is shown this once/);
      ctx.vars.set("token", token);
    },
  },
  {
    line: "volar tokens list",
    expect: [/^NAME +ID +SCOPE +CREATED +LAST USED$/m, /^ci +[0-9a-f]{12} +admin /m],
  },
  {
    line: "volar vms list --api http://127.0.0.1:7777 --token volant_…",
    expect: [/^No VMs yet|^NAME/m],
  },
  {
    line: "volar tokens revoke ci",
    expect: [/^revoked token ci \([0-9a-f]{12}\)$/m],
    check: async (_out, ctx) => {
      const args = ["vms", "list", "--api", "http://127.0.0.1:7777"];
      const revoked = await new Deno.Command("ip", {
        args: ["netns", "exec", ctx.daemon.ns, `${ctx.work}/bin/volar`, ...args],
        env: { ...ctx.env, VOLANT_TOKEN: ctx.vars.get("token")! },
        stdout: "piped",
        stderr: "piped",
      }).output();
      equal(revoked.code, 1, "the revoked token is refused");
      match(new TextDecoder().decode(revoked.stderr), /was revoked/);
    },
  },

  // ## Plugins and appliances
  {
    line: "volar build --init",
    before: async (ctx) => {
      await deleteVms(ctx, "api");
      // The README's program: a static binary ./hello (the starter maps it to /usr/bin/hello).
      await run(
        "musl-gcc",
        ...["-static", "-O2", "-o", `${ctx.work}/hello`, `${REPO}/e2e/readme_hello.c`],
      );
    },
    expect: [/Wrote app\.toml/],
    check: async (_out, ctx) => void await Deno.stat(`${ctx.work}/app.toml`),
  },
  {
    line: "volar build -c app.toml",
    before: async (ctx) => {
      // The reader's one edit: the starter's commented action, for `volar vms call web reload`.
      const path = `${ctx.work}/app.toml`;
      const starter = await Deno.readTextFile(path);
      const action = '# [actions.reload]\n# method = "POST"\n# path = "/reload"\n';
      ok(starter.includes(action), "the starter app.toml shows the reload action");
      await Deno.writeTextFile(path, starter.replace(action, action.replaceAll("# ", "")));
    },
    check: async (_out, ctx) => {
      for (const f of ["hello.cpio.gz", "hello.manifest.json"]) await Deno.stat(`${ctx.work}/${f}`);
    },
  },
  {
    line: "volar keys generate -o key.json",
    check: (out, ctx) => {
      const key = /^public key: +(ed25519:\S+)$/m.exec(out.stdout);
      ok(key, out.stdout);
      match(out.stdout, /^key id: +[0-9a-f]{16}$/m);
      ctx.vars.set("public_key", key[1]!);
    },
  },
  { line: "volar keys trust ed25519:…" },
  { line: "volar plugins sign hello.manifest.json --key key.json" },
  {
    line: "volar plugins install --manifest hello.manifest.json",
    check: async (_out, ctx) => {
      const record = PluginRecord.parse(
        JSON.parse(await volarOk(ctx, "plugins", "show", "hello", "--json")),
      );
      equal(record.signature.status, "verified");
    },
  },
  {
    line: "volar vms create web --plugin hello",
    check: async (_out, ctx) => {
      const web = await vm(ctx, "web");
      equal(web.state, "running");
      equal(web.workload?.healthy, true, JSON.stringify(web.workload));
    },
  },
  {
    line: `volar vms call web reload --body '{"x":1}'`,
    expect: [/reloaded with \{"x":1\}/],
  },
  {
    line: "volar vms logs web -f",
    follow: { until: /hello: POST \/reload/ },
  },
  {
    line: "volar vms console web",
    stdin: "\necho console-$((6*7))-$(hostname)\n",
    expect: [/console-42-web/],
  },
  {
    line:
      "curl --unix-socket /run/volant/volantd.sock http://volant/api/v1/vms/web/agent/v1/status",
    expect: [/^hello: ok$/m],
  },

  // ## OCI images
  {
    line:
      "volar vms create web --image 127.0.0.1:5000/demo/nginx:1.0 --insecure-registry --publish 8080:80",
    before: async (ctx) => {
      await deleteVms(ctx, "web");
      const images = `${ctx.work}/images`;
      const registry = await startRegistryInNetns(ctx.daemon.ns, `${images}/registry`, 5000);
      cleanups.push(() => registry.stop());
      const layout = await buildTestImage(images);
      await push(ctx, `oci:${layout}:1.0`, `${REGISTRY}/demo/nginx:1.0`);
      await push(ctx, `oci:${layout}:1.0`, `${REGISTRY}/acme/app:2`);
      await pushBusybox(ctx, `${images}/busybox`);
      await Deno.mkdir(`${ctx.work}/layouts`);
      await run(
        "skopeo",
        "copy",
        "--quiet",
        `oci:${layout}:1.0`,
        `oci:${ctx.work}/layouts/app:1.0`,
      );
      await run(
        "skopeo",
        "copy",
        "--quiet",
        `oci:${layout}:1.0`,
        `docker-archive:${ctx.work}/app.tar`,
      );
    },
    check: async (_out, ctx) => {
      const web = await vm(ctx, "web");
      equal(web.image, `${REGISTRY}/demo/nginx:1.0`);
      equal(
        await wgetInNetns(ctx.daemon.ns, `http://${web.ip}/index.html`),
        "hello from an OCI image\n",
      );
      equal(
        await wgetInNetns(ctx.daemon.ns, "http://192.168.127.1:8080/index.html"),
        "hello from an OCI image\n",
        "the host's port 8080 is published to the guest's port 80",
      );
    },
  },
  {
    line: "volar vms create api --image busybox:1.36 --cmd 'httpd -f -p 80' --env MODE=prod",
    check: async (_out, ctx) => {
      const api = await vm(ctx, "api");
      equal(api.state, "running");
      equal(await wgetInNetns(ctx.daemon.ns, `http://${api.ip}/`), "hello from busybox\n");
    },
  },
  {
    line: "volar images list",
    expect: [
      /^REF +DIGEST +ROOTFS +LAYERS +USED BY$/m,
      /^127\.0\.0\.1:5000\/demo\/nginx:1\.0 .* web$/m,
      /^127\.0\.0\.1:5000\/library\/busybox:1\.36 .* api$/m,
    ],
  },
  {
    line: "volar images pull ghcr.io/acme/app:2",
    expect: [/^ref: +127\.0\.0\.1:5000\/acme\/app:2$/m],
  },
  {
    line: "volar images rm 127.0.0.1:5000/demo/nginx:1.0",
    code: 1,
    expect: [/used by VM web/],
  },
  {
    line: "volar images pull oci:/srv/layouts/app:1.0",
    expect: [/^digest: +sha256:/m],
  },
  {
    line: "volar vms create job --image docker-archive:/tmp/app.tar",
    before: (ctx) => deleteVms(ctx, "web", "api"),
    check: async (_out, ctx) => {
      const job = await vm(ctx, "job");
      equal(job.state, "running");
      equal(job.image, `docker-archive:${ctx.work}/app.tar`);
      equal(job.workload?.healthy, true, JSON.stringify(job.workload));
    },
  },
  {
    line: "volar registry login ghcr.io --username ci --password-stdin",
    stdin: "s3cret-of-the-readme\n",
    expect: [/^stored credentials for ghcr\.io \(user ci\)$/m],
  },
  {
    line: "volar registry list",
    expect: [/^HOST +USERNAME +UPDATED$/m, /^ghcr\.io +ci +\S+$/m],
    check: (out) => ok(!`${out.stdout}${out.stderr}`.includes("s3cret"), "no password shown"),
  },
  {
    line: "volar registry logout ghcr.io",
    expect: [/^removed the credentials for ghcr\.io$/m],
  },

  // ### Network policy (job still runs: db's peer)
  {
    line: "volar vms create db --allow-from job --egress deny --allow-egress 10.1.0.0/16:5432",
    check: async (_out, ctx) => {
      const db = await vm(ctx, "db");
      equal(db.state, "running");
      deepEqual(db.network_policy, {
        egress: "deny",
        allow_egress: [{ cidr: "10.1.0.0/16", protocol: "tcp", port: 5432 }],
        allow_from: ["job"],
        allow_host_ports: [],
      });
      const rules = await run("ip", "netns", "exec", ctx.daemon.ns, "nft", "list", "ruleset");
      match(rules, /"vt-db" : jump ep_/, "db's tap has its rules");
    },
  },
  {
    line: "volar vms get db",
    expect: [
      /^egress: +deny, \+ 10\.1\.0\.0\/16:5432\/tcp$/m,
      /^allow from: +job$/m,
      /^host ports: +-$/m,
    ],
  },
  {
    line: "volar vms policy db --allow-from job --allow-host-port 53/udp",
    expect: [/^egress: +allow-internet$/m, /^allow from: +job$/m, /^host ports: +53\/udp$/m],
  },
  {
    line: "volar vms policy db",
    expect: [/^host ports: +53\/udp$/m],
  },
];

// ---------------------------------------------------------------------------------------------
// Running a line

async function collect(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) sink.text += chunk;
}

async function until(what: string, done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs `command` with `sh` in the daemon's network namespace, in the README's directory. */
async function runLine(ctx: Ctx, step: Step, command: string): Promise<CliResult> {
  const prefix = ["netns", "exec", ctx.daemon.ns];
  const args = step.terminal
    ? [...prefix, "script", "-qec", `exec ${command}`, "/dev/null"]
    : [...prefix, "sh", "-c", step.follow ? `exec ${command}` : command];
  const child = new Deno.Command("ip", {
    args,
    cwd: ctx.work,
    env: ctx.env,
    stdin: step.stdin !== undefined || step.terminal ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = { text: "" };
  const err = { text: "" };
  const reading = Promise.all([collect(child.stdout, out), collect(child.stderr, err)]);
  const seen = () => `${out.text}${err.text}`;
  let code: number;
  if (step.follow) {
    try {
      if (step.follow.trigger) {
        // Give the follower time to connect first (volar starts in about a second).
        await new Promise((r) => setTimeout(r, 2500));
        await step.follow.trigger(ctx);
      }
      await until(`${step.follow.until} in the output of ${command}`, () => {
        return step.follow!.until.test(seen());
      }, 90_000);
    } finally {
      await terminate(child, 5_000);
    }
    code = 0;
  } else if (step.terminal) {
    const writer = child.stdin.getWriter();
    try {
      await until(`${step.terminal.until} on the screen of ${command}`, () => {
        return step.terminal!.until.test(seen());
      }, 30_000);
      await writer.write(new TextEncoder().encode(step.terminal.keys));
      const exited = await Promise.race([
        child.status,
        new Promise<null>((r) => setTimeout(() => r(null), 15_000)),
      ]);
      if (exited === null) {
        await terminate(child, 2_000);
        throw new Error(`${command} did not quit on ${JSON.stringify(step.terminal.keys)}`);
      }
      code = exited.code;
    } finally {
      await writer.close().catch(() => {});
    }
  } else {
    if (step.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(step.stdin));
      await writer.close();
    }
    code = (await child.status).code;
  }
  await reading;
  return { code, stdout: out.text, stderr: err.text };
}

// ---------------------------------------------------------------------------------------------
// The tests

const commands = readmeCommands(await Deno.readTextFile(README));

Deno.test("every README command line is run here or excluded with a reason, and nothing else is", () => {
  const run = new Set(STEPS.map((s) => s.line));
  const excluded = new Set(Object.keys(EXCLUDED));
  const missing = commands.filter((c) => !run.has(c) && !excluded.has(c));
  deepEqual(missing, [], "README commands neither run nor excluded (add a step or an exclusion)");
  const stale = [...run, ...excluded].filter((c) => !commands.includes(c));
  deepEqual(stale, [], "steps or exclusions for lines the README no longer has");
  deepEqual([...run].filter((c) => excluded.has(c)), [], "both run and excluded");
  const unused = SUBSTITUTIONS.filter((s) => !commands.some((c) => c.includes(s.readme)));
  deepEqual(unused.map((s) => s.readme), [], "substitutions for text the README no longer has");
});

Deno.test("every volar line of the README parses with volar's own command tree", async () => {
  const volarLines = commands.filter((c) => c.startsWith("volar "));
  ok(volarLines.length >= 30, `only ${volarLines.length} volar lines found`);
  for (const line of volarLines) {
    for (const variant of variants(line)) {
      const args = shellWords(variant).slice(1);
      let command: string;
      try {
        command = await parseVolar(args);
      } catch (err) {
        throw new Error(`README: ${variant}\nvolar refuses it: ${(err as Error).message}`);
      }
      // The words name the command itself (not an alias, not a parent with arguments).
      const path = command.split(" ").slice(1);
      deepEqual(args.slice(0, path.length), path, `${variant} parsed as ${command}`);
    }
  }
});

Deno.test("the excluded README lines still name what exists", async () => {
  for (const { check } of Object.values(EXCLUDED)) await check?.();
});

Deno.test("the README's commands run against a real volantd and guest", async () => {
  const started = performance.now();
  const daemon = await startDaemon({
    config: [
      "images:",
      `  insecure_registries: ["${REGISTRY}"]`,
      // Loopback of the test's own namespace: the README's TCP line.
      "api:",
      "  tcp: 127.0.0.1:7777",
    ],
  });
  const work = `${daemon.dir}/readme`;
  await Deno.mkdir(`${work}/bin`, { recursive: true });
  // `volar` as the README's user has it: a launcher on PATH.
  await Deno.writeTextFile(
    `${work}/bin/volar`,
    `#!/bin/sh\nexec '${Deno.execPath()}' run -A --quiet --config '${REPO}/deno.json' ` +
      `'${REPO}/main.ts' volar "$@"\n`,
  );
  await Deno.chmod(`${work}/bin/volar`, 0o755);
  const ctx: Ctx = {
    daemon,
    work,
    env: {
      PATH: `${work}/bin:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
      HOME: work,
      NO_COLOR: "1",
      VOLANT_SOCKET: daemon.socket,
      VOLANT_CONFIG: daemon.config,
    },
    vars: new Map(),
  };
  const timings: string[] = [];
  try {
    for (const step of STEPS) {
      const t0 = performance.now();
      await step.before?.(ctx);
      const command = substitute(step.line, ctx);
      const out = await runLine(ctx, step, command);
      const context = `README: ${step.line}\nran: ${command}\nexit ${out.code}\n` +
        `stdout: ${out.stdout}\nstderr: ${out.stderr}`;
      equal(out.code, step.code ?? 0, context);
      for (const re of step.expect ?? []) match(`${out.stdout}${out.stderr}`, re, context);
      try {
        await step.check?.(out, ctx);
      } catch (err) {
        throw new Error(`${context}\n${(err as Error).message}`);
      }
      timings.push(`${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s  ${step.line}`);
    }
  } finally {
    for (const cleanup of cleanups.splice(0)) await cleanup().catch(() => {});
    await daemon.dispose();
    console.log(
      `README steps (${((performance.now() - started) / 1000).toFixed(0)} s in all):\n` +
        timings.join("\n"),
    );
  }
});
