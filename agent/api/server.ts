/**
 * kestrel's HTTP API server: `Deno.serve` on the address and port it is given (kestrel gives
 * the guest's eth0 address and the boot config's port, default {@linkcode AGENT_PORT}), bound
 * before the ready line is printed, stopped (with a bounded grace) on power-off.
 *
 * @module
 */
import { AGENT_PORT } from "../../schema/agent.ts";
import { VolantError } from "../../schema/error.ts";
import { errorResponse } from "./respond.ts";

/** Where the API listens. */
export interface ApiAddress {
  /** Address to bind; default `0.0.0.0` (kestrel itself always passes eth0's address). */
  hostname?: string;
  /** Port; default {@linkcode AGENT_PORT}. `0` picks a free one (tests). */
  port?: number;
}

/** A running API server. */
export interface ApiServer {
  /** The bound address. */
  readonly hostname: string;
  /** The bound port. */
  readonly port: number;
  /**
   * Stops accepting, lets requests in flight finish for up to `graceMs` (default 1000), then
   * resolves; never throws.
   */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Binds and starts serving `handler`; the socket is listening when this returns. Throws a
 * `network_error` {@linkcode VolantError} when the address cannot be bound.
 *
 * @example
 * ```ts ignore
 * import { startApi } from "./server.ts";
 * const api = startApi(() => new Response("hi"), { hostname: "127.0.0.1", port: 0 });
 * console.log(api.port);
 * await api.stop();
 * ```
 */
export function startApi(
  handler: (req: Request) => Response | Promise<Response>,
  address: ApiAddress = {},
): ApiServer {
  const hostname = address.hostname ?? "0.0.0.0";
  const port = address.port ?? AGENT_PORT;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname,
      port,
      onListen: () => {},
      onError: (err) => errorResponse(err),
    }, handler);
  } catch (err) {
    throw new VolantError(
      "network_error",
      `cannot serve the API on ${hostname}:${port}: ${err instanceof Error ? err.message : err}`,
      { hostname, port },
      { cause: err },
    );
  }
  let stopping: Promise<void> | undefined;
  return {
    hostname: server.addr.hostname,
    port: server.addr.port,
    stop(graceMs = 1000) {
      stopping ??= (async () => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const grace = new Promise<void>((r) => timer = setTimeout(r, graceMs));
        await Promise.race([server.shutdown().catch(() => {}), grace]);
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}
