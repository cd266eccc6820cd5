/**
 * kestrel's API as a guest's identity can change it: one handler behind the VM's secret, which
 * can be swapped (the old secret is refused from the next request on), served on an address
 * that can be moved (the listener on the old address is stopped, one on the new is started).
 *
 * @module
 */
import { requireSecret } from "../api/auth.ts";
import { type ApiAddress, type ApiServer, startApi } from "../api/server.ts";

/**
 * How long requests in flight on the old address may finish when the API moves, in ms: none.
 * A move is a new identity, applied while the NIC is disconnected: a connection on the old
 * address belongs to the snapshot's past (the parent's daemon peer) and can never complete,
 * and waiting for it cost every clone half a second.
 */
export const REBIND_GRACE_MS = 0;

/**
 * The API's secret and listener, both replaceable.
 *
 * @example
 * ```ts ignore
 * import { ApiBinding } from "./api_binding.ts";
 * const api = new ApiBinding(router, secret);
 * api.listen({ hostname: "10.0.0.2", port: 12751 });
 * api.setSecret(newSecret);
 * await api.rebind({ hostname: "10.0.0.3", port: 12751 });
 * await api.stop();
 * ```
 */
export class ApiBinding {
  readonly #handler: (req: Request) => Promise<Response>;
  readonly #start: typeof startApi;
  #secret: string | undefined;
  #server: ApiServer | undefined;

  /**
   * `handler` behind `secret` (`undefined`: every request refused); nothing listens until
   * {@linkcode ApiBinding.listen}. `start` binds (tests); default {@linkcode startApi}.
   */
  constructor(
    handler: (req: Request) => Response | Promise<Response>,
    secret: string | undefined,
    start: typeof startApi = startApi,
  ) {
    this.#secret = secret;
    this.#start = start;
    this.#handler = requireSecret(() => this.#secret, handler);
  }

  /** The listener now; undefined before `listen`, after `stop` or a failed `rebind`. */
  get server(): ApiServer | undefined {
    return this.#server;
  }

  /** Replaces the secret: from the next request on only `secret` is accepted. */
  setSecret(secret: string | undefined): void {
    this.#secret = secret;
  }

  /** Starts listening on `address`; throws a `network_error` when it cannot be bound. */
  listen(address: ApiAddress): ApiServer {
    if (this.#server !== undefined) {
      throw new Error(`the API already listens on ${this.#server.hostname}:${this.#server.port}`);
    }
    this.#server = this.#start(this.#handler, address);
    return this.#server;
  }

  /**
   * Moves the API to `address`: stops the listener (requests in flight get `graceMs`), then
   * listens on the new address. Throws when the new one cannot be bound (nothing listens then).
   */
  async rebind(address: ApiAddress, graceMs = REBIND_GRACE_MS): Promise<ApiServer> {
    const old = this.#server;
    this.#server = undefined;
    await old?.stop(graceMs);
    return this.listen(address);
  }

  /** Stops listening (bounded, see `ApiServer.stop`); never throws. */
  async stop(graceMs?: number): Promise<void> {
    const old = this.#server;
    this.#server = undefined;
    await old?.stop(graceMs);
  }
}
