/** Test helpers for the artifact cache: temp dirs, digests, a loopback HTTP server. @module */
import { createHash } from "node:crypto";
import { equal, match, ok, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/error.ts";

/** The `sha256:<hex>` of `bytes`. */
export function checksumOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** `size` bytes of a non-repeating pattern seeded by `seed`. */
export function patternBytes(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Runs `fn` with a fresh temp dir that is removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "volant-artifacts-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The names in a directory (empty when it does not exist), sorted. */
export async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** A running loopback HTTP server. */
export interface TestServer {
  /** `http://127.0.0.1:<port>`. */
  base: string;
  /** Requests received so far. */
  requests: number;
  /** The most requests in flight at once. */
  maxInFlight: number;
  /** Stops the server. */
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1 with a random port, counting requests. */
export function serve(handler: (req: Request) => Response | Promise<Response>): TestServer {
  let inFlight = 0;
  const state = { requests: 0, maxInFlight: 0 };
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
    onError: () => new Response("handler failed", { status: 500 }),
  }, async (req) => {
    state.requests++;
    state.maxInFlight = Math.max(state.maxInFlight, ++inFlight);
    try {
      return await handler(req);
    } finally {
      inFlight--;
    }
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    get requests() {
      return state.requests;
    },
    get maxInFlight() {
      return state.maxInFlight;
    },
    close: () => server.shutdown(),
  };
}

/** The paths this process holds open (from `/proc/self/fd`). */
export async function openPaths(): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir("/proc/self/fd")) {
    const target = await Deno.readLink(`/proc/self/fd/${e.name}`).catch(() => null);
    if (target !== null) out.push(target);
  }
  return out;
}

/**
 * A body that yields `bytes` in `chunk`-sized pieces, pausing `delayMs` between them;
 * `onCancel` runs when the client goes away before the end.
 */
export function slowBody(
  bytes: Uint8Array,
  chunk: number,
  delayMs: number,
  onCancel: () => void = () => {},
): ReadableStream {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    cancel: onCancel,
    async pull(controller) {
      if (at >= bytes.length) return controller.close();
      if (at > 0) await new Promise((r) => setTimeout(r, delayMs));
      controller.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

/** Asserts that `promise` rejects with a {@linkcode VolantError} of `code` whose message matches. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  ...patterns: (string | RegExp)[]
): Promise<VolantError> {
  let caught: unknown;
  await rejects(promise, (e) => {
    caught = e;
    return true;
  });
  ok(caught instanceof VolantError, `expected a VolantError, got ${caught}`);
  equal(caught.code, code, caught.message);
  for (const p of patterns) {
    if (typeof p === "string") ok(caught.message.includes(p), `${caught.message} lacks ${p}`);
    else match(caught.message, p);
  }
  return caught;
}
