import { equal, match } from "node:assert/strict";

const REPO = new URL("../../", import.meta.url).pathname;

/** A stand-in volantd on a unix socket: the console route, echoing what is typed. */
function fakeDaemon(socket: string, busy = false) {
  const typed: string[] = [];
  const server = Deno.serve({ path: socket, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/api/v1/vms/web/console") {
      return Response.json({ code: "not_found", message: `VM ${url.pathname} does not exist` }, {
        status: 404,
      });
    }
    if (busy) {
      return Response.json({
        code: "invalid_state",
        message: "The console of VM web already has a client; detach it first (Ctrl-] in volar)",
      }, { status: 409 });
    }
    if (req.headers.get("upgrade") !== "websocket") {
      return Response.json({ name: "web", attachable: true });
    }
    const { socket: ws, response } = Deno.upgradeWebSocket(req);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => ws.send(new TextEncoder().encode("web:/# \x1b[6n"));
    ws.onmessage = (e) => {
      const text = new TextDecoder().decode(new Uint8Array(e.data as ArrayBuffer));
      typed.push(text);
      ws.send(new TextEncoder().encode(`ran ${text.trim()}\n`));
    };
    return response;
  });
  return { typed, close: () => server.shutdown() };
}

/**
 * Runs `volar vms console web --linger 0` and types `input`; when `until` is given, stdin stays
 * open until stdout shows it (failing after `deadlineMs`), then the input ends and volar
 * detaches at once. No fixed wait: the test waits for what it expects, with a deadline.
 */
async function consoleCli(socket: string, input: string, until?: RegExp, deadlineMs = 30_000) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "main.ts",
      "volar",
      "--socket",
      socket,
      "vms",
      "console",
      "web",
      "--linger",
      "0",
    ],
    cwd: REPO,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  child.status.then(() => exited = true);
  let stdout = "";
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) stdout += chunk;
  })();
  const stderr = new Response(child.stderr).text();
  const writer = child.stdin.getWriter();
  if (input !== "") await writer.write(new TextEncoder().encode(input));
  const deadline = Date.now() + deadlineMs;
  while (until !== undefined && !until.test(stdout) && !exited) {
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await child.status;
      await reading;
      await stderr;
      throw new Error(`no ${until} on the console within ${deadlineMs} ms; it showed: ${stdout}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  // volar may have exited already (a refusal): its stdin is then gone.
  await writer.close().catch(() => {});
  const status = await child.status;
  await reading;
  return { code: status.code, stdout, stderr: await stderr };
}

Deno.test("volar vms console types piped input into the console and prints what comes back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volar-console-" });
  const daemon = fakeDaemon(`${dir}/volantd.sock`);
  try {
    const r = await consoleCli(`${dir}/volantd.sock`, "uname -r\n", /ran uname -r\n/);
    equal(r.code, 0, r.stderr);
    equal(daemon.typed.join(""), "uname -r\n");
    match(r.stdout, /^web:\/# ran uname -r$/m);
    equal(r.stdout.includes("\x1b[6n"), false, "no terminal: the cursor query is dropped");
  } finally {
    await daemon.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("volar vms console reports the daemon's refusal (a client is already attached)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volar-console-" });
  const daemon = fakeDaemon(`${dir}/volantd.sock`, true);
  try {
    const r = await consoleCli(`${dir}/volantd.sock`, "");
    equal(r.code, 1);
    match(r.stderr, /already has a client/);
    equal(daemon.typed.length, 0);
  } finally {
    await daemon.close();
    await Deno.remove(dir, { recursive: true });
  }
});
