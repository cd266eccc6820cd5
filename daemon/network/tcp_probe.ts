/**
 * One TCP connection to a guest's port, closed at once: the readiness signal of workloads that
 * run without kestrel (init modes `custom` and `none`). Calls to kestrel itself go through the
 * daemon's kestrel client (`daemon/kestrel/`).
 *
 * @module
 */
import type { ProbeOptions, TcpProbe } from "./host_network.ts";

function reasonOf(err: unknown, timeoutMs: number, signals: AbortSignal[]): string {
  if (signals[0]?.aborted) return "aborted";
  if (signals[1]?.aborted) return `no answer within ${timeoutMs} ms`;
  if (err instanceof Deno.errors.ConnectionRefused) return "connection refused";
  return err instanceof Error ? err.message : String(err);
}

/**
 * One TCP connection to `ip:port`, closed at once: whether something listens there.
 *
 * @example
 * ```ts
 * import { probeTcp } from "./tcp_probe.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const r = await probeTcp("127.0.0.1", listener.addr.port, { timeoutMs: 500 });
 * listener.close();
 * console.assert(r.ok);
 * ```
 */
export async function probeTcp(ip: string, port: number, options: ProbeOptions): Promise<TcpProbe> {
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  try {
    const conn = await Deno.connect({ hostname: ip, port, signal });
    conn.close();
    return { ok: true };
  } catch (err) {
    return {
      ok: false,
      reason: reasonOf(err, options.timeoutMs, [
        options.signal ?? new AbortController().signal,
        deadline,
      ]),
    };
  }
}
