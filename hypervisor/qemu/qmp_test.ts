import { deepEqual, equal, match, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import { QmpClient, qmpExecute } from "./qmp.ts";

const GREETING = {
  QMP: {
    version: { qemu: { major: 7, minor: 2, micro: 22 }, package: " Debian 1:7.2 " },
    capabilities: ["oob"],
  },
};

type Msg = Record<string, unknown>;

/** What a fake QEMU does with each command it receives (after negotiation). */
type Script = (
  msg: Msg,
  send: (reply: unknown) => Promise<void>,
  hangUp: () => void,
) => Promise<void> | void;

interface FakeServer {
  path: string;
  /** Every command received, in order. */
  received: Msg[];
  close(): Promise<void>;
}

/** A fake QMP server that greets (unless `greet` is false) and enforces negotiation. */
async function fakeQmp(script: Script, options: { greet?: boolean } = {}): Promise<FakeServer> {
  const dir = await Deno.makeTempDir({ prefix: "volant-qmp-" });
  const path = `${dir}/qmp.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const received: Msg[] = [];
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      handle(conn).catch(() => {}).finally(() => conns.delete(conn));
    }
  })();
  async function handle(conn: Deno.Conn) {
    const send = async (reply: unknown) => {
      await conn.write(new TextEncoder().encode(JSON.stringify(reply) + "\r\n"));
    };
    const hangUp = () => conn.close();
    if (options.greet !== false) await send(GREETING);
    let negotiated = false;
    let text = "";
    const buf = new Uint8Array(4096);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) return;
      text += new TextDecoder().decode(buf.subarray(0, n));
      let nl: number;
      while ((nl = text.indexOf("\n")) >= 0) {
        const msg = JSON.parse(text.slice(0, nl)) as Msg;
        text = text.slice(nl + 1);
        received.push(msg);
        if (msg.execute === "qmp_capabilities") {
          negotiated = true;
          await send({ return: {}, id: msg.id });
        } else if (!negotiated) {
          await send({
            error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation" },
            id: msg.id,
          });
        } else {
          await script(msg, send, hangUp);
        }
      }
    }
  }
  return {
    path,
    received,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Closed already.
        }
      }
      await serving.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("QmpClient negotiates, runs commands and sets events aside", async () => {
  const server = await fakeQmp(async (msg, send) => {
    if (msg.execute === "query-status") {
      await send({ event: "RESUME", timestamp: { seconds: 1, microseconds: 2 } });
      await send({ return: { status: "running", running: true }, id: msg.id });
    } else if (msg.execute === "echo") {
      await send({ return: msg.arguments, id: msg.id });
    }
  });
  const seen: string[] = [];
  const client = await QmpClient.connect(server.path, { onEvent: (e) => seen.push(e.event) });
  try {
    deepEqual(client.version, { major: 7, minor: 2, micro: 22, package: "Debian 1:7.2" });
    equal(server.received[0]?.execute, "qmp_capabilities", "negotiation comes first");
    deepEqual(await client.execute("query-status"), { status: "running", running: true });
    deepEqual(await client.execute("echo", { a: [1, "x"] }), { a: [1, "x"] });
    deepEqual(seen, ["RESUME"]);
    equal(client.events[0]?.event, "RESUME");
    const [a, b] = await Promise.all([
      client.execute("echo", { n: 1 }),
      client.execute("echo", { n: 2 }),
    ]);
    deepEqual([a, b], [{ n: 1 }, { n: 2 }], "concurrent commands are matched by id");
  } finally {
    client.close();
    await client.done;
    await server.close();
  }
});

Deno.test("QmpClient turns QEMU errors into vmm_failed with QEMU's desc", async () => {
  const server = await fakeQmp(async (msg, send) => {
    if (msg.execute === "bad") {
      await send({ error: { class: "GenericError", desc: "Device 'x' not found" }, id: msg.id });
    } else if (msg.execute === "noid") {
      await send({ error: { class: "GenericError", desc: "JSON parse error" } });
    }
  });
  const client = await QmpClient.connect(server.path);
  try {
    await rejects(() => client.execute("bad"), (e: VolantError) => {
      equal(e.code, "vmm_failed");
      equal(e.message, "QEMU refused bad: Device 'x' not found");
      deepEqual(e.details, { command: "bad", qmp_class: "GenericError" });
      return true;
    });
    await rejects(() => client.execute("noid"), /QEMU refused noid: JSON parse error/);
  } finally {
    client.close();
    await client.done;
    await server.close();
  }
});

Deno.test("QmpClient times out a command without reply and closes the session", async () => {
  const server = await fakeQmp(() => {});
  const client = await QmpClient.connect(server.path);
  try {
    await rejects(
      () => client.execute("query-status", undefined, { timeoutMs: 100 }),
      (e: VolantError) => {
        equal(e.code, "timeout");
        match(e.message, /did not answer query-status .* within 100 ms/);
        return true;
      },
    );
    await rejects(
      () => client.execute("query-status"),
      (e: VolantError) => e.code === "vmm_failed",
    );
  } finally {
    client.close();
    await client.done;
    await server.close();
  }
});

Deno.test("QmpClient reports QEMU hanging up mid-command", async () => {
  const server = await fakeQmp((_msg, _send, hangUp) => hangUp());
  const client = await QmpClient.connect(server.path);
  try {
    await rejects(() => client.execute("quit"), (e: VolantError) => {
      equal(e.code, "vmm_failed");
      match(e.message, /closed its QMP socket .* before answering quit/);
      return true;
    });
  } finally {
    client.close();
    await client.done;
    await server.close();
  }
});

Deno.test("QmpClient.connect fails clearly: no socket, no greeting", async () => {
  await rejects(
    () => QmpClient.connect("/nonexistent/volant/qmp.sock"),
    (e: VolantError) =>
      e.code === "vmm_failed" && /Cannot connect to the QMP socket/.test(e.message),
  );
  const silent = await fakeQmp(() => {}, { greet: false });
  try {
    await rejects(
      () => QmpClient.connect(silent.path, { timeoutMs: 150 }),
      (e: VolantError) => e.code === "timeout" && /did not greet/.test(e.message),
    );
  } finally {
    await silent.close();
  }
});

Deno.test("qmpExecute() runs one command per session", async () => {
  const server = await fakeQmp(async (msg, send) => {
    await send({ return: { echoed: msg.execute }, id: msg.id });
  });
  try {
    deepEqual(await qmpExecute(server.path, "cont"), { echoed: "cont" });
    deepEqual(await qmpExecute(server.path, "stop"), { echoed: "stop" });
    deepEqual(
      server.received.map((m) => m.execute),
      ["qmp_capabilities", "cont", "qmp_capabilities", "stop"],
    );
  } finally {
    await server.close();
  }
});
