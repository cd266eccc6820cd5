/**
 * The few libc calls kestrel needs as PID 1, through Deno FFI (`Deno.dlopen("libc.so.6")`):
 * mount, umount2, reboot, sethostname, waitpid, sync, prctl, open, close, ioctl and
 * clock_settime. A failing call throws a
 * {@linkcode VolantError} whose message and `details.errno` carry the errno name (`EBUSY`…).
 * The library is opened on first use, so importing this module has no effect.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { describeErrno, errnoName } from "../net/errno.ts";

/** `mount(2)` flag: read-only. */
export const MS_RDONLY = 0x1;
/** `mount(2)` flag: ignore set-user-ID and set-group-ID bits. */
export const MS_NOSUID = 0x2;
/** `mount(2)` flag: no device files. */
export const MS_NODEV = 0x4;
/** `mount(2)` flag: no program execution. */
export const MS_NOEXEC = 0x8;
/** `mount(2)` flag: update access times relative to modification times. */
export const MS_RELATIME = 0x200000;
/** `MS_BIND`: make a directory visible at a second place. */
export const MS_BIND = 0x1000;
/** `MS_REC`: with `MS_BIND`, bind the mounts below it too. */
export const MS_REC = 0x4000;
/** `umount2(2)` flag: lazy unmount. */
export const MNT_DETACH = 0x2;
/** `reboot(2)` command: power the machine off. */
export const LINUX_REBOOT_CMD_POWER_OFF = 0x4321fedc;
/** `reboot(2)` command: restart the machine. */
export const LINUX_REBOOT_CMD_RESTART = 0x01234567;
/** `reboot(2)` command: Ctrl-Alt-Del sends SIGINT to PID 1 instead of rebooting at once. */
export const LINUX_REBOOT_CMD_CAD_OFF = 0;
/** `waitpid(2)` option: return at once when no child has exited. */
export const WNOHANG = 1;
/** `prctl(2)` option: make this process a child subreaper. */
export const PR_SET_CHILD_SUBREAPER = 36;
/** `open(2)` flag: read-only. */
export const O_RDONLY = 0;
/** `open(2)` flag: close on exec. */
export const O_CLOEXEC = 0o2000000;
/** `open(2)` flag: read and write. */
export const O_RDWR = 2;
/** `open(2)` flag: a terminal opened with it never becomes the caller's controlling terminal. */
export const O_NOCTTY = 0o400;
/** `ioctl(2)` on a terminal: no further opens (`EBUSY`, except for CAP_SYS_ADMIN). */
export const TIOCEXCL = 0x540c;
/** `ioctl(2)` on a random device: add bytes to the input pool and credit them (`linux/random.h`). */
export const RNDADDENTROPY = 0x40085203;
/** `ioctl(2)` on a random device: reseed the CRNG from the input pool now (Linux ≥ 4.17). */
export const RNDRESEEDCRNG = 0x5207;
/** `clock_settime(2)` clock: the wall clock. */
export const CLOCK_REALTIME = 0;

const SYMBOLS = {
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  reboot: { parameters: ["i32"], result: "i32" },
  sethostname: { parameters: ["buffer", "usize"], result: "i32" },
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  sync: { parameters: [], result: "void" },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  ioctl_ptr: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  clock_settime: { parameters: ["i32", "buffer"], result: "i32" },
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  cfmakeraw: { parameters: ["buffer"], result: "void" },
  // On a blocking thread: the call waits for the device without holding up kestrel.
  read_blocking: {
    name: "read",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  write_blocking: {
    name: "write",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | undefined;

function lib(): Libc {
  if (libc === undefined) {
    try {
      libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
    } catch (cause) {
      throw new VolantError(
        "internal",
        `Cannot load libc.so.6 through FFI: ${(cause as Error).message}; kestrel needs glibc's ` +
          "libc.so.6 in the image and the --allow-ffi permission (run with -A)",
        undefined,
        { cause },
      );
    }
  }
  return libc;
}

function errno(): number {
  const p = lib().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

function cString(value: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(value);
  if (bytes.includes(0)) {
    throw new VolantError(
      "invalid_argument",
      `String ${JSON.stringify(value)} contains a NUL byte`,
    );
  }
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

function fail(call: string, code: number, details: Record<string, unknown>): VolantError {
  return new VolantError(
    "internal",
    `${call} failed: ${describeErrno(code)}`,
    { syscall: call.split(" ")[0], errno: errnoName(code), ...details },
  );
}

/**
 * Calls `mount(2)`. `data` is the filesystem's option string (`"mode=0755"`), if any.
 * Throws a {@linkcode VolantError} naming the errno and the mount point on failure.
 *
 * @example
 * ```ts ignore
 * import { mount, MS_NOSUID } from "./libc.ts";
 * mount("tmpfs", "/run", "tmpfs", MS_NOSUID, "mode=0755");
 * ```
 */
export function mount(
  source: string,
  target: string,
  fstype: string,
  flags: number,
  data?: string,
): void {
  const rc = lib().mount(
    cString(source),
    cString(target),
    cString(fstype),
    BigInt(flags),
    data === undefined ? null : cString(data),
  );
  if (rc !== 0) {
    throw fail(`mount ${fstype} on ${target}`, errno(), { source, target, fstype });
  }
}

/**
 * Calls `umount2(2)`; throws a {@linkcode VolantError} (e.g. `ENOENT`, `EINVAL`) on failure.
 *
 * @example
 * ```ts ignore
 * import { umount2, MNT_DETACH } from "./libc.ts";
 * umount2("/mnt", MNT_DETACH);
 * ```
 */
export function umount2(target: string, flags = 0): void {
  if (lib().umount2(cString(target), flags) !== 0) {
    throw fail(`umount ${target}`, errno(), { target });
  }
}

/**
 * Calls `reboot(2)` with one of the `LINUX_REBOOT_CMD_*` commands. With
 * {@linkcode LINUX_REBOOT_CMD_POWER_OFF} it does not return when it succeeds.
 *
 * @example
 * ```ts ignore
 * import { reboot, LINUX_REBOOT_CMD_CAD_OFF } from "./libc.ts";
 * reboot(LINUX_REBOOT_CMD_CAD_OFF); // Ctrl-Alt-Del now sends SIGINT to PID 1
 * ```
 */
export function reboot(cmd: number): void {
  if (lib().reboot(cmd) !== 0) {
    throw fail(`reboot 0x${cmd.toString(16)}`, errno(), { cmd });
  }
}

/**
 * Calls `sethostname(2)`; throws a {@linkcode VolantError} (`EINVAL` for names over 64 bytes).
 *
 * @example
 * ```ts ignore
 * import { sethostname } from "./libc.ts";
 * sethostname("web");
 * ```
 */
export function sethostname(name: string): void {
  const bytes = cString(name);
  if (lib().sethostname(bytes, BigInt(bytes.length - 1)) !== 0) {
    throw fail(`sethostname ${JSON.stringify(name)}`, errno(), { hostname: name });
  }
}

/** What {@linkcode waitpid} returns: the pid collected (0 with WNOHANG and nothing yet) and its raw status. */
export interface WaitResult {
  /** The pid whose status was collected; 0 when `WNOHANG` found nothing. */
  pid: number;
  /** The raw wait status; decode it with {@linkcode decodeWaitStatus}. */
  status: number;
}

/**
 * Calls `waitpid(2)`; throws a {@linkcode VolantError} (`ECHILD` for a pid that is not our child).
 *
 * @example
 * ```ts ignore
 * import { waitpid, WNOHANG } from "./libc.ts";
 * const { pid, status } = waitpid(1234, WNOHANG);
 * ```
 */
export function waitpid(pid: number, options = 0): WaitResult {
  const status = new Int32Array(1);
  const rc = lib().waitpid(pid, new Uint8Array(status.buffer), options);
  if (rc < 0) throw fail(`waitpid ${pid}`, errno(), { pid });
  return { pid: rc, status: status[0] ?? 0 };
}

/** A decoded wait status: how a process ended. */
export type ExitStatus =
  | { kind: "exited"; code: number }
  | { kind: "signaled"; signal: number }
  | { kind: "other"; raw: number };

/**
 * Decodes a raw `waitpid` status into an exit code or a terminating signal.
 *
 * @example
 * ```ts
 * import { decodeWaitStatus } from "./libc.ts";
 * console.assert(JSON.stringify(decodeWaitStatus(3 << 8)) === '{"kind":"exited","code":3}');
 * console.assert(decodeWaitStatus(9).kind === "signaled");
 * ```
 */
export function decodeWaitStatus(status: number): ExitStatus {
  const low = status & 0x7f;
  if (low === 0) return { kind: "exited", code: (status >> 8) & 0xff };
  if (low !== 0x7f) return { kind: "signaled", signal: low };
  return { kind: "other", raw: status };
}

/**
 * Calls `sync(2)`: flushes filesystem buffers to disk.
 *
 * @example
 * ```ts ignore
 * import { sync } from "./libc.ts";
 * sync();
 * ```
 */
export function sync(): void {
  lib().sync();
}

/**
 * Makes this process a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`), so orphaned
 * descendants are re-parented to it instead of to PID 1. PID 1 does not need it.
 *
 * @example
 * ```ts ignore
 * import { setChildSubreaper } from "./libc.ts";
 * setChildSubreaper(true);
 * ```
 */
export function setChildSubreaper(on: boolean): void {
  if (lib().prctl(PR_SET_CHILD_SUBREAPER, on ? 1n : 0n, 0n, 0n, 0n) !== 0) {
    throw fail("prctl PR_SET_CHILD_SUBREAPER", errno(), { on });
  }
}

/**
 * Closes file descriptor `fd` of this process (`close(2)`): for descriptors kestrel inherited
 * from stage 0, which Deno has no handle for. Throws naming the errno (`EBADF`…).
 *
 * @example
 * ```ts ignore
 * import { closeFd } from "./libc.ts";
 * closeFd(3);
 * ```
 */
export function closeFd(fd: number): void {
  if (lib().close(fd) !== 0) {
    const code = errno();
    throw fail(`close ${fd}`, code, { fd });
  }
}

/**
 * Opens `path` with `open(2)` flags (`O_RDONLY | O_CLOEXEC`…) and returns the raw descriptor,
 * for ioctls Deno has no API for; close it with {@linkcode closeFd}. Throws naming the errno.
 *
 * @example
 * ```ts ignore
 * import { closeFd, O_CLOEXEC, O_RDONLY, openFd } from "./libc.ts";
 * const fd = openFd("/dev/urandom", O_RDONLY | O_CLOEXEC);
 * closeFd(fd);
 * ```
 */
export function openFd(path: string, flags: number): number {
  const fd = lib().open(cString(path), flags);
  if (fd < 0) throw fail(`open ${path}`, errno(), { path });
  return fd;
}

/**
 * Puts terminal `fd` in raw mode (`cfmakeraw`: no echo, no line editing, no signals, no CR/NL
 * translation, 8-bit bytes) that ignores modem lines (`CLOCAL`), applied at once. Throws naming
 * the errno.
 */
export function makeRaw(fd: number): void {
  // struct termios is 60 bytes on glibc (x86_64, aarch64); room to spare.
  const termios = new Uint8Array(128);
  if (lib().tcgetattr(fd, termios) !== 0) throw fail("tcgetattr", errno(), { fd });
  lib().cfmakeraw(termios);
  // c_cflag (offset 8): CLOCAL, ignore modem lines (no hangup when the host side goes away),
  // and CREAD, receive.
  const view = new DataView(termios.buffer);
  view.setUint32(8, view.getUint32(8, true) | 0o4000 | 0o200, true);
  if (lib().tcsetattr(fd, 0, /* TCSANOW */ termios) !== 0) {
    throw fail("tcsetattr", errno(), { fd });
  }
}

/**
 * `read(2)` of up to `buf.length` bytes on a blocking thread; resolves to the count (0 at end of
 * file). A failure is an error without its errno (it stays on that thread).
 */
export async function readFd(fd: number, buf: Uint8Array<ArrayBuffer>): Promise<number> {
  const n = Number(await lib().read_blocking(fd, buf, BigInt(buf.length)));
  if (n < 0) throw new VolantError("internal", `read on fd ${fd} failed`, { fd });
  return n;
}

/** `write(2)` of `buf` on a blocking thread; resolves to the count written. */
export async function writeFd(fd: number, buf: Uint8Array<ArrayBuffer>): Promise<number> {
  const n = Number(await lib().write_blocking(fd, buf, BigInt(buf.length)));
  if (n < 0) throw new VolantError("internal", `write on fd ${fd} failed`, { fd });
  return n;
}

/** `0x40085203` for an ioctl request number. */
function hex(request: number): string {
  return `0x${request.toString(16)}`;
}

/**
 * Calls `ioctl(fd, request, arg)` with a pointer to `arg`'s bytes (the kernel may read or
 * write them). `what` names the request in errors (`ioctl RNDADDENTROPY on /dev/urandom`).
 *
 * @example
 * ```ts ignore
 * import { ioctlBuffer, RNDADDENTROPY, encodeRandPoolInfo } from "./libc.ts";
 * ioctlBuffer(fd, RNDADDENTROPY, encodeRandPoolInfo(bytes), "RNDADDENTROPY");
 * ```
 */
export function ioctlBuffer(
  fd: number,
  request: number,
  arg: Uint8Array<ArrayBuffer>,
  what = hex(request),
): void {
  if (lib().ioctl_ptr(fd, BigInt(request), arg) !== 0) {
    throw fail(`ioctl ${what}`, errno(), { fd, request: hex(request) });
  }
}

/**
 * Calls `ioctl(fd, request, 0)`: a request that takes no argument. Throws naming the errno.
 *
 * @example
 * ```ts ignore
 * import { ioctlNoArg, RNDRESEEDCRNG } from "./libc.ts";
 * ioctlNoArg(fd, RNDRESEEDCRNG, "RNDRESEEDCRNG");
 * ```
 */
export function ioctlNoArg(fd: number, request: number, what = hex(request)): void {
  if (lib().ioctl_int(fd, BigInt(request), 0n) !== 0) {
    throw fail(`ioctl ${what}`, errno(), { fd, request: hex(request) });
  }
}

/**
 * The bytes of `struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }` for
 * {@linkcode RNDADDENTROPY}: the credit in bits (default 8 per byte), the length in bytes, then
 * the bytes. Little-endian, as on every machine kestrel runs on (x86_64, aarch64).
 *
 * @example
 * ```ts
 * import { encodeRandPoolInfo } from "./libc.ts";
 * const info = encodeRandPoolInfo(new Uint8Array([1, 2]));
 * console.assert(info.join(",") === "16,0,0,0,2,0,0,0,1,2");
 * ```
 */
export function encodeRandPoolInfo(
  bytes: Uint8Array,
  entropyBits = bytes.length * 8,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(8 + bytes.length);
  const view = new DataView(out.buffer);
  view.setInt32(0, entropyBits, true);
  view.setInt32(4, bytes.length, true);
  out.set(bytes, 8);
  return out;
}

/**
 * Adds `bytes` to the kernel's entropy pool through `device`, credits them in full
 * (`RNDADDENTROPY`, needs CAP_SYS_ADMIN) and reseeds the CRNG at once (`RNDRESEEDCRNG`), so
 * `getrandom()` output changes now, not at the next scheduled reseed. Throws naming the ioctl
 * and the errno.
 *
 * @example
 * ```ts ignore
 * import { creditEntropy } from "./libc.ts";
 * creditEntropy(crypto.getRandomValues(new Uint8Array(64)));
 * ```
 */
export function creditEntropy(bytes: Uint8Array, device = "/dev/urandom"): void {
  const fd = openFd(device, O_RDONLY | O_CLOEXEC);
  try {
    ioctlBuffer(fd, RNDADDENTROPY, encodeRandPoolInfo(bytes), `RNDADDENTROPY on ${device}`);
    ioctlNoArg(fd, RNDRESEEDCRNG, `RNDRESEEDCRNG on ${device}`);
  } finally {
    lib().close(fd);
  }
}

/**
 * The bytes of `struct timespec { time_t tv_sec; long tv_nsec; }` (64-bit, little-endian) for
 * `ms` milliseconds since the epoch.
 *
 * @example
 * ```ts
 * import { encodeTimespec } from "./libc.ts";
 * const ts = new DataView(encodeTimespec(1_500).buffer);
 * console.assert(ts.getBigInt64(0, true) === 1n && ts.getBigInt64(8, true) === 500_000_000n);
 * ```
 */
export function encodeTimespec(ms: number): Uint8Array<ArrayBuffer> {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new VolantError("invalid_argument", `time ${ms} ms is not a whole number of ms ≥ 0`);
  }
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
  view.setBigInt64(8, BigInt((ms % 1000) * 1_000_000), true);
  return out;
}

/**
 * Steps clock `clock` (default {@linkcode CLOCK_REALTIME}) to `ms` milliseconds since the epoch
 * (`clock_settime(2)`, needs CAP_SYS_TIME). Throws naming the errno.
 *
 * @example
 * ```ts ignore
 * import { setClock } from "./libc.ts";
 * setClock(Date.parse("2030-01-01T00:00:00Z"));
 * ```
 */
export function setClock(ms: number, clock = CLOCK_REALTIME): void {
  if (lib().clock_settime(clock, encodeTimespec(ms)) !== 0) {
    throw fail(`clock_settime ${clock}`, errno(), { clock, ms });
  }
}
