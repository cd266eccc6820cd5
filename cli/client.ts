/**
 * A typed client for volantd's API over its unix socket or TCP, derived from the table of
 * operations: `client.call(op, params, body)` for every operation, its answer parsed with the
 * operation's schema. Error bodies become {@linkcode VolantError}s with the daemon's code and
 * message; a daemon that cannot be reached is `daemon_unreachable` with the address and the
 * fix.
 *
 * @module
 */
import { z } from "zod";
import {
  ErrorBody,
  type Health,
  type VmCreateInput,
  type VmList,
  type VmRecord,
  type VmState,
  VolantError,
} from "../schema/mod.ts";
import {
  type Operation,
  type OperationBody,
  type OperationOutput,
  type OperationParams,
  operationUrl,
} from "../schema/operation.ts";
import {
  CreateVm,
  DeleteVm,
  GetHealth,
  GetVm,
  ListVms,
  MCP_PATH,
  RestartVm,
  StartVm,
  StopVm,
  WaitVm,
} from "../schema/operations/mod.ts";

/** Default unix socket of volantd. */
export const DEFAULT_SOCKET = "/run/volant/volantd.sock";

/**
 * Where volantd listens: its unix socket (trusted by file permissions), or an
 * `http://host:port` base URL with the bearer token TCP listeners ask for.
 */
export type ApiTarget =
  | { kind: "unix"; socket: string }
  | { kind: "tcp"; base: string; token?: string };

/** Options of {@linkcode VolantClient.waitVm}. */
export interface WaitOptions {
  /** State to wait for; default `running`. */
  state?: VmState;
  /** How long the daemon waits, in milliseconds (at most 600000). */
  timeoutMs: number;
}

/**
 * Names a target for messages: `unix socket /run/volant/volantd.sock` or the URL.
 *
 * @example
 * ```ts
 * import { describeTarget } from "./client.ts";
 * console.assert(describeTarget({ kind: "tcp", base: "http://127.0.0.1:7777" }) ===
 *   "http://127.0.0.1:7777");
 * ```
 */
export function describeTarget(target: ApiTarget): string {
  return target.kind === "unix" ? `unix socket ${target.socket}` : target.base;
}

const OS_ERRORS: Record<string, string> = {
  "2": "the socket does not exist",
  "13": "permission denied (run volar as root, or as a member of the socket's group)",
  "111": "connection refused",
};

function unreachable(target: ApiTarget, err: unknown): VolantError {
  const text = String((err as Error)?.cause ?? err);
  const os = /os error (\d+)/.exec(text)?.[1];
  const cause = (os && OS_ERRORS[os]) ?? text.split("\n")[0]!.replace(/^(Type)?Error: /, "");
  const fix = os === "13"
    ? ""
    : "; is volantd running? Start it: sudo ./volant up, or systemctl start volantd";
  return new VolantError(
    "daemon_unreachable",
    `Cannot reach volantd at ${describeTarget(target)}: ${cause}${fix}`,
    { target: target.kind === "unix" ? target.socket : target.base, cause: text.split("\n")[0] },
    { cause: err },
  );
}

function badResponse(what: string, status: number, detail: string): VolantError {
  return new VolantError(
    "internal",
    `volantd answered ${what} with HTTP ${status} and a body volar does not understand: ${detail}`,
    { status },
  );
}

/** Per-call options of {@linkcode VolantClient}. */
export interface CallOptions {
  /** Ends the call (and a streamed answer) when aborted. */
  signal?: AbortSignal;
  /** The method, for an operation that takes any (the agent proxy); default GET. */
  method?: string;
  /** Extra request headers (e.g. the `Content-Type` of a raw body). */
  headers?: HeadersInit;
}

/**
 * volantd's API, typed from the table of operations (`schema/operations/`): `call` sends an
 * operation's parameters and body and parses its answer with the operation's own schema; `open`
 * gives a streamed or passed-through answer as it comes; `websocket` opens one. No caller
 * writes a path or a method. Close the client when done (it owns an HTTP client for the unix
 * socket).
 *
 * @example
 * ```ts ignore
 * import { VolantClient } from "./client.ts";
 * import { CreateVm, WaitVm } from "../schema/operations/mod.ts";
 * const client = new VolantClient({ kind: "unix", socket: "/run/volant/volantd.sock" });
 * try {
 *   await client.call(CreateVm, {}, { name: "web", memory_mb: 256 });
 *   const vm = await client.call(WaitVm, { name: "web", timeout_ms: 60_000 });
 *   console.log(vm.state, vm.boot_ms);
 * } finally {
 *   client.close();
 * }
 * ```
 */
export class VolantClient {
  /** Where requests go. */
  readonly target: ApiTarget;
  #http: Deno.HttpClient | undefined;
  #base: string;
  #auth: Record<string, string>;

  /** Creates a client; no connection is made until the first request. */
  constructor(target: ApiTarget) {
    this.target = target;
    if (target.kind === "unix") {
      this.#http = Deno.createHttpClient({ proxy: { transport: "unix", path: target.socket } });
      this.#base = "http://volantd";
    } else {
      this.#base = target.base.replace(/\/+$/, "");
    }
    this.#auth = target.kind === "tcp" && target.token
      ? { authorization: `Bearer ${target.token}` }
      : {};
  }

  /**
   * Calls `op` with its path parameters and query fields (`params`) and its body; resolves to
   * its answer, checked with the operation's response schema. Error answers reject with the
   * daemon's {@linkcode VolantError} (bad input: the same `invalid_argument` as REST and MCP).
   */
  async call<O extends Operation>(
    op: O,
    params: OperationParams<O>,
    body?: OperationBody<O>,
    options: CallOptions = {},
  ): Promise<OperationOutput<O>> {
    const res = await this.#fetch(op, params, body, options);
    const what = `${res.method} ${res.path.split("?")[0]}`;
    let text: string;
    try {
      text = await res.response.text();
    } catch (err) {
      throw unreachable(this.target, err);
    }
    let json: unknown;
    try {
      json = text === "" ? null : JSON.parse(text);
    } catch {
      throw badResponse(what, res.response.status, JSON.stringify(text.slice(0, 200)));
    }
    if (!res.response.ok) {
      const error = ErrorBody.safeParse(json);
      if (!error.success) throw badResponse(what, res.response.status, JSON.stringify(json));
      throw VolantError.fromBody(error.data);
    }
    const parsed = z.safeParse(op.response, json);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) =>
        `${i.path.join(".") || "(body)"}: ${i.message}`
      );
      throw badResponse(what, res.response.status, issues.join("; "));
    }
    return parsed.data as OperationOutput<O>;
  }

  /**
   * Calls `op` and resolves to its answer as it comes, for the caller to read: a stream
   * (events, followed logs, NDJSON progress) or a passed-through answer (actions, the agent
   * proxy). An error answer with an error body still rejects with the daemon's error.
   */
  async open<O extends Operation>(
    op: O,
    params: OperationParams<O>,
    body?: OperationBody<O>,
    options: CallOptions = {},
  ): Promise<Response> {
    return await this.#checked(await this.#fetch(op, params, body, options));
  }

  /**
   * Opens a WebSocket for `op` (the console) over the daemon's unix socket or TCP address. The
   * caller owns the socket; `close()` on this client must wait until it is closed.
   */
  websocket<O extends Operation & { stream: { kind: "websocket" } }>(
    op: O,
    params: OperationParams<O>,
  ): WebSocket {
    const url = `${this.#base.replace(/^http/, "ws")}${operationUrl(op, params)}`;
    return this.#http
      ? new WebSocket(url, { client: this.#http })
      : new WebSocket(url, { headers: this.#auth });
  }

  /**
   * Posts one JSON-RPC message to the daemon's MCP endpoint ({@linkcode MCP_PATH}); the answer
   * as it comes (JSON, or empty for a notification).
   */
  async mcp(message: string): Promise<Response> {
    return await this.#checked(
      await this.#send("POST", MCP_PATH, {
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: message,
      }),
    );
  }

  /** `GET /healthz`: daemon version, hypervisor, VM count. */
  health(): Promise<Health> {
    return this.call(GetHealth, {});
  }

  /** `GET /api/v1/vms`. */
  listVms(): Promise<VmList> {
    return this.call(ListVms, {});
  }

  /** `GET /api/v1/vms/:name`. */
  getVm(name: string): Promise<VmRecord> {
    return this.call(GetVm, { name });
  }

  /** `POST /api/v1/vms`: creates and boots a VM; resolves in state `starting`. */
  createVm(input: VmCreateInput): Promise<VmRecord> {
    return this.call(CreateVm, {}, input);
  }

  /** `POST /api/v1/vms/:name/start`: resolves in state `starting`. */
  startVm(name: string): Promise<VmRecord> {
    return this.call(StartVm, { name });
  }

  /** `POST /api/v1/vms/:name/stop`: resolves in state `stopped`. */
  stopVm(name: string): Promise<VmRecord> {
    return this.call(StopVm, { name });
  }

  /** `POST /api/v1/vms/:name/restart`: resolves in state `starting`. */
  restartVm(name: string): Promise<VmRecord> {
    return this.call(RestartVm, { name });
  }

  /** `DELETE /api/v1/vms/:name`: resolves to the VM's last record. */
  deleteVm(name: string): Promise<VmRecord> {
    return this.call(DeleteVm, { name });
  }

  /**
   * `GET /api/v1/vms/:name/wait`: resolves once the VM is in the state; rejects with
   * `timeout`, or `invalid_state` when the state can no longer follow (e.g. it crashed).
   */
  waitVm(name: string, options: WaitOptions): Promise<VmRecord> {
    return this.call(WaitVm, {
      name,
      state: options.state ?? "running",
      timeout_ms: Math.max(0, Math.round(options.timeoutMs)),
    });
  }

  /** Releases the HTTP client. */
  close(): void {
    this.#http?.close();
    this.#http = undefined;
  }

  /** Sends a call of `op`: its URL from the parameters, a JSON body (or a raw one) as given. */
  #fetch(
    op: Operation,
    params: Record<string, unknown>,
    body: unknown,
    options: CallOptions,
  ): Promise<{ response: Response; method: string; path: string }> {
    const method = op.method === "ANY" ? (options.method ?? "GET") : op.method;
    const headers = new Headers(options.headers);
    let payload: BodyInit | undefined;
    if (body !== undefined && op.rawBody) {
      payload = body as BodyInit;
    } else if (body !== undefined) {
      headers.set("content-type", "application/json");
      payload = JSON.stringify(body);
    }
    return this.#send(method, operationUrl(op, params), {
      headers,
      ...(payload === undefined ? {} : { body: payload }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** An answer as it comes, but an error answer with an error body rejects with that error. */
  async #checked(
    { response: res, method, path }: { response: Response; method: string; path: string },
  ): Promise<Response> {
    if (!res.ok && res.headers.get("content-type")?.includes("application/json")) {
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        throw badResponse(`${method} ${path}`, res.status, JSON.stringify(text.slice(0, 200)));
      }
      const error = ErrorBody.safeParse(json);
      if (error.success) throw VolantError.fromBody(error.data);
      return new Response(text, { status: res.status, headers: res.headers });
    }
    return res;
  }

  async #send(
    method: string,
    path: string,
    init: RequestInit,
  ): Promise<{ response: Response; method: string; path: string }> {
    const headers = new Headers(init.headers);
    for (const [k, v] of Object.entries(this.#auth)) headers.set(k, v);
    const full: RequestInit & { client?: Deno.HttpClient } = { ...init, method, headers };
    if (this.#http) full.client = this.#http;
    try {
      return { response: await fetch(`${this.#base}${path}`, full), method, path };
    } catch (err) {
      throw unreachable(this.target, err);
    }
  }
}
