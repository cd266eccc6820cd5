/**
 * Running synchronous code inside a named network namespace (`/run/netns/<name>`, as made by
 * `ip netns add`). For tests and tools: volantd itself runs wholly inside its namespace instead.
 *
 * `setns(2)` with `CLONE_NEWNET` moves only the calling thread. Deno runs non-`nonblocking`
 * FFI calls and sync ops on the JavaScript thread, so everything `fn` does synchronously
 * (netlink requests, `createTap`, `Deno.Command#outputSync`) happens in the namespace.
 * Netlink sockets keep the namespace they were created in.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import {
  CLONE_NEWNET,
  closeQuietly,
  cString,
  describeErrno,
  errno,
  errnoName,
  libc,
  O_CLOEXEC,
  O_RDONLY,
} from "./libc.ts";

/** Where `ip netns` keeps named namespaces. */
export const NETNS_RUN_DIR = "/run/netns";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function openNs(path: string, what: string): number {
  const fd = libc().open(cString(path, "path"), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const e = errno();
    throw new VolantError(
      e === 2 ? "not_found" : "network_error",
      `Cannot open ${what} ${path}: ${describeErrno(e)}` +
        (e === 2 ? " (create it with `ip netns add`)" : ""),
      { path, errno: errnoName(e) },
    );
  }
  return fd;
}

function enter(fd: number, what: string): void {
  if (libc().setns(fd, CLONE_NEWNET) !== 0) {
    const e = errno();
    throw new VolantError(
      "network_error",
      `setns into ${what} failed: ${describeErrno(e)}` +
        (e === 1 ? " (needs CAP_SYS_ADMIN: run as root)" : ""),
      { errno: errnoName(e) },
    );
  }
}

/** Returns to the namespace open as `fd`, which must be `before`; throws if it is not. */
function switchBack(fd: number, before: string): void {
  enter(fd, "the original network namespace");
  const now = currentNetns();
  if (now !== before) {
    // Cannot happen unless setns lied; refuse to carry on in the wrong namespace.
    throw new VolantError("internal", `Could not switch back to ${before}: still in ${now}`);
  }
}

/**
 * The calling thread's network namespace, as the `net:[inode]` link text.
 *
 * @example
 * ```ts ignore
 * import { currentNetns } from "./netns.ts";
 * console.log(currentNetns()); // "net:[4026531840]"
 * ```
 */
export function currentNetns(): string {
  return Deno.readLinkSync("/proc/thread-self/ns/net");
}

/**
 * Runs the synchronous `fn` with the calling thread switched into network namespace `name`
 * and always switches back, even when `fn` throws. Refuses async functions: awaited work would
 * run after the switch back, in the original namespace. Verifies the switch took effect before
 * calling `fn` (`/proc/thread-self/ns/net` must match the namespace file).
 *
 * @example
 * ```ts ignore
 * import { withNetns } from "./netns.ts";
 * import { createBridge } from "./netlink/mod.ts";
 * withNetns("volant-test", () => createBridge("br0")); // br0 exists only in volant-test
 * ```
 */
export function withNetns<T>(
  name: string,
  fn: () => T extends PromiseLike<unknown> ? never : T,
): T {
  if (!NAME.test(name)) {
    throw new VolantError(
      "invalid_argument",
      `netns: ${JSON.stringify(name)} is not a namespace name (letters, digits, '.', '_', '-')`,
      { field: "netns", value: name },
    );
  }
  const path = `${NETNS_RUN_DIR}/${name}`;
  const target = openNs(path, "network namespace");
  let original = -1;
  try {
    original = openNs("/proc/thread-self/ns/net", "the current network namespace");
    const before = currentNetns();
    enter(target, `network namespace ${name}`);
    try {
      const expected = `net:[${Deno.statSync(path).ino}]`;
      const now = currentNetns();
      if (now !== expected) {
        throw new VolantError(
          "internal",
          `setns into ${name} did not take effect on this thread (${now}, expected ${expected})`,
        );
      }
      const result = fn();
      if (result !== null && typeof (result as { then?: unknown })?.then === "function") {
        throw new VolantError(
          "invalid_argument",
          "withNetns needs a synchronous function: the awaited part of an async function " +
            "would run outside the namespace",
        );
      }
      return result as T;
    } finally {
      switchBack(original, before);
    }
  } finally {
    closeQuietly(original);
    closeQuietly(target);
  }
}
