/**
 * The libc calls `net/` needs, through Deno FFI (`Deno.dlopen("libc.so.6")`): sockets for
 * rtnetlink, `open` + `ioctl` for TUN/TAP, `setns` for network namespaces. The library is opened
 * on first use, so importing this module has no effect and needs no permission. Every call is
 * synchronous (not `nonblocking`), so it runs on the calling JavaScript thread; sockets therefore
 * belong to the network namespace that thread is in when they are created.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";

/** `open(2)` flag: read-only. */
export const O_RDONLY = 0;
/** `open(2)` flag: read and write. */
export const O_RDWR = 2;
/** `open(2)` flag: close on exec. */
export const O_CLOEXEC = 0o2000000;
/** `socket(2)` flag: close on exec. */
export const SOCK_CLOEXEC = 0o2000000;
/** `setns(2)` type: a network namespace. */
export const CLONE_NEWNET = 0x40000000;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  ioctl_ptr: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  setns: { parameters: ["i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let symbols: Symbols | undefined;

/** The bound libc symbols, opened once on first use. */
export function libc(): Symbols {
  if (symbols === undefined) {
    try {
      symbols = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
    } catch (cause) {
      throw new VolantError(
        "internal",
        `Cannot load libc.so.6 through FFI: ${(cause as Error).message}; net/ needs glibc's ` +
          "libc.so.6 and the --allow-ffi permission (run with -A)",
        undefined,
        { cause },
      );
    }
  }
  return symbols;
}

/** The calling thread's `errno`, read right after a failed call. */
export function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

export { describeErrno, errnoName, errnoText } from "./errno.ts";

/** `value` as a NUL-terminated C string; refuses strings that contain NUL. */
export function cString(value: string, field: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(value);
  if (bytes.includes(0)) {
    throw new VolantError(
      "invalid_argument",
      `${field}: ${JSON.stringify(value)} contains a NUL byte`,
      { field },
    );
  }
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** Closes `fd`, ignoring errors (used in `finally` blocks). */
export function closeQuietly(fd: number): void {
  if (fd >= 0) libc().close(fd);
}
