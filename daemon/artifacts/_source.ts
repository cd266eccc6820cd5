/**
 * Artifact sources: an `http(s)://` URL (streamed with fetch), a `file:///` URL or an absolute
 * path (streamed from the file). Each yields its bytes in chunks and throws a
 * {@linkcode VolantError} naming the source and the cause.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { VolantError } from "../../schema/error.ts";

/** An opened source: its size when known and its bytes. */
export interface Source {
  /** The byte count announced up front (`Content-Length`, the file's size), or `null`. */
  total: number | null;
  /**
   * The bytes, in order. A chunk is only valid until the next one is requested. Leaving the
   * loop early (break or throw) closes the connection or the file.
   */
  chunks: AsyncIterable<Uint8Array>;
  /** Releases the connection or the file; safe to call at any time, more than once. */
  cancel(): Promise<void>;
}

/** Options of {@linkcode openSource}. */
export interface OpenSourceOptions {
  /** Aborts the transfer; the error thrown is the signal's reason. */
  signal?: AbortSignal | undefined;
  /** An http source fails with `timeout` when no byte arrives for this long. */
  idleTimeoutMs: number;
}

const FILE_CHUNK = 1 << 20;

/**
 * Opens `url` for reading: `http://`, `https://`, `file:///abs` or `/abs`.
 *
 * @example
 * ```ts ignore
 * import { openSource } from "./_source.ts";
 * const source = await openSource("/etc/hostname", { idleTimeoutMs: 60_000 });
 * for await (const chunk of source.chunks) console.log(chunk.length);
 * ```
 */
export function openSource(url: string, options: OpenSourceOptions): Promise<Source> {
  if (/^https?:\/\//.test(url)) return openHttp(url, options);
  if (url.startsWith("file://")) return openFile(url, filePath(url), options.signal);
  if (url.startsWith("/")) return openFile(url, url, options.signal);
  return Promise.reject(
    new VolantError(
      "invalid_argument",
      `url: ${JSON.stringify(url)} must be an http(s):// URL, a file:/// URL or an absolute path`,
      { field: "url", value: url },
    ),
  );
}

function filePath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch (e) {
    throw new VolantError(
      "invalid_argument",
      `url: ${JSON.stringify(url)} is not a valid file:/// URL (${causeText(e)})`,
      { field: "url", value: url },
      { cause: e },
    );
  }
}

/** The message of an error and of its causes, e.g. `error sending request: Connection refused`. */
export function causeText(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e !== undefined && parts.length < 4;) {
    const text = e instanceof Error ? e.message : String(e);
    if (!parts.some((p) => p.includes(text))) parts.push(text);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}

async function openFile(
  url: string,
  path: string,
  signal: AbortSignal | undefined,
): Promise<Source> {
  signal?.throwIfAborted();
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new VolantError(
        "artifact_unavailable",
        `Artifact source ${path} does not exist; check the manifest's url`,
        { url, path },
        { cause: e },
      );
    }
    throw new VolantError(
      "artifact_unavailable",
      `Artifact source ${path} cannot be opened: ${causeText(e)}`,
      { url, path },
      { cause: e },
    );
  }
  const info = await file.stat();
  if (!info.isFile) {
    file.close();
    throw new VolantError(
      "invalid_argument",
      `Artifact source ${path} is not a regular file`,
      { url, path },
    );
  }
  let open = true;
  const close = () => {
    if (open) file.close();
    open = false;
  };
  return {
    total: info.size,
    chunks: readFile(file, path, signal, close),
    cancel: () => Promise.resolve(close()),
  };
}

async function* readFile(
  file: Deno.FsFile,
  path: string,
  signal: AbortSignal | undefined,
  close: () => void,
): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(FILE_CHUNK);
  try {
    while (true) {
      signal?.throwIfAborted();
      let n: number | null;
      try {
        n = await file.read(buffer);
      } catch (e) {
        throw new VolantError(
          "internal",
          `Reading artifact source ${path} failed: ${causeText(e)}`,
          { path },
          { cause: e },
        );
      }
      if (n === null) return;
      yield buffer.subarray(0, n);
    }
  } finally {
    close();
  }
}

async function openHttp(url: string, options: OpenSourceOptions): Promise<Source> {
  // The idle timeout covers the wait for the headers here, then each chunk in readBody.
  const headers = new AbortController();
  const timer = setTimeout(
    () => headers.abort(new DOMException("no answer", "TimeoutError")),
    options.idleTimeoutMs,
  );
  const signal = options.signal
    ? AbortSignal.any([options.signal, headers.signal])
    : headers.signal;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { "accept-encoding": "identity" },
      redirect: "follow",
      signal,
    });
  } catch (e) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (headers.signal.aborted) {
      throw new VolantError(
        "timeout",
        `No answer from ${url} within ${options.idleTimeoutMs} ms`,
        { url },
        { cause: e },
      );
    }
    throw new VolantError(
      "artifact_unavailable",
      `Cannot download ${url}: ${causeText(e)}`,
      { url },
      { cause: e },
    );
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    throw new VolantError(
      "artifact_unavailable",
      `Cannot download ${url}: the server answered ${response.status} ${response.statusText}`
        .trimEnd(),
      { url, status: response.status },
    );
  }
  const total = announcedLength(response.headers);
  const body = response.body;
  return {
    total,
    chunks: readBody(url, body, total, options),
    cancel: () => body.locked ? Promise.resolve() : body.cancel().catch(() => {}),
  };
}

function announcedLength(headers: Headers): number | null {
  const encoding = headers.get("content-encoding");
  if (encoding !== null && encoding !== "identity") return null;
  const length = headers.get("content-length");
  return length !== null && /^\d+$/.test(length) ? Number(length) : null;
}

async function* readBody(
  url: string,
  body: ReadableStream<Uint8Array>,
  total: number | null,
  options: OpenSourceOptions,
): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let received = 0;
  let done = false;
  try {
    while (true) {
      const chunk = await readWithin(reader, options, () =>
        new VolantError(
          "timeout",
          `Download of ${url} stalled: no data for ${options.idleTimeoutMs} ms after ${received} bytes`,
          { url, received, total },
        ));
      if (chunk === null) break;
      received += chunk.length;
      yield chunk;
    }
    done = true;
  } catch (e) {
    if (e instanceof VolantError || options.signal?.aborted) throw e;
    throw new VolantError(
      "artifact_unavailable",
      `Download of ${url} failed after ${received}${total === null ? "" : ` of ${total}`} bytes: ` +
        causeText(e),
      { url, received, total },
      { cause: e },
    );
  } finally {
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  if (total !== null && received !== total) {
    throw new VolantError(
      "artifact_unavailable",
      `Download of ${url} was cut short: received ${received} of ${total} bytes`,
      { url, received, total },
    );
  }
}

async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  options: OpenSourceOptions,
  stalled: () => VolantError,
): Promise<Uint8Array | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(stalled()), options.idleTimeoutMs);
    onAbort = () => reject(options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
  });
  try {
    const { done, value } = await Promise.race([reader.read(), guard]);
    return done ? null : value;
  } finally {
    clearTimeout(timer);
    if (onAbort) options.signal?.removeEventListener("abort", onAbort);
  }
}
