/**
 * Test helpers: a throwaway network namespace per test (`volant-t-<random>`, `lo` up, deleted
 * afterwards), `ip -j` output parsed, and a guard that the root namespace's links did not
 * change. Every test that creates links goes through {@linkcode withTestNamespace}.
 *
 * @module
 */
import assert from "node:assert/strict";
import { currentNetns } from "./netns.ts";

/** Whether the tests can touch the kernel: root, `ip` present, `/dev/net/tun` present. */
export const CAN_NETNS: boolean = (() => {
  try {
    if (Deno.uid() !== 0) return false;
    Deno.statSync("/dev/net/tun");
    return new Deno.Command("ip", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

/** Why kernel tests are skipped when {@linkcode CAN_NETNS} is false. */
export const NETNS_SKIP = "needs root, iproute2 and /dev/net/tun to create network namespaces";

/**
 * Registers a test that needs the kernel (namespaces, links); when it cannot run here it is
 * registered as ignored with the reason in its name.
 */
export function kernelTest(name: string, fn: () => Promise<void> | void): void {
  Deno.test({
    name: CAN_NETNS ? name : `${name} (skipped: ${NETNS_SKIP})`,
    ignore: !CAN_NETNS,
    fn,
  });
}

/** Runs `ip args…` and returns stdout; throws with stderr on failure. */
export function ip(...args: string[]): string {
  const out = new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).outputSync();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")} failed: ${text.decode(out.stderr).trim()}`);
  }
  return text.decode(out.stdout);
}

/** `ip -j …` parsed (inside `ns` when given). */
export function ipJson<T = Record<string, unknown>[]>(
  ns: string | undefined,
  ...args: string[]
): T {
  const out = ns === undefined ? ip("-j", ...args) : ip("-n", ns, "-j", ...args);
  return JSON.parse(out.trim() === "" ? "[]" : out) as T;
}

/** The root namespace's links as sorted `index:name` strings. */
export function rootLinks(): string[] {
  return ipJson<{ ifindex: number; ifname: string }[]>(undefined, "link", "show")
    .map((l) => `${l.ifindex}:${l.ifname}`).sort();
}

/**
 * Creates namespace `volant-t-<random>` with `lo` up, runs `fn(ns)`, deletes the namespace,
 * and asserts that the thread is back in its own namespace and that the root namespace's link
 * list is unchanged.
 */
export async function withTestNamespace(fn: (ns: string) => void | Promise<void>): Promise<void> {
  const before = rootLinks();
  const self = currentNetns();
  const ns = `volant-t-${crypto.randomUUID().slice(0, 8)}`;
  ip("netns", "add", ns);
  try {
    ip("-n", ns, "link", "set", "lo", "up");
    await fn(ns);
  } finally {
    ip("netns", "del", ns);
  }
  assert.equal(currentNetns(), self, "the JS thread must be back in its own namespace");
  assert.deepEqual(rootLinks(), before, "the root namespace's links must be unchanged");
}

/**
 * `busybox wget` inside namespace `ns` (killed after `timeoutMs`), with extra `headers`
 * (`name: value`): the body, or throws with wget's exit and message. No `-T`: Debian's static busybox 1.35 wget segfaults with it.
 */
export async function wgetInNetns(
  ns: string,
  url: string,
  options: { postData?: string; timeoutMs?: number; headers?: readonly string[] } = {},
): Promise<string> {
  const args = ["netns", "exec", ns, "busybox", "wget", "-q", "-O", "-"];
  for (const header of options.headers ?? []) args.push("--header", header);
  if (options.postData !== undefined) {
    args.push("--header", "content-type: application/json", "--post-data", options.postData);
  }
  const out = await new Deno.Command("ip", {
    args: [...args, url],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  }).output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `wget ${url} (exit ${out.code}, signal ${out.signal}): ${text.decode(out.stderr).trim()}`,
    );
  }
  return text.decode(out.stdout);
}
