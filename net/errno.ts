/**
 * Linux errno numbers (x86_64) to their names and short descriptions, so a failed system call
 * can say `EBUSY (Device or resource busy)` instead of a bare number. Shared by net/ (netlink,
 * taps) and kestrel (mounts, reboot).
 *
 * @module
 */

const ERRNO: Readonly<Record<number, readonly [string, string]>> = {
  1: ["EPERM", "Operation not permitted"],
  2: ["ENOENT", "No such file or directory"],
  3: ["ESRCH", "No such process"],
  4: ["EINTR", "Interrupted system call"],
  5: ["EIO", "Input/output error"],
  6: ["ENXIO", "No such device or address"],
  7: ["E2BIG", "Argument list too long"],
  8: ["ENOEXEC", "Exec format error"],
  9: ["EBADF", "Bad file descriptor"],
  10: ["ECHILD", "No child processes"],
  11: ["EAGAIN", "Resource temporarily unavailable"],
  12: ["ENOMEM", "Cannot allocate memory"],
  13: ["EACCES", "Permission denied"],
  14: ["EFAULT", "Bad address"],
  15: ["ENOTBLK", "Block device required"],
  16: ["EBUSY", "Device or resource busy"],
  17: ["EEXIST", "File exists"],
  18: ["EXDEV", "Invalid cross-device link"],
  19: ["ENODEV", "No such device"],
  20: ["ENOTDIR", "Not a directory"],
  21: ["EISDIR", "Is a directory"],
  22: ["EINVAL", "Invalid argument"],
  23: ["ENFILE", "Too many open files in system"],
  24: ["EMFILE", "Too many open files"],
  25: ["ENOTTY", "Inappropriate ioctl for device"],
  26: ["ETXTBSY", "Text file busy"],
  27: ["EFBIG", "File too large"],
  28: ["ENOSPC", "No space left on device"],
  29: ["ESPIPE", "Illegal seek"],
  30: ["EROFS", "Read-only file system"],
  31: ["EMLINK", "Too many links"],
  32: ["EPIPE", "Broken pipe"],
  33: ["EDOM", "Numerical argument out of domain"],
  34: ["ERANGE", "Numerical result out of range"],
  35: ["EDEADLK", "Resource deadlock avoided"],
  36: ["ENAMETOOLONG", "File name too long"],
  37: ["ENOLCK", "No locks available"],
  38: ["ENOSYS", "Function not implemented"],
  39: ["ENOTEMPTY", "Directory not empty"],
  40: ["ELOOP", "Too many levels of symbolic links"],
  61: ["ENODATA", "No data available"],
  62: ["ETIME", "Timer expired"],
  71: ["EPROTO", "Protocol error"],
  75: ["EOVERFLOW", "Value too large for defined data type"],
  84: ["EILSEQ", "Invalid or incomplete multibyte or wide character"],
  88: ["ENOTSOCK", "Socket operation on non-socket"],
  90: ["EMSGSIZE", "Message too long"],
  93: ["EPROTONOSUPPORT", "Protocol not supported"],
  95: ["EOPNOTSUPP", "Operation not supported"],
  97: ["EAFNOSUPPORT", "Address family not supported by protocol"],
  98: ["EADDRINUSE", "Address already in use"],
  99: ["EADDRNOTAVAIL", "Cannot assign requested address"],
  100: ["ENETDOWN", "Network is down"],
  101: ["ENETUNREACH", "Network is unreachable"],
  104: ["ECONNRESET", "Connection reset by peer"],
  105: ["ENOBUFS", "No buffer space available"],
  106: ["EISCONN", "Transport endpoint is already connected"],
  107: ["ENOTCONN", "Transport endpoint is not connected"],
  110: ["ETIMEDOUT", "Connection timed out"],
  111: ["ECONNREFUSED", "Connection refused"],
  113: ["EHOSTUNREACH", "No route to host"],
  114: ["EALREADY", "Operation already in progress"],
  115: ["EINPROGRESS", "Operation now in progress"],
  122: ["EDQUOT", "Disk quota exceeded"],
  125: ["ECANCELED", "Operation canceled"],
};

/**
 * The symbolic name of an errno value (`2` → `"ENOENT"`); `"E<n>"` for numbers not in the table.
 * Negative values (as netlink returns them) are accepted.
 *
 * @example
 * ```ts
 * import { errnoName } from "./errno.ts";
 * console.assert(errnoName(16) === "EBUSY");
 * console.assert(errnoName(-2) === "ENOENT");
 * ```
 */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return ERRNO[n]?.[0] ?? `E${n}`;
}

/**
 * `NAME (description)` for an errno value, e.g. `"ENOENT (No such file or directory)"`.
 *
 * @example
 * ```ts
 * import { describeErrno } from "./errno.ts";
 * console.assert(describeErrno(30) === "EROFS (Read-only file system)");
 * ```
 */
export function describeErrno(errno: number): string {
  const n = Math.abs(errno);
  const entry = ERRNO[n];
  return entry === undefined ? `E${n} (errno ${n})` : `${entry[0]} (${entry[1]})`;
}

/**
 * The description of an errno value alone (`"File exists"` for 17).
 *
 * @example
 * ```ts
 * import { errnoText } from "./errno.ts";
 * console.assert(errnoText(-17) === "File exists");
 * ```
 */
export function errnoText(errno: number): string {
  const n = Math.abs(errno);
  return ERRNO[n]?.[1] ?? `errno ${n}`;
}
