/**
 * A minimal HTTP/1.1 exchange over one connection the caller opened, for talking to kestrel:
 * one request with `Connection: close`, one response whose head is bounded in size and whose
 * body streams in bounded pieces (`Content-Length`, chunked, or until the connection closes),
 * at most `maxBytes` of it and no faster than `bytesPerSecond`. Nothing else: no redirects, no
 * proxies from the environment, no connection pool, no decompression. Timeouts are the
 * caller's (it closes the connection, which fails the pending read).
 *
 * @module
 */

/** One request. Header names and values must already be clean (no CR or LF). */
export interface Http1Request {
  method: string;
  /** Origin-form target: `/path?query`. */
  target: string;
  /** The `Host` header. */
  host: string;
  headers: Headers;
  body?: Uint8Array;
}

/** Bounds of one response. */
export interface Http1Bounds {
  /** Largest response head (status line and headers), bytes. */
  headBytes: number;
  /** Largest body, bytes; `null`: unbounded (a stream). */
  maxBytes: number | null;
  /** Largest piece read and passed on at once, bytes. */
  chunkBytes: number;
  /** Average body rate after the first second's worth, bytes/s; `null`: unbounded. */
  bytesPerSecond: number | null;
}

/** A response; `body` is `null` when it has none (HEAD, 204, 304). */
export interface Http1Response {
  status: number;
  statusText: string;
  headers: Headers;
  body: ReadableStream<Uint8Array> | null;
}

/** A protocol violation or a bound exceeded (the caller words it for the user). */
export class Http1Error extends Error {
  /** @param message What was wrong with the answer. */
  constructor(message: string) {
    super(message);
    this.name = "Http1Error";
  }
}

const CRLF = new Uint8Array([13, 10]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Reads from a connection through a small buffer. */
class Reader {
  #conn: Pick<Deno.Conn, "read">;
  #buf: Uint8Array = new Uint8Array(0);
  #chunk: number;

  constructor(conn: Pick<Deno.Conn, "read">, chunk: number) {
    this.#conn = conn;
    this.#chunk = chunk;
  }

  async #fill(): Promise<boolean> {
    const into = new Uint8Array(this.#chunk);
    const n = await this.#conn.read(into);
    if (n === null) return false;
    this.#buf = this.#buf.length === 0
      ? into.subarray(0, n)
      : concat(this.#buf, into.subarray(0, n));
    return true;
  }

  /** Bytes up to `delimiter` (consumed, not returned); at most `max` before it. */
  async until(delimiter: Uint8Array, max: number, what: string): Promise<Uint8Array> {
    let from = 0;
    for (;;) {
      const at = indexOf(this.#buf, delimiter, from);
      if (at >= 0) {
        if (at > max) break;
        const out = this.#buf.slice(0, at);
        this.#buf = this.#buf.subarray(at + delimiter.length);
        return out;
      }
      if (this.#buf.length >= max + delimiter.length) break;
      from = Math.max(0, this.#buf.length - delimiter.length + 1);
      if (!(await this.#fill())) {
        throw new Http1Error(`the connection closed in the ${what}`);
      }
    }
    throw new Http1Error(max === 0 ? `no ${what}` : `the ${what} is longer than ${max} bytes`);
  }

  /** Up to `max` bytes (at least one), `null` at the end of the connection. */
  async take(max: number): Promise<Uint8Array | null> {
    if (this.#buf.length === 0 && !(await this.#fill())) return null;
    const n = Math.min(max, this.#buf.length);
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }
}

function requestBytes(req: Http1Request): Uint8Array {
  if (!TOKEN.test(req.method)) throw new Http1Error(`bad method ${JSON.stringify(req.method)}`);
  if (!/^\/[\x21-\x7e]*$/.test(req.target)) {
    throw new Http1Error(`bad request target ${JSON.stringify(req.target)}`);
  }
  const lines = [`${req.method} ${req.target} HTTP/1.1`, `Host: ${req.host}`, "Connection: close"];
  for (const [name, value] of req.headers) {
    if (name === "host" || name === "connection" || name === "content-length") continue;
    if (name === "transfer-encoding" || /[\r\n]/.test(value)) continue;
    lines.push(`${name}: ${value}`);
  }
  const hasBody = req.body !== undefined && req.body.length > 0;
  if (hasBody || !["GET", "HEAD", "DELETE", "OPTIONS"].includes(req.method)) {
    lines.push(`Content-Length: ${req.body?.length ?? 0}`);
  }
  const head = new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`);
  return hasBody ? concat(head, req.body!) : head;
}

async function writeAll(conn: Pick<Deno.Conn, "write">, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

interface Head {
  status: number;
  statusText: string;
  headers: Headers;
}

function parseHead(raw: Uint8Array): Head {
  const lines = new TextDecoder("latin1").decode(raw).split("\r\n");
  const status = /^HTTP\/1\.[01] ([1-5]\d\d)(?: (.*))?$/.exec(lines[0] ?? "");
  if (!status) {
    throw new Http1Error(`not an HTTP/1.x status line: ${JSON.stringify(lines[0]?.slice(0, 80))}`);
  }
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    if (colon <= 0 || !TOKEN.test(name)) {
      throw new Http1Error(`malformed header line ${JSON.stringify(line.slice(0, 80))}`);
    }
    try {
      headers.append(name, line.slice(colon + 1).trim());
    } catch {
      throw new Http1Error(`malformed header ${name}`);
    }
  }
  return { status: Number(status[1]), statusText: status[2] ?? "", headers };
}

type Framing = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" } | {
  kind: "close";
};

function framing(method: string, head: Head): Framing {
  if (method === "HEAD" || [204, 205, 304].includes(head.status)) return { kind: "none" };
  const te = head.headers.get("transfer-encoding");
  if (te !== null) {
    head.headers.delete("content-length");
    return /(^|,)\s*chunked\s*$/i.test(te) ? { kind: "chunked" } : { kind: "close" };
  }
  const cl = head.headers.get("content-length");
  if (cl === null) return { kind: "close" };
  const values = new Set(cl.split(",").map((v) => v.trim()));
  const [only] = values;
  if (values.size !== 1 || !/^\d{1,15}$/.test(only!)) {
    throw new Http1Error(`bad content-length ${JSON.stringify(cl.slice(0, 40))}`);
  }
  head.headers.set("content-length", only!);
  return { kind: "length", length: Number(only) };
}

/** Yields the body's pieces as they arrive, each at most `bounds.chunkBytes`. */
async function* pieces(reader: Reader, how: Framing, chunk: number): AsyncGenerator<Uint8Array> {
  if (how.kind === "none") return;
  if (how.kind === "close") {
    for (;;) {
      const piece = await reader.take(chunk);
      if (piece === null) return;
      yield piece;
    }
  }
  if (how.kind === "length") {
    let left = how.length;
    while (left > 0) {
      const piece = await reader.take(Math.min(chunk, left));
      if (piece === null) throw new Http1Error(`the body ended ${left} bytes short`);
      left -= piece.length;
      yield piece;
    }
    return;
  }
  for (;;) {
    const line = new TextDecoder("latin1").decode(await reader.until(CRLF, 1024, "chunk size"));
    const size = /^([0-9a-fA-F]{1,12})\s*(;.*)?$/.exec(line);
    if (!size) throw new Http1Error(`bad chunk size ${JSON.stringify(line.slice(0, 40))}`);
    let left = parseInt(size[1]!, 16);
    if (left === 0) {
      // Trailers, ignored, up to the empty line.
      while ((await reader.until(CRLF, 8 * 1024, "trailers")).length > 0);
      return;
    }
    while (left > 0) {
      const piece = await reader.take(Math.min(chunk, left));
      if (piece === null) throw new Http1Error("the connection closed inside a chunk");
      left -= piece.length;
      yield piece;
    }
    await reader.until(CRLF, 0, "CRLF after a chunk");
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Sends `req` on `conn` and reads the response head; the body streams as it is read. `close`
 * is called once the body is done, failed or cancelled (the caller closes the connection).
 * Throws {@linkcode Http1Error} for a malformed head or one over its bound, and whatever the
 * connection throws.
 *
 * @example
 * ```ts ignore
 * import { exchange } from "./_http1.ts";
 * const conn = await Deno.connect({ hostname: "192.168.127.2", port: 12751 });
 * const res = await exchange(conn, {
 *   method: "GET", target: "/healthz", host: "192.168.127.2:12751", headers: new Headers(),
 * }, { headBytes: 65536, maxBytes: 65536, chunkBytes: 16384, bytesPerSecond: null }, () => conn.close());
 * ```
 */
export async function exchange(
  conn: Pick<Deno.Conn, "read" | "write">,
  req: Http1Request,
  bounds: Http1Bounds,
  close: () => void,
): Promise<Http1Response> {
  await writeAll(conn, requestBytes(req));
  const reader = new Reader(conn, bounds.chunkBytes);
  let head: Head;
  do {
    head = parseHead(
      await reader.until(new Uint8Array([13, 10, 13, 10]), bounds.headBytes, "response head"),
    );
  } while (head.status < 200 && head.status !== 101);
  if (head.status === 101) throw new Http1Error("kestrel switched protocols unasked");
  const how = framing(req.method, head);
  if (how.kind === "none") {
    close();
    return { ...head, body: null };
  }
  if (how.kind === "length" && bounds.maxBytes !== null && how.length > bounds.maxBytes) {
    throw new Http1Error(
      `the body is ${how.length} bytes, more than the ${bounds.maxBytes} allowed`,
    );
  }
  const source = pieces(reader, how, bounds.chunkBytes);
  const started = performance.now();
  let total = 0;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    close();
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await source.next();
        if (next.done) {
          finish();
          controller.close();
          return;
        }
        total += next.value.length;
        if (bounds.maxBytes !== null && total > bounds.maxBytes) {
          throw new Http1Error(`the body is longer than the ${bounds.maxBytes} bytes allowed`);
        }
        controller.enqueue(next.value);
        if (bounds.bytesPerSecond !== null) {
          // The first second's worth passes at once; then the average rate is held.
          const due = started + ((total - bounds.bytesPerSecond) / bounds.bytesPerSecond) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await sleep(Math.min(wait, 10_000));
        }
      } catch (err) {
        finish();
        controller.error(err);
      }
    },
    async cancel() {
      finish();
      await source.return(undefined).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return { ...head, body };
}
