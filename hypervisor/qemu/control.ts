/**
 * The guest's side channels QEMU carries besides the NICs: the control channel (the guest's
 * second UART, which kestrel holds open, reached through a unix socket in the VM's runtime dir;
 * see `schema/guest_control.ts`) and the NICs' link state (`set_link`), which a clone keeps down
 * until it has its own identity.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type { Qmp } from "./migration.ts";

/**
 * Sends `line` (a newline is added) on the unix socket `socket` and resolves to the first line
 * the other side writes back, without its newline. Bounded: `timeout` after `timeoutMs`,
 * `vmm_failed` when the reply exceeds `maxBytes` or the socket closes first.
 *
 * @example
 * ```ts ignore
 * import { exchangeLine } from "./control.ts";
 * const reply = await exchangeLine("/run/volant/vms/web/control.sock", "{}", {
 *   timeoutMs: 5_000,
 *   maxBytes: 65_536,
 * });
 * ```
 */
export async function exchangeLine(
  socket: string,
  line: string,
  options: { timeoutMs: number; maxBytes: number },
): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path: socket }).catch((err) => {
    throw new VolantError(
      "vmm_failed",
      `cannot reach the guest's control port (${socket}): ${(err as Error).message}`,
      { socket },
    );
  });
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }, options.timeoutMs);
  let timedOut = false;
  const deadline = Date.now() + options.timeoutMs;
  try {
    await conn.write(new TextEncoder().encode(`${line}\n`));
    const chunks: Uint8Array<ArrayBuffer>[] = [];
    let size = 0;
    const buf = new Uint8Array(16 * 1024);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (err) {
        if (Date.now() >= deadline) {
          timedOut = true;
          break;
        }
        throw err;
      }
      if (n === null) {
        if (Date.now() >= deadline) timedOut = true;
        break;
      }
      const chunk = buf.subarray(0, n);
      const nl = chunk.indexOf(0x0a);
      const take = nl < 0 ? chunk : chunk.subarray(0, nl);
      size += take.length;
      if (size > options.maxBytes) {
        throw new VolantError(
          "vmm_failed",
          `the guest's control reply exceeds ${options.maxBytes} bytes`,
          { socket },
        );
      }
      chunks.push(take.slice());
      if (nl >= 0) return await new Blob(chunks).text();
    }
    if (timedOut) {
      throw new VolantError(
        "timeout",
        `the guest did not answer on its control port within ${options.timeoutMs} ms`,
        { socket, timeout_ms: options.timeoutMs },
      );
    }
    throw new VolantError("vmm_failed", "the guest's control port closed before it answered", {
      socket,
    });
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

interface RxFilter {
  name: string;
}

/**
 * Sets the link of every NIC of the VM up or down (`set_link` on each name QEMU reports in
 * `query-rx-filter`; virtio-net has one). Down: the guest sees no carrier and QEMU drops what
 * it sends. Returns the NICs' names.
 */
export async function setNicLinks(qmp: Qmp, up: boolean): Promise<string[]> {
  const nics = await qmp<RxFilter[]>("query-rx-filter");
  for (const nic of nics) await qmp("set_link", { name: nic.name, up });
  return nics.map((n) => n.name);
}
