import { equal, match, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import { exchangeLine, setNicLinks } from "./control.ts";

/** A unix socket at a fresh path answering each connection with `answer(line)`. */
async function server(
  answer: (line: string, conn: Deno.UnixConn) => Promise<void>,
): Promise<{ path: string; close(): Promise<void> }> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/control.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const serve = async (conn: Deno.UnixConn) => {
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf).catch(() => null);
    await answer(new TextDecoder().decode(buf.subarray(0, n ?? 0)), conn).catch(() => {});
    try {
      conn.close();
    } catch {
      // closed by the answer
    }
  };
  const handling: Promise<void>[] = [];
  const served = (async () => {
    // Each connection on its own: a silent one must not hold up the next.
    for await (const conn of listener) handling.push(serve(conn));
    await Promise.all(handling);
  })();
  return {
    path,
    async close() {
      listener.close();
      await served.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const write = (conn: Deno.UnixConn, text: string) => conn.write(new TextEncoder().encode(text));
const code = (c: string, m: RegExp) => (err: VolantError) => {
  equal(err.code, c);
  match(err.message, m);
  return true;
};

Deno.test("exchangeLine() sends one line and returns the reply's first line, split across writes", async () => {
  const s = await server(async (line, conn) => {
    await write(conn, `{"got":${JSON.stringify(line)}`);
    await write(conn, `}\nignored after the newline`);
  });
  try {
    const reply = await exchangeLine(s.path, "hello", { timeoutMs: 2_000, maxBytes: 1024 });
    equal(reply, '{"got":"hello\\n"}');
  } finally {
    await s.close();
  }
});

Deno.test("exchangeLine() is bounded: an endless reply, silence, a close and no socket are errors", async () => {
  const s = await server(async (line, conn) => {
    if (line.startsWith("flood")) await write(conn, "x".repeat(5000));
    if (line.startsWith("silent")) await new Promise((r) => setTimeout(r, 600));
  });
  try {
    const opts = { timeoutMs: 300, maxBytes: 1024 };
    await rejects(exchangeLine(s.path, "flood", opts), code("vmm_failed", /exceeds 1024 bytes/));
    await rejects(exchangeLine(s.path, "silent", opts), code("timeout", /within 300 ms/));
    await rejects(exchangeLine(s.path, "close", opts), code("vmm_failed", /closed before/));
    await rejects(
      exchangeLine(`${s.path}.none`, "x", opts),
      code("vmm_failed", /cannot reach the guest's control port/),
    );
  } finally {
    await s.close();
  }
});

Deno.test("setNicLinks() sets every NIC QEMU reports", async () => {
  const calls: string[] = [];
  const qmp = <T>(command: string, args?: Record<string, unknown>): Promise<T> => {
    calls.push(`${command} ${JSON.stringify(args ?? {})}`);
    return Promise.resolve(
      (command === "query-rx-filter" ? [{ name: "nic0" }, { name: "nic1" }] : {}) as T,
    );
  };
  equal((await setNicLinks(qmp, false)).join(), "nic0,nic1");
  equal(
    calls.join("\n"),
    'query-rx-filter {}\nset_link {"name":"nic0","up":false}\nset_link {"name":"nic1","up":false}',
  );
});
