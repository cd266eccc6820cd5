/**
 * Plugins end to end with a real VM: a signed plugin whose workload is busybox httpd in the
 * plugin's initramfs; kestrel supervises it (health, logs, restart), the daemon proxies actions,
 * logs and kestrel's API, and refuses what it must (remove while used, a tampered artifact, an
 * unsigned manifest).
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { writeCpio } from "../kernels/cpio.ts";
import { PluginRecord, VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, startDaemon, volarOk } from "./harness.ts";
import { kestrelGet, kestrelSecret } from "./kestrel.ts";

const encoder = new TextEncoder();

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const CGI_HEADER = 'echo "Content-Type: text/plain"\necho\n';

/** The plugin's payload: a static busybox, a web root with two CGI scripts, gzip-compressed. */
async function pluginArchive(): Promise<Uint8Array<ArrayBuffer>> {
  const file = (path: string, text: string, mode = 0o644) => ({
    type: "file" as const,
    path,
    data: encoder.encode(text),
    mode,
  });
  return await gzip(writeCpio([
    { type: "dir", path: "bin", mode: 0o755 },
    { type: "file", path: "bin/busybox", data: await Deno.readFile("/bin/busybox"), mode: 0o755 },
    { type: "symlink", path: "bin/sh", target: "busybox" },
    { type: "dir", path: "www", mode: 0o755 },
    { type: "dir", path: "www/cgi-bin", mode: 0o755 },
    { type: "dir", path: "var", mode: 0o755 },
    { type: "dir", path: "var/run", mode: 0o755 },
    file("www/index.html", "hello from the plugin\n"),
    file("www/cgi-bin/hello", `#!/bin/sh\n${CGI_HEADER}echo "hello action"\n`, 0o755),
    file(
      "www/cgi-bin/crash",
      `#!/bin/sh\n${CGI_HEADER}read pid < /var/run/workload.pid\necho "killing $pid"\nkill -9 "$pid"\n`,
      0o755,
    ),
  ]));
}

async function manifestFor(name: string, archivePath: string, archive: Uint8Array<ArrayBuffer>) {
  return {
    name,
    version: "1.0.0",
    description: "busybox httpd in an initramfs",
    initramfs: { url: archivePath, checksum: await sha256(archive) },
    resources: { cpu_cores: 1, memory_mb: 256 },
    workload: {
      entrypoint: [
        "/bin/sh",
        "-c",
        "echo $$ > /var/run/workload.pid; exec /bin/busybox httpd -f -vv -p 80 -h /www",
      ],
      base_url: "http://127.0.0.1:80",
    },
    restart: { policy: "always", backoff: { initial_ms: 200 } },
    health_check: {
      endpoint: "/index.html",
      interval_ms: 500,
      timeout_ms: 1000,
      unhealthy_threshold: 2,
      start_period_ms: 0,
    },
    actions: {
      hello: { method: "GET", path: "/cgi-bin/hello", description: "say hello" },
      crash: { method: "GET", path: "/cgi-bin/crash", description: "kill the workload" },
    },
  };
}

async function vm(daemon: E2eDaemon, name: string): Promise<VmRecord> {
  return VmRecord.parse(JSON.parse(await volarOk(daemon, "vms", "get", name, "--json")));
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test("a signed plugin runs supervised in a real VM: health, actions, logs, restart, refusals", async () => {
  let started: E2eDaemon | undefined;
  let logs: Deno.ChildProcess | undefined;
  let consoleCli: Deno.ChildProcess | undefined;
  try {
    const daemon = started = await startDaemon();
    const work = `${daemon.dir}/plugin`;
    await Deno.mkdir(work);
    const archive = await pluginArchive();
    await Deno.writeFile(`${work}/web.cpio.gz`, archive);
    await Deno.writeTextFile(
      `${work}/web.json`,
      JSON.stringify(await manifestFor("web", `${work}/web.cpio.gz`, archive), null, 2),
    );

    // Keys and signature, as a user does it.
    const gen = JSON.parse(
      await volarOk(daemon, "keys", "generate", "-o", `${work}/key.json`, "--json"),
    );
    equal((await Deno.stat(`${work}/key.json`)).mode! & 0o777, 0o600);
    const unsignedTry = await daemon.volar("plugins", "install", "--manifest", `${work}/web.json`);
    equal(unsignedTry.code, 1);
    match(unsignedTry.stderr, /not signed.*--allow-unsigned/);
    await volarOk(daemon, "keys", "trust", gen.public_key, "--comment", "e2e");
    await volarOk(daemon, "plugins", "sign", `${work}/web.json`, "--key", `${work}/key.json`);
    const installed = PluginRecord.parse(JSON.parse(
      await volarOk(daemon, "plugins", "install", "--manifest", `${work}/web.json`, "--json"),
    ));
    deepEqual(installed.signature, { status: "verified", key_id: gen.key_id });
    match(await volarOk(daemon, "plugins", "show", "web"), /verified/);

    // Create: running only once the workload is healthy.
    const created = VmRecord.parse(JSON.parse(
      await volarOk(daemon, "vms", "create", "web1", "--plugin", "web", "--json"),
    ));
    equal(created.state, "running");
    equal(created.plugin, "web");
    equal(created.workload?.healthy, true, JSON.stringify(created.workload));

    // kestrel answers only with the VM's secret, which stays out of everything a user sees.
    const secret = kestrelSecret(daemon, "web1");
    match(secret, /^[A-Za-z0-9_-]{43}$/);
    match(await kestrelGet(daemon.ns, created.ip!, "/healthz", secret), /"name":"web1"/);
    for (const path of ["/healthz", "/v1/logs", "/v1/actions"]) {
      const anonymous = await kestrelGet(daemon.ns, created.ip!, path).then(
        () => "answered",
        (err: Error) => err.message,
      );
      match(anonymous, /401 Unauthorized/, path);
    }
    const wrong = await kestrelGet(daemon.ns, created.ip!, "/healthz", `x${secret.slice(1)}`)
      .then(() => "answered", (err: Error) => err.message);
    match(wrong, /401 Unauthorized/);

    // An action runs in the workload and its answer comes back.
    match(await volarOk(daemon, "vms", "call", "web1", "hello"), /hello action/);
    const unknown = await daemon.volar("vms", "call", "web1", "nope");
    equal(unknown.code, 1);
    match(unknown.stdout + unknown.stderr, /nope/);

    // The same through MCP, over the daemon's unix socket, with the official client.
    const http = Deno.createHttpClient({ proxy: { transport: "unix", path: daemon.socket } });
    const mcp = new Client({ name: "e2e", version: "1.0.0" });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL("http://volantd/mcp"), {
        fetch: (url: string | URL, init?: RequestInit) => fetch(url, { ...init, client: http }),
      }),
    );
    try {
      const called = await mcp.callTool({
        name: "vm_action",
        arguments: { name: "web1", action: "hello" },
      });
      match(JSON.stringify(called.structuredContent), /hello action/);
      const logged = await mcp.callTool({ name: "vm_logs", arguments: { name: "web1", tail: 5 } });
      const lines = (logged.structuredContent as { lines: { line: string }[] }).lines;
      ok(lines.length > 0 && lines.length <= 5, JSON.stringify(logged.structuredContent));
    } finally {
      await mcp.close();
      http.close();
    }

    // logs -f shows a line this test causes (httpd -vv logs each request URL).
    logs = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "main.ts",
        "volar",
        "--socket",
        daemon.socket,
        "vms",
        "logs",
        "web1",
        "-f",
      ],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const marker = `marker-${crypto.randomUUID().slice(0, 8)}`;
    const seen = (async () => {
      let text = "";
      for await (const chunk of logs!.stdout.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        if (text.includes(marker)) return text;
      }
      return text;
    })();
    // Through the daemon's agent proxy, then kestrel's /v1 proxy, to the workload.
    await until("the marker request", async () => {
      const r = await daemon.api(`/api/v1/vms/web1/agent/v1/${marker}`).catch(() => undefined);
      return r === undefined ? undefined : r.status;
    });
    const text = await Promise.race([
      seen,
      new Promise<string>((r) => setTimeout(() => r("(timeout)"), 30_000)),
    ]);
    if (!text.includes(marker)) {
      const tail = await daemon.volar("vms", "logs", "web1", "--tail", "20");
      throw new Error(
        `the follow stream did not show ${marker}; it showed: ${text}\n` +
          `volar vms logs --tail 20 (exit ${tail.code}): ${tail.stdout}${tail.stderr}`,
      );
    }
    logs.kill("SIGTERM");
    await logs.status;
    await logs.stdout.cancel().catch(() => {});
    await logs.stderr.cancel().catch(() => {});
    logs = undefined;

    // The serial console: a shell prompt in the guest, one client at a time.
    const info = await daemon.api("/api/v1/vms/web1/console");
    deepEqual(info, { status: 200, body: { name: "web1", attachable: true } });
    // No linger: stdin stays open until the answer is seen, then volar detaches at once.
    const cli = consoleCli = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "main.ts",
        "volar",
        "--socket",
        daemon.socket,
        "vms",
        "console",
        "web1",
        "--linger",
        "0",
      ],
      cwd: new URL("..", import.meta.url).pathname,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let consoleText = "";
    const consoleOut = (async () => {
      for await (const chunk of cli.stdout.pipeThrough(new TextDecoderStream())) {
        consoleText += chunk;
      }
    })();
    const writer = cli.stdin.getWriter();
    // The shell computes 6*7 so the answer cannot be the echo of what was typed. Then what the
    // guest shows of kestrel's secret: the kernel command line, the boot config's directory
    // and where stage 0 moves it (boot.json is gone from both once kestrel read it), and every
    // process's environment.
    await writer.write(encoder.encode("\necho console-$((6*7))-$(hostname)\n"));
    await writer.write(encoder.encode(
      "cat /proc/cmdline; ls /run/volant /run/volant/root/volant; " +
        "cat /proc/[0-9]*/environ | tr '\\0' '\\n'; echo probe-$((40+2))-done\n",
    ));
    const busyConsole = await until("the console to be attached", async () => {
      const r = await daemon.api("/api/v1/vms/web1/console");
      return r.status === 409 ? r : undefined;
    });
    match(JSON.stringify(busyConsole.body), /already has a client/);
    await until(
      "the guest's shell to answer on the console",
      () =>
        Promise.resolve(
          (/console-42-web1/.test(consoleText) && /probe-42-done/.test(consoleText)) ||
            undefined,
        ),
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; the console showed: ${consoleText}`);
    });
    await writer.close();
    const consoleStatus = await cli.status;
    await consoleOut;
    consoleCli = undefined;
    const consoleErr = await new Response(cli.stderr).text();
    equal(consoleStatus.code, 0, consoleErr);
    match(consoleText, /console-42-web1/, "the guest's shell ran the typed command");
    match(consoleText, /volant\.boot=/, "the console showed /proc/cmdline");
    match(consoleText, /^\/run\/volant\/root\/volant:/m, "the console listed both directories");
    ok(
      !/boot\.json/.test(consoleText.split("ls /run/volant /run/volant/root/volant")[1] ?? ""),
      consoleText,
    );
    ok(!consoleText.includes(secret), "the secret is in the guest's cmdline or an environment");
    const record = await volarOk(daemon, "vms", "get", "web1", "--json");
    const serialLog = await Deno.readTextFile(`${daemon.dir}/log/vms/web1/serial.log`);
    for (
      const [what, text] of [
        ["volar vms get", record],
        ["volar vms get (table)", await volarOk(daemon, "vms", "get", "web1")],
        ["the serial log", serialLog],
        ["volantd's log", daemon.logs().join("\n")],
      ]
    ) {
      ok(!text!.includes(secret), `the secret is in ${what}`);
    }
    // Detached again (the daemon frees the console when the socket closes).
    await until("the console to be free again", async () => {
      const r = await daemon.api("/api/v1/vms/web1/console");
      return r.status === 200 ? r : undefined;
    });

    // Kill the workload inside the guest: kestrel restarts it, the daemon reports it.
    await daemon.volar("vms", "call", "web1", "crash");
    const restarted = await until("the restart", async () => {
      const w = (await vm(daemon, "web1")).workload;
      return w && w.restarts >= 1 && w.healthy ? w : undefined;
    });
    ok(restarted.restarts >= 1);
    ok(daemon.logs().some((l) => l.includes('"workload restarted"')), "the daemon logged it");
    match(await volarOk(daemon, "vms", "call", "web1", "hello"), /hello action/);

    // Remove is refused while a VM uses the plugin.
    const busy = await daemon.volar("plugins", "remove", "web");
    equal(busy.code, 1);
    match(busy.stderr, /used by VM web1/);

    // A tampered artifact is refused before boot.
    await volarOk(daemon, "vms", "stop", "web1");
    const blob = `${daemon.dir}/state/artifacts/sha256/${
      installed.artifacts[0]!.checksum.slice(7)
    }`;
    await Deno.chmod(blob, 0o644);
    const f = await Deno.open(blob, { write: true });
    await f.write(encoder.encode("\0"));
    f.close();
    const tampered = await daemon.volar("vms", "start", "web1");
    equal(tampered.code, 1);
    match(tampered.stderr, /modified/);
    equal((await vm(daemon, "web1")).state, "stopped");

    await volarOk(daemon, "vms", "delete", "web1");
    await volarOk(daemon, "plugins", "remove", "web");

    // Unsigned is refused unless allowed, and says so afterwards.
    const copy = await manifestFor("web-unsigned", `${work}/web.cpio.gz`, archive);
    await Deno.writeTextFile(`${work}/unsigned.json`, JSON.stringify(copy));
    const refused = await daemon.volar("plugins", "install", "--manifest", `${work}/unsigned.json`);
    equal(refused.code, 1);
    await volarOk(
      daemon,
      "plugins",
      "install",
      "--manifest",
      `${work}/unsigned.json`,
      "--allow-unsigned",
    );
    match(await volarOk(daemon, "plugins", "show", "web-unsigned"), /UNSIGNED/);
  } finally {
    for (const child of [logs, consoleCli]) {
      if (!child) continue;
      try {
        child.kill("SIGKILL");
      } catch {
        // Gone.
      }
      await child.status;
    }
    await started?.dispose();
  }
});
