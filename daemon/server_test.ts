import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import type { VolantError } from "../schema/mod.ts";
import { exists, unixFetch } from "./testing.ts";
import { createLogger, silentLogger } from "./log.ts";
import { groupId, parseHostPort, serveDaemon } from "./server.ts";

const handler = (req: Request) => Response.json({ path: new URL(req.url).pathname });

/** Leaves a socket file nobody listens on, as a SIGKILLed daemon would. */
async function staleSocket(path: string): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const l = Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} });` +
      ` console.log("up"); await l.accept();`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let seen = "";
  const decoder = new TextDecoder();
  const reader = child.stdout.getReader();
  while (!seen.includes("up")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += decoder.decode(value);
  }
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();
  const stderr = decoder.decode(await new Response(child.stderr).arrayBuffer());
  if (!seen.includes("up")) throw new Error(`listener did not start: ${stderr}`);
}

Deno.test("serves on a unix socket with its mode, and on TCP", async () => {
  const dir = await Deno.makeTempDir();
  const socket = `${dir}/run/volantd.sock`;
  try {
    const server = await serveDaemon({
      handler,
      socket,
      socketMode: 0o600,
      tcp: "127.0.0.1:0",
      logger: silentLogger(),
    });
    const info = await Deno.lstat(socket);
    ok(info.isSocket);
    equal(info.mode! & 0o777, 0o600);
    const res = await unixFetch(socket, "/healthz");
    equal(res.status, 200);
    equal((res.body as { path: string }).path, "/healthz");
    ok(server.tcp && server.tcp.port > 0);
    const tcp = await fetch(`http://127.0.0.1:${server.tcp.port}/x`);
    equal((await tcp.json()).path, "/x");
    await server.close();
    equal(await exists(socket), false, "socket file left after close");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stale socket is replaced; a live daemon's socket is refused", async () => {
  const dir = await Deno.makeTempDir();
  const socket = `${dir}/volantd.sock`;
  try {
    await staleSocket(socket);
    ok((await Deno.lstat(socket)).isSocket, "test setup: stale socket exists");
    const first = await serveDaemon({ handler, socket, socketMode: 0o660, logger: silentLogger() });
    equal((await unixFetch(socket, "/a")).status, 200);
    await rejects(
      () => serveDaemon({ handler, socket, socketMode: 0o660, logger: silentLogger() }),
      (err: VolantError) => {
        match(err.message, /Another volantd is already serving on/);
        return err.code === "already_exists";
      },
    );
    equal((await unixFetch(socket, "/still")).status, 200, "the first daemon must keep serving");
    await first.close();

    await Deno.writeTextFile(socket, "not a socket");
    await rejects(
      () => serveDaemon({ handler, socket, socketMode: 0o660, logger: silentLogger() }),
      /is not a socket/,
    );
    equal(await Deno.readTextFile(socket), "not a socket", "a regular file is never removed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("api.tcp must be host:port", () => {
  equal(parseHostPort("[::1]:7777").hostname, "::1");
  equal(parseHostPort("localhost:80").port, 80);
  for (const bad of ["7777", "host:", "host:99999", "a b:1"]) {
    let code = "";
    try {
      parseHostPort(bad);
    } catch (err) {
      code = (err as VolantError).code;
    }
    equal(code, "invalid_argument", bad);
  }
});

Deno.test({
  name: "the socket is 0660 and given to its group: root:volant when the group exists",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const socket = `${dir}/volantd.sock`;
    const groups = `${dir}/group`;
    await Deno.writeTextFile(groups, "root:x:0:\nvolant:x:54321:alice,bob\n");
    const logs: string[] = [];
    const logger = createLogger({ sink: (l) => logs.push(l) });
    try {
      equal(await groupId("volant", groups), 54321);
      equal(await groupId("volan", groups), null);
      const options = { handler, socket, socketMode: 0o660, socketGroup: "volant", logger };
      const fake = await serveDaemon({ ...options, groupFile: groups });
      const info = await Deno.lstat(socket);
      deepEqual([info.mode! & 0o777, info.uid, info.gid], [0o660, 0, 54321]);
      await fake.close();
      ok(logs.some((l) => JSON.parse(l).msg === "listening" && JSON.parse(l).group === "volant"));

      // This host's own groups: root:volant when `volar setup` created the group, else root:root
      // with a note in the log.
      logs.length = 0;
      const real = await serveDaemon(options);
      const host = await Deno.lstat(socket);
      const volant = await groupId("volant");
      deepEqual([host.mode! & 0o777, host.uid, host.gid], [0o660, 0, volant ?? 0]);
      const listening = logs.map((l) => JSON.parse(l)).find((l) => l.msg === "listening");
      if (volant === null) match(listening.note, /group volant does not exist \(volar setup/);
      else equal(listening.group, "volant");
      await real.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
