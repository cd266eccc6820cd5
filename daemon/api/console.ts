/**
 * `GET /api/v1/vms/:name/console`: the VM's serial console over a WebSocket. Binary or text
 * messages from the client are typed into the guest's ttyS0; what the guest prints comes back
 * as binary messages. One client per VM at a time; the socket closes when the VM stops.
 *
 * @module
 */
import { type ConsoleInfo, VolantError } from "../../schema/mod.ts";
import type { VmConsole } from "../../schema/operations/mod.ts";
import type { Handler } from "./route.ts";

/** VMs whose console has a client now, per VM service (one daemon has one). */
const attached = new WeakMap<object, Set<string>>();

function attachedFor(owner: object): Set<string> {
  let set = attached.get(owner);
  if (!set) attached.set(owner, set = new Set());
  return set;
}

/**
 * Pumps bytes between `ws` and `conn` until either side ends, then closes both and calls
 * `done` once.
 */
function bridge(ws: WebSocket, conn: Deno.UnixConn, done: () => void): void {
  const encoder = new TextEncoder();
  let finished = false;
  const finish = (code: number, reason: string) => {
    if (finished) return;
    finished = true;
    done();
    try {
      conn.close();
    } catch {
      // Already closed.
    }
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      ws.close(code, reason);
    }
  };
  ws.binaryType = "arraybuffer";
  ws.onmessage = (event) => {
    const bytes = typeof event.data === "string"
      ? encoder.encode(event.data)
      : new Uint8Array(event.data as ArrayBuffer);
    conn.write(bytes).catch(() => finish(1011, "the console socket failed"));
  };
  ws.onclose = () => finish(1000, "client left");
  ws.onerror = () => finish(1011, "websocket error");
  ws.onopen = async () => {
    const buf = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        if (ws.readyState !== WebSocket.OPEN) break;
        ws.send(buf.slice(0, n));
      }
    } catch {
      // The VMM went away.
    }
    finish(1000, "the VM's console closed");
  };
}

/**
 * `GET /api/v1/vms/:name/console`: with `Upgrade: websocket` the console itself, else whether
 * it can be attached now.
 */
export const vmConsole: Handler<typeof VmConsole> = async ({ params, deps, request }) => {
  const name = params.name;
  const path = await deps.service.consoleSocket(name);
  const busy = attachedFor(deps.service);
  if (busy.has(name)) {
    throw new VolantError(
      "invalid_state",
      `The console of VM ${name} already has a client; detach it first (Ctrl-] in volar)`,
      { name },
    );
  }
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return { name, attachable: true } satisfies ConsoleInfo;
  }
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    throw new VolantError(
      "vmm_failed",
      `Cannot open the console of VM ${name} (${path}): ${
        err instanceof Error ? err.message : err
      }`,
      { name, path },
    );
  }
  busy.add(name);
  const { socket, response } = Deno.upgradeWebSocket(request);
  bridge(socket, conn, () => busy.delete(name));
  return response;
};
