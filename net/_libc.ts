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

const ERRNO: Readonly<Record<number, readonly [string, string]>> = {
  1: ["EPERM", "Operation not permitted"],
  2: ["ENOENT", "No such file or directory"],
  3: ["ESRCH", "No such process"],
  4: ["EINTR", "Interrupted system call"],
  5: ["EIO", "Input/output error"],
  6: ["ENXIO", "No such device or address"],
  9: ["EBADF", "Bad file descriptor"],
  11: ["EAGAIN", "Resource temporarily unavailable"],
  12: ["ENOMEM", "Cannot allocate memory"],
  13: ["EACCES", "Permission denied"],
  16: ["EBUSY", "Device or resource busy"],
  17: ["EEXIST", "File exists"],
  19: ["ENODEV", "No such device"],
  22: ["EINVAL", "Invalid argument"],
  24: ["EMFILE", "Too many open files"],
  25: ["ENOTTY", "Inappropriate ioctl for device"],
  34: ["ERANGE", "Numerical result out of range"],
  36: ["ENAMETOOLONG", "File name too long"],
  40: ["ELOOP", "Too many levels of symbolic links"],
  38: ["ENOSYS", "Function not implemented"],
  61: ["ENODATA", "No data available"],
  71: ["EPROTO", "Protocol error"],
  90: ["EMSGSIZE", "Message too long"],
  93: ["EPROTONOSUPPORT", "Protocol not supported"],
  95: ["EOPNOTSUPP", "Operation not supported"],
  97: ["EAFNOSUPPORT", "Address family not supported by protocol"],
  98: ["EADDRINUSE", "Address already in use"],
  99: ["EADDRNOTAVAIL", "Cannot assign requested address"],
  100: ["ENETDOWN", "Network is down"],
  101: ["ENETUNREACH", "Network is unreachable"],
  105: ["ENOBUFS", "No buffer space available"],
  110: ["ETIMEDOUT", "Connection timed out"],
  113: ["EHOSTUNREACH", "No route to host"],
};

/**
 * The symbolic name of an errno value (`17` → `"EEXIST"`); `"E<n>"` for numbers not in the
 * table. Negative values, as netlink reports them, are accepted.
 *
 * @example
 * ```ts
 * import { errnoName } from "./_libc.ts";
 * console.assert(errnoName(-19) === "ENODEV");
 * console.assert(errnoName(4242) === "E4242");
 * ```
 */
export function errnoName(n: number): string {
  const abs = Math.abs(n);
  return ERRNO[abs]?.[0] ?? `E${abs}`;
}

/**
 * `NAME (description)` for an errno value, e.g. `"EPERM (Operation not permitted)"`.
 *
 * @example
 * ```ts
 * import { describeErrno } from "./_libc.ts";
 * console.assert(describeErrno(1) === "EPERM (Operation not permitted)");
 * ```
 */
export function describeErrno(n: number): string {
  const abs = Math.abs(n);
  const entry = ERRNO[abs];
  return entry === undefined ? `E${abs} (errno ${abs})` : `${entry[0]} (${entry[1]})`;
}

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

/**
 * The description of an errno value alone (`"File exists"` for 17).
 *
 * @example
 * ```ts
 * import { errnoText } from "./_libc.ts";
 * console.assert(errnoText(-17) === "File exists");
 * ```
 */
export function errnoText(n: number): string {
  const abs = Math.abs(n);
  return ERRNO[abs]?.[1] ?? `errno ${abs}`;
}

/** Closes `fd`, ignoring errors (used in `finally` blocks). */
export function closeQuietly(fd: number): void {
  if (fd >= 0) libc().close(fd);
}
