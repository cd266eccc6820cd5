/**
 * One `GET /healthz` to kestrel in a guest, over a plain TCP connection: no proxy from the
 * environment, no connection pool, a hard deadline per request. The answer must be a 200 with
 * a body that parses as {@linkcode AgentHealth}.
 *
 * @module
 */
import { concatBytes } from "./_bytes.ts";
import { AGENT_PORT, AgentHealthWithWorkload } from "../../schema/mod.ts";
import type { AgentProbe, ProbeOptions } from "./host_network.ts";

const MAX_RESPONSE = 64 * 1024;

function decodeChunked(body: Uint8Array): Uint8Array | undefined {
  const out: number[] = [];
  let at = 0;
  const text = new TextDecoder("latin1");
  while (at < body.length) {
    const eol = body.indexOf(0x0a, at);
    if (eol < 0) return undefined;
    const size = parseInt(text.decode(body.subarray(at, eol)).trim().split(";")[0]!, 16);
    if (!Number.isFinite(size)) return undefined;
    if (size === 0) return Uint8Array.from(out);
    const start = eol + 1;
    if (start + size > body.length) return undefined;
    out.push(...body.subarray(start, start + size));
    at = start + size + 2; // CRLF after the chunk
  }
  return undefined;
}

/**
 * Parses a raw HTTP/1.x response into status and body (chunked or not).
 *
 * @example
 * ```ts
 * import { parseHttpResponse } from "./agent_probe.ts";
 * const raw = new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
 * console.assert(parseHttpResponse(raw)?.status === 200);
 * ```
 */
export function parseHttpResponse(
  raw: Uint8Array,
): { status: number; body: string } | undefined {
  const split = raw.findIndex((_, i) =>
    raw[i] === 13 && raw[i + 1] === 10 && raw[i + 2] === 13 && raw[i + 3] === 10
  );
  if (split < 0) return undefined;
  const head = new TextDecoder("latin1").decode(raw.subarray(0, split)).split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "");
  if (!status) return undefined;
  const headers = new Map(
    head.slice(1).map((line) => {
      const colon = line.indexOf(":");
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const;
    }),
  );
  let body: Uint8Array | undefined = raw.subarray(split + 4);
  if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) body = decodeChunked(body);
  else if (headers.has("content-length")) {
    const length = Number(headers.get("content-length"));
    if (!Number.isInteger(length) || body.length < length) return undefined;
    body = body.subarray(0, length);
  }
  if (body === undefined) return undefined;
  return { status: Number(status[1]), body: new TextDecoder().decode(body) };
}

async function exchange(conn: Deno.TcpConn, request: string): Promise<Uint8Array> {
  const bytes = new TextEncoder().encode(request);
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(16 * 1024);
  while (total < MAX_RESPONSE) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  return concatBytes(chunks);
}

function reasonOf(err: unknown, timeoutMs: number, signals: AbortSignal[]): string {
  if (signals[0]?.aborted) return "aborted";
  if (signals[1]?.aborted) return `no answer within ${timeoutMs} ms`;
  if (err instanceof Deno.errors.ConnectionRefused) return "connection refused";
  return err instanceof Error ? err.message : String(err);
}

/**
 * Asks kestrel at `ip` for `/healthz` once (from the caller's network namespace).
 *
 * @example
 * ```ts ignore
 * import { probeAgent } from "./agent_probe.ts";
 * const probe = await probeAgent("192.168.127.2", { timeoutMs: 500 });
 * if (probe.ok) console.log(probe.health.kestrel_version);
 * ```
 */
export async function probeAgent(
  ip: string,
  options: ProbeOptions & { port?: number },
): Promise<AgentProbe> {
  const port = options.port ?? AGENT_PORT;
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  const why = [options.signal ?? new AbortController().signal, deadline];
  let conn: Deno.TcpConn | undefined;
  const close = () => {
    try {
      conn?.close();
    } catch {
      // Closed already.
    }
  };
  signal.addEventListener("abort", close, { once: true });
  try {
    if (signal.aborted) return { ok: false, reason: reasonOf(null, options.timeoutMs, why) };
    conn = await Deno.connect({ hostname: ip, port, signal });
    const raw = await exchange(
      conn,
      `GET /healthz HTTP/1.1\r\nHost: ${ip}:${port}\r\nAccept: application/json\r\n` +
        "Connection: close\r\n\r\n",
    );
    const response = parseHttpResponse(raw);
    if (!response) return { ok: false, reason: "not an HTTP response" };
    if (response.status !== 200) return { ok: false, reason: `HTTP ${response.status}` };
    let json: unknown;
    try {
      json = JSON.parse(response.body);
    } catch {
      return { ok: false, reason: "the body is not JSON" };
    }
    const health = AgentHealthWithWorkload.safeParse(json);
    if (!health.success) return { ok: false, reason: "the body is not an AgentHealth" };
    return { ok: true, health: health.data };
  } catch (err) {
    return { ok: false, reason: reasonOf(err, options.timeoutMs, why) };
  } finally {
    signal.removeEventListener("abort", close);
    close();
  }
}

/**
 * One TCP connection to `ip:port`, closed at once: whether something listens there.
 *
 * @example
 * ```ts ignore
 * import { probeTcp } from "./agent_probe.ts";
 * const r = await probeTcp("192.168.127.2", 80, { timeoutMs: 500 });
 * ```
 */
export async function probeTcp(
  ip: string,
  port: number,
  options: ProbeOptions,
): Promise<{ ok: true } | { ok: false; reason: string }> {
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
