import { equal, match, ok } from "node:assert/strict";
import { ErrorBody, Health, VmList } from "../schema/mod.ts";
import { startDaemon, volar } from "./testing.ts";
import { VOLAR_VERSION } from "./commands/version.ts";

// A socket path that does not exist: a usage error must be reported before any request,
// so these runs never get as far as "cannot reach volantd".
const NO_DAEMON = ["--socket", "/nonexistent/volar-test/volantd.sock"];

Deno.test("main() reports usage errors with exit 2, naming the argument and what was expected", async () => {
  const cases: [string[], RegExp][] = [
    [["vms", "bogus"], /^volar: vms: unknown command 'bogus'$/m],
    [["bogus"], /^volar: unknown command 'bogus'$/m],
    [["vms", "list", "--bogus"], /^volar: vms list: unknown option '--bogus'$/m],
    [["vms", "get"], /^volar: vms get: missing required argument 'name': expected the VM's name/m],
    [["vms", "stop"], /missing required argument 'name'/],
    [["vms", "get", "Web!"], /argument 'name'.*lowercase letters/],
    [["vms", "create", "web", "--cpu", "abc"], /option '--cpu <count>' argument 'abc'/],
    [["vms", "create", "web", "--cpu", "1.5"], /'--cpu <count>' argument '1\.5'.*whole number/],
    [["vms", "create", "web", "--memory", "64"], /invalid --memory 64: .*128/],
    [["vms", "start", "web", "--timeout", "-1s"], /'--timeout <duration>' argument '-1s'/],
    [["vms", "list", "extra"], /vms list: too many arguments/],
    [["--api", "localhost:7777", "vms", "list"], /--api: expected an http:\/\/ URL/],
    [["--api", "http://127.0.0.1:1", ...NO_DAEMON, "vms", "list"], /--socket and --api both/],
  ];
  for (const [args, message] of cases) {
    const r = await volar(args[0] === "--api" ? args : [...NO_DAEMON, ...args]);
    equal(r.code, 2, `volar ${args.join(" ")}: ${r.stderr}`);
    equal(r.stdout, "");
    match(r.stderr, message);
    ok(!r.stderr.includes("Cannot reach volantd"), "no request was sent");
  }
  const usage = await volar([...NO_DAEMON, "vms", "create"]);
  match(usage.stderr, /^usage: volar vms create \[options\] <name>$/m);
  match(usage.stderr, /^\(see 'volar vms create --help'\)$/m);
});

Deno.test("main() with --json prints usage errors as an ErrorBody on stderr", async () => {
  const r = await volar([...NO_DAEMON, "vms", "create", "web", "--memory", "64", "--json"]);
  equal(r.code, 2);
  equal(r.stdout, "");
  const body = ErrorBody.parse(JSON.parse(r.stderr));
  equal(body.code, "invalid_argument");
  match(body.message, /--memory/);
});

Deno.test("main() shows help: exit 0 for --help, 2 when a command is missing", async () => {
  const help = await volar(["--help"]);
  equal(help.code, 0);
  match(help.stdout, /^Usage: volar \[--socket <path> \| --api <url>\] \[--json\] <command>/);
  match(help.stdout, /vms +manage microVMs/);
  const sub = await volar(["vms", "create", "--help"]);
  equal(sub.code, 0);
  match(sub.stdout, /--no-wait/);
  match(sub.stdout, /--timeout <duration>/);
  const none = await volar([]);
  equal(none.code, 2);
  equal(none.stdout, "");
  match(none.stderr, /^Usage: volar/);
  const group = await volar(["vms"]);
  equal(group.code, 2);
  match(group.stderr, /delete\|rm <name>/);
});

Deno.test("main() names the socket and the fix when volantd is not running", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volar-main-" });
  try {
    const missing = `${dir}/missing.sock`;
    const r = await volar(["--socket", missing, "vms", "list"]);
    equal(r.code, 1);
    equal(r.stdout, "");
    match(r.stderr, new RegExp(`^volar: Cannot reach volantd at unix socket ${missing}: `));
    match(r.stderr, /the socket does not exist/);
    match(r.stderr, /sudo \.\/volant up/);
    match(r.stderr, /systemctl start volantd/);

    // A socket file nobody listens on: its owner was killed with SIGKILL and left it behind.
    const stale = `${dir}/stale.sock`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `Deno.listen({ transport: "unix", path: "${stale}" }); console.log("up");` +
        " setInterval(() => {}, 1e9);",
      ],
      stdout: "piped",
    }).spawn();
    const reader = child.stdout.getReader();
    await reader.read();
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel();
    ok((await Deno.lstat(stale)).isSocket, "the dead listener left its socket file");
    const refused = await volar(["--json", "--socket", stale, "vms", "get", "web"]);
    equal(refused.code, 1);
    const body = ErrorBody.parse(JSON.parse(refused.stderr));
    equal(body.code, "daemon_unreachable");
    match(body.message, new RegExp(`${stale}: connection refused; is volantd running\\?`));

    const envSocket = await volar(["vms", "list"], { env: { VOLANT_SOCKET: missing } });
    equal(envSocket.code, 1);
    match(envSocket.stderr, new RegExp(missing));

    const version = await volar(["--socket", missing, "version"]);
    equal(version.code, 0, "version works without a daemon");
    equal(version.stdout, `volar    ${VOLAR_VERSION}\nvolantd  not reachable\n`);
    match(version.stderr, /Cannot reach volantd/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("volar version shows the daemon's version from /healthz", async () => {
  const daemon = await startDaemon();
  try {
    const r = await volar(["--socket", daemon.socket, "version"]);
    equal(r.code, 0, r.stderr);
    match(r.stdout, new RegExp(`^volar +${VOLAR_VERSION}\nvolantd +\\d+\\.\\d+\\.\\d+ \\(qemu`));
    const json = await volar(["--socket", daemon.socket, "version", "--json"]);
    const info = JSON.parse(json.stdout) as { volar: string; volantd: unknown };
    equal(info.volar, VOLAR_VERSION);
    equal(Health.parse(info.volantd).status, "ok");
  } finally {
    await daemon.stop();
  }
});

Deno.test("the entry point runs volar as a subprocess: deno run -A main.ts volar … vms list --json", async () => {
  const daemon = await startDaemon();
  try {
    equal((await volar(["--socket", daemon.socket, "vms", "create", "sub", "--no-wait"])).code, 0);
    const root = new URL("..", import.meta.url).pathname;
    const run = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts", "volar", ...args],
        cwd: root,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const out = await run(["--socket", daemon.socket, "vms", "list", "--json"]);
    const stderr = new TextDecoder().decode(out.stderr);
    equal(out.code, 0, stderr);
    const list = VmList.parse(JSON.parse(new TextDecoder().decode(out.stdout)));
    equal(list.vms.length, 1);
    equal(list.vms[0]!.name, "sub");

    const bad = await run(["--socket", daemon.socket, "vms", "create", "x", "--cpu", "abc"]);
    equal(bad.code, 2, "the exit code reaches the process");
    match(new TextDecoder().decode(bad.stderr), /--cpu <count>/);
  } finally {
    await daemon.stop();
  }
});
