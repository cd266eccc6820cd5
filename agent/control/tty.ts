/**
 * The control channel's device: a serial port the VMM wires to the host's control socket
 * (QEMU: a second 16550 UART, `/dev/ttyS1`; named by the boot config's `control_device`).
 * kestrel opens it once for its whole life: without becoming its controlling terminal
 * (`O_NOCTTY`: PID 1 must not get a hangup from it), exclusive (`TIOCEXCL`: any other open is
 * refused, save for CAP_SYS_ADMIN — a root workload is root in the guest anyway) and raw (no
 * echo back to the host, no line editing, bytes as sent). Reads and writes run on a blocking
 * thread.
 *
 * @module
 */
import {
  closeFd,
  ioctlNoArg,
  makeRaw,
  O_CLOEXEC,
  O_NOCTTY,
  O_RDWR,
  openFd,
  readFd,
  TIOCEXCL,
  writeFd,
} from "../libc.ts";
import type { OpenPort } from "./service.ts";

/**
 * Opens terminal `path` exclusive and raw (see the module doc). Throws naming the errno.
 *
 * @example
 * ```ts ignore
 * import { openRawTty } from "./tty.ts";
 * const port = openRawTty("/dev/ttyS1");
 * port.close();
 * ```
 */
export function openRawTty(path: string): OpenPort {
  const fd = openFd(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  try {
    ioctlNoArg(fd, TIOCEXCL, "TIOCEXCL");
    makeRaw(fd);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  let closed = false;
  return {
    read: (p) => readFd(fd, owned(p)),
    write: (p) => writeFd(fd, owned(p)),
    close() {
      if (closed) return;
      closed = true;
      closeFd(fd);
    },
  };
}

/** `p` as FFI takes it: over an ArrayBuffer (never a SharedArrayBuffer, which kestrel has none of). */
function owned(p: Uint8Array): Uint8Array<ArrayBuffer> {
  if (!(p.buffer instanceof ArrayBuffer)) throw new TypeError("a SharedArrayBuffer cannot be used");
  return p as Uint8Array<ArrayBuffer>;
}
