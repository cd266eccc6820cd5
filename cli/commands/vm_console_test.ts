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

async function consoleCli(socket: string, input: string) {
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
      "500",
    ],
    cwd: REPO,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const out = await child.output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("volar vms console types piped input into the console and prints what comes back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volar-console-" });
  const daemon = fakeDaemon(`${dir}/volantd.sock`);
  try {
    const r = await consoleCli(`${dir}/volantd.sock`, "uname -r\n");
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
