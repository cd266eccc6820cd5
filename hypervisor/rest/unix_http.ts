/**
 * HTTP/1.1 over a unix socket, the transport of Cloud Hypervisor's and Firecracker's APIs: one
 * request per connection (`fetch` through a `Deno.createHttpClient` whose proxy is the socket),
 * JSON bodies, a deadline per request, and error answers turned into `VolantError`s carrying
 * the VMM's own words. Shared by both REST drivers.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";

/** HTTP methods the REST drivers use. */
export type HttpMethod = "GET" | "PUT" | "PATCH";

/** One request to a VMM's API. */
export interface UnixHttpRequest {
  method: HttpMethod;
  /** Absolute path with the API's base, e.g. `/api/v1/vm.boot` or `/actions`. */
  path: string;
  /** Sent as JSON when present. */
  body?: unknown;
  /** Deadline for the whole exchange, connection included. */
  timeoutMs: number;
}

/** A VMM's answer. */
export interface UnixHttpResponse {
  status: number;
  /** The raw body ("" for 204). */
  text: string;
}

/**
 * Why a request got no answer: the socket is missing or refuses (`unreachable`), the
 * connection closed early (`closed`) or the deadline passed (`timeout`).
 */
export type UnixHttpFailure = "unreachable" | "closed" | "timeout";

/** The messages along an error's cause chain. */
function messages(err: unknown): string[] {
  const out: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 5 && e !== undefined; i++) {
    out.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return out;
}

/** What went wrong, from the innermost message ("…(Connect): No such file…" → "No such file…"). */
function rootCause(err: unknown): string {
  const text = messages(err).at(-1) ?? "";
  const at = text.lastIndexOf("): ");
  return at >= 0 ? text.slice(at + 3) : text;
}

function failureOf(err: unknown): UnixHttpFailure {
  if (err instanceof DOMException && err.name === "TimeoutError") return "timeout";
  const text = messages(err).join("\n");
  return /\(Connect\)|No such file|Connection refused/i.test(text) ? "unreachable" : "closed";
}

/**
 * Sends one request to the HTTP server on the unix socket `socket` and reads the whole answer.
 * A request that gets no answer throws a `VolantError` (`timeout` when the deadline passed,
 * `vmm_failed` otherwise) whose `details.failure` is a {@linkcode UnixHttpFailure}.
 *
 * @example
 * ```ts ignore
 * import { unixHttp } from "./unix_http.ts";
 * const answer = await unixHttp("/run/volant/vms/web/ch.sock", {
 *   method: "GET",
 *   path: "/api/v1/vmm.ping",
 *   timeoutMs: 2_000,
 * });
 * console.log(answer.status, JSON.parse(answer.text).version);
 * ```
 */
export async function unixHttp(
  socket: string,
  request: UnixHttpRequest,
): Promise<UnixHttpResponse> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  const headers: Record<string, string> = { accept: "application/json" };
  const init: RequestInit & { client: Deno.HttpClient } = {
    client,
    method: request.method,
    headers,
    signal: AbortSignal.timeout(request.timeoutMs),
  };
  if (request.body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(request.body);
  }
  try {
    const response = await fetch(`http://localhost${request.path}`, init);
    return { status: response.status, text: await response.text() };
  } catch (err) {
    const failure = failureOf(err);
    const what = `${request.method} ${request.path} on ${socket}`;
    if (failure === "timeout") {
      throw new VolantError(
        "timeout",
        `No answer to ${what} within ${request.timeoutMs} ms`,
        { socket, method: request.method, path: request.path, failure },
        { cause: err },
      );
    }
    throw new VolantError(
      "vmm_failed",
      `No answer to ${what}: ${rootCause(err)}`,
      { socket, method: request.method, path: request.path, failure },
      { cause: err },
    );
  } finally {
    client.close();
  }
}

/**
 * The VMM's own words from an error body: Cloud Hypervisor answers a JSON array of strings
 * (the error chain, outermost first), Firecracker `{"fault_message": "…"}`; anything else is
 * shown as text.
 *
 * @example
 * ```ts
 * import { vmmErrorText } from "./unix_http.ts";
 * console.assert(vmmErrorText('["Error from API","The VM could not boot"]') ===
 *   "Error from API: The VM could not boot");
 * console.assert(vmmErrorText('{"fault_message":"Invalid drive"}') === "Invalid drive");
 * ```
 */
export function vmmErrorText(text: string): string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return text.trim().slice(0, 2_000) || "(empty body)";
  }
  if (Array.isArray(body) && body.every((s) => typeof s === "string")) return body.join(": ");
  if (body !== null && typeof body === "object" && "fault_message" in body) {
    return String((body as { fault_message: unknown }).fault_message);
  }
  return JSON.stringify(body).slice(0, 2_000);
}

/**
 * A `VolantError` for a non-2xx answer, carrying the VMM's own message. The code follows the
 * status: 400 `invalid_argument` (the VMM refused the request or configuration), 404 and 405
 * `invalid_state` (no VM, or not in a state that allows it), 409 `already_exists`, anything
 * else `vmm_failed`.
 *
 * @example
 * ```ts
 * import { restApiError } from "./unix_http.ts";
 * const err = restApiError("Firecracker", { method: "PUT", path: "/actions" }, {
 *   status: 400,
 *   text: '{"fault_message":"Cannot start microvm without kernel configuration."}',
 * });
 * console.assert(err.code === "invalid_argument" && err.message.includes("without kernel"));
 * ```
 */
export function restApiError(
  label: string,
  request: { method: HttpMethod; path: string },
  response: UnixHttpResponse,
): VolantError {
  const code = response.status === 400
    ? "invalid_argument"
    : response.status === 404 || response.status === 405
    ? "invalid_state"
    : response.status === 409
    ? "already_exists"
    : "vmm_failed";
  const message = vmmErrorText(response.text);
  return new VolantError(
    code,
    `${label} refused ${request.method} ${request.path} (HTTP ${response.status}): ${message}`,
    { method: request.method, path: request.path, status: response.status, vmm: message },
  );
}

/**
 * Sends one request with {@linkcode unixHttp} and returns the parsed JSON answer (undefined for
 * an empty body, e.g. 204). A non-2xx answer throws {@linkcode restApiError} naming `label`.
 *
 * @example
 * ```ts ignore
 * import { restJson } from "./unix_http.ts";
 * const info = await restJson<{ state: string }>("Firecracker", "/run/volant/vms/web/fc.sock", {
 *   method: "GET",
 *   path: "/",
 *   timeoutMs: 2_000,
 * });
 * console.log(info.state);
 * ```
 */
export async function restJson<T = unknown>(
  label: string,
  socket: string,
  request: UnixHttpRequest,
): Promise<T> {
  const response = await unixHttp(socket, request);
  if (response.status < 200 || response.status > 299) {
    throw restApiError(label, { method: request.method, path: request.path }, response);
  }
  return (response.text === "" ? undefined : JSON.parse(response.text)) as T;
}
