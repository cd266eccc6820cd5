/**
 * Shared plumbing for the netlink operations: run a request on a fresh socket and turn a
 * kernel refusal into a worded {@linkcode NetlinkError}; resolve interface names to indexes.
 *
 * @module
 */
import { cString, libc } from "../libc.ts";
import { validateIfName } from "../names.ts";
import { type FailureContext, netlinkError } from "./error.ts";
import { KernelError, type NetlinkSocket, withNetlink } from "./_socket.ts";

const ENODEV = 19;

/** Runs `fn` on a fresh netlink socket; a {@linkcode KernelError} becomes a `NetlinkError`. */
export function perform<T>(context: FailureContext, fn: (sock: NetlinkSocket) => T): T {
  try {
    return withNetlink(fn);
  } catch (err) {
    if (err instanceof KernelError) throw netlinkError(err.errno, context, err.extack);
    throw err;
  }
}

/** The index of link `name` in the current namespace, or 0 when there is none. */
export function linkIndex(name: string): number {
  return libc().if_nametoindex(cString(name, "link"));
}

/**
 * The index of link `name`, validating the name first; throws `ENODEV: <role> <name> does not
 * exist` for the operation `op` when it is missing.
 */
export function requireIndex(name: string, op: string, role = "link", field = "name"): number {
  validateIfName(name, field);
  const index = linkIndex(name);
  if (index === 0) {
    throw netlinkError(ENODEV, {
      op,
      subject: `${role} ${name}`,
      link: name,
      phrases: { ENODEV: `${role} ${name} does not exist` },
    });
  }
  return index;
}
