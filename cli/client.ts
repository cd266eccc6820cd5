/**
 * A typed client for volantd's REST API over its unix socket or TCP. Every response is
 * parsed with the shared zod schemas; error bodies become {@linkcode VolantError}s with the
 * daemon's code and message; a daemon that cannot be reached is `daemon_unreachable` with
 * the address and the fix.
 *
 * @module
 */
import type { z } from "zod";
import {
  ErrorBody,
  Health,
  type VmCreateInput,
  VmList,
  VmRecord,
  type VmState,
  VolantError,
} from "../schema/mod.ts";
import { type Operation, operationPath } from "../schema/operation.ts";

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

/**
 * The REST API of volantd, typed. Close it when done (it owns an HTTP client for the unix
 * socket).
 *
 * @example
 * ```ts ignore
 * import { VolantClient } from "./client.ts";
 * const client = new VolantClient({ kind: "unix", socket: "/run/volant/volantd.sock" });
 * try {
 *   await client.createVm({ name: "web", memory_mb: 256 });
 *   const vm = await client.waitVm("web", { timeoutMs: 60_000 });
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

  /** `GET /healthz`: daemon version, hypervisor, VM count. */
  health(): Promise<Health> {
    return this.#call("GET", "/healthz", Health);
  }

  /** `GET /api/v1/vms`. */
  listVms(): Promise<VmList> {
    return this.#call("GET", "/api/v1/vms", VmList);
  }

  /** `GET /api/v1/vms/:name`. */
  getVm(name: string): Promise<VmRecord> {
    return this.#call("GET", vmPath(name), VmRecord);
  }

  /** `POST /api/v1/vms`: creates and boots a VM; resolves in state `starting`. */
  createVm(input: VmCreateInput): Promise<VmRecord> {
    return this.#call("POST", "/api/v1/vms", VmRecord, input);
  }

  /** `POST /api/v1/vms/:name/start`: resolves in state `starting`. */
  startVm(name: string): Promise<VmRecord> {
    return this.#call("POST", `${vmPath(name)}/start`, VmRecord);
  }

  /** `POST /api/v1/vms/:name/stop`: resolves in state `stopped`. */
  stopVm(name: string): Promise<VmRecord> {
    return this.#call("POST", `${vmPath(name)}/stop`, VmRecord);
  }

  /** `POST /api/v1/vms/:name/restart`: resolves in state `starting`. */
  restartVm(name: string): Promise<VmRecord> {
    return this.#call("POST", `${vmPath(name)}/restart`, VmRecord);
  }

  /** `DELETE /api/v1/vms/:name`: resolves to the VM's last record. */
  deleteVm(name: string): Promise<VmRecord> {
    return this.#call("DELETE", vmPath(name), VmRecord);
  }

  /**
   * `GET /api/v1/vms/:name/wait`: resolves once the VM is in the state; rejects with
   * `timeout`, or `invalid_state` when the state can no longer follow (e.g. it crashed).
   */
  waitVm(name: string, options: WaitOptions): Promise<VmRecord> {
    const query = new URLSearchParams({
      state: options.state ?? "running",
      timeout_ms: String(Math.max(0, Math.round(options.timeoutMs))),
    });
    return this.#call("GET", `${vmPath(name)}/wait?${query}`, VmRecord);
  }

  /**
   * An operation declared in `schema/operation.ts`, with its path parameters and body; the
   * answer checked with the operation's response schema.
   */
  call<O extends Operation & { response: z.ZodType }>(
    op: O,
    params: Record<string, string>,
    body?: unknown,
  ): Promise<z.infer<O["response"]>> {
    const schema: O["response"] = op.response;
    return this.#call(op.method, operationPath(op, params), schema, body);
  }

  /** Any JSON call of the API, its answer checked with `schema`. */
  request<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    body?: unknown,
  ): Promise<z.infer<S>> {
    return this.#call(method, path, schema, body);
  }

  /**
   * A call whose answer is read by the caller (streams, pass-through bodies). Error answers
   * (4xx/5xx with an error body) still throw the daemon's error.
   */
  async raw(method: string, path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    for (const [k, v] of Object.entries(this.#auth)) headers.set(k, v);
    const full: RequestInit & { client?: Deno.HttpClient } = { ...init, method, headers };
    if (this.#http) full.client = this.#http;
    let res: Response;
    try {
      res = await fetch(`${this.#base}${path}`, full);
    } catch (err) {
      throw unreachable(this.target, err);
    }
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

  /**
   * Opens a WebSocket to `path` on the daemon (over its unix socket or TCP address). The caller
   * owns the socket; `close()` on this client must wait until it is closed.
   */
  websocket(path: string): WebSocket {
    const url = `${this.#base.replace(/^http/, "ws")}${path}`;
    return this.#http
      ? new WebSocket(url, { client: this.#http })
      : new WebSocket(url, { headers: this.#auth });
  }

  /** Releases the HTTP client. */
  close(): void {
    this.#http?.close();
    this.#http = undefined;
  }

  async #call<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    body?: unknown,
  ): Promise<z.infer<S>> {
    const init: RequestInit & { client?: Deno.HttpClient } = { method, headers: this.#auth };
    if (this.#http) init.client = this.#http;
    if (body !== undefined) {
      init.headers = { ...this.#auth, "content-type": "application/json" };
      init.body = JSON.stringify(body);
    }
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.#base}${path}`, init);
      text = await res.text();
    } catch (err) {
      throw unreachable(this.target, err);
    }
    const what = `${method} ${path.split("?")[0]}`;
    let json: unknown;
    try {
      json = text === "" ? null : JSON.parse(text);
    } catch {
      throw badResponse(what, res.status, JSON.stringify(text.slice(0, 200)));
    }
    if (!res.ok) {
      const error = ErrorBody.safeParse(json);
      if (!error.success) throw badResponse(what, res.status, JSON.stringify(json));
      throw VolantError.fromBody(error.data);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) =>
        `${i.path.join(".") || "(body)"}: ${i.message}`
      );
      throw badResponse(what, res.status, issues.join("; "));
    }
    return parsed.data;
  }
}

function vmPath(name: string): string {
  return `/api/v1/vms/${encodeURIComponent(name)}`;
}
