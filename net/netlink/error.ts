/**
 * {@linkcode NetlinkError}: a failed netlink request or TUN/TAP ioctl, carrying the errno name
 * and what was being done, with a message such as `EEXIST: link vbr0 already exists`.
 *
 * @module
 */
import { VolantError } from "../../schema/error.ts";
import { errnoName, errnoText } from "../libc.ts";

/** What an operation was doing when it failed; used to word the error. */
export interface FailureContext {
  /** The operation, e.g. `"create bridge"`, `"add address"`. */
  op: string;
  /** What it acted on, e.g. `"link vbr0"`, `"address 10.0.0.1/24 on link br0"`. */
  subject: string;
  /** The link name involved, if any (goes into `details.link`). */
  link?: string;
  /**
   * Messages (after `ERRNO: `) for specific errno names, e.g.
   * `{ EEXIST: "link x already exists" }`.
   */
  phrases?: Partial<Record<string, string>>;
  /** Extra structured details. */
  details?: Record<string, unknown>;
}

/**
 * A failed netlink request (or TUN/TAP ioctl): a {@linkcode VolantError} with code
 * `network_error` whose `details` hold `{errno, op, link}`.
 *
 * @example Matching on the errno
 * ```ts ignore
 * import { createBridge, NetlinkError } from "./mod.ts";
 * try {
 *   createBridge("vbr0");
 * } catch (err) {
 *   if (err instanceof NetlinkError && err.errno === "EEXIST") console.log("already there");
 *   else throw err;
 * }
 * ```
 */
export class NetlinkError extends VolantError {
  /** The errno name, e.g. `"EEXIST"`. */
  readonly errno: string;
  /** The positive errno number. */
  readonly errnoNumber: number;
  /** The operation that failed, e.g. `"create bridge"`. */
  readonly op: string;
  /** The kernel's extended ack text, when it sent one. */
  readonly kernelMessage: string | undefined;

  /** Creates the error; prefer {@linkcode netlinkError}, which words the message. */
  constructor(
    errno: number,
    message: string,
    context: {
      op: string;
      link?: string;
      kernelMessage?: string;
      details?: Record<string, unknown>;
    },
  ) {
    const name = errnoName(errno);
    super("network_error", message, {
      errno: name,
      op: context.op,
      ...(context.link === undefined ? {} : { link: context.link }),
      ...(context.kernelMessage === undefined ? {} : { kernel: context.kernelMessage }),
      ...context.details,
    });
    this.name = "NetlinkError";
    this.errno = name;
    this.errnoNumber = Math.abs(errno);
    this.op = context.op;
    this.kernelMessage = context.kernelMessage;
  }
}

/**
 * Builds a {@linkcode NetlinkError} for `errno` (negative or positive) raised while doing
 * `context.op` on `context.subject`: `ERRNO: <phrase>`, where the phrase comes from
 * `context.phrases`, or a generic wording (permission errors say to run as root).
 *
 * @example
 * ```ts
 * import { netlinkError } from "./error.ts";
 * const err = netlinkError(-17, {
 *   op: "create bridge",
 *   subject: "link vbr0",
 *   link: "vbr0",
 *   phrases: { EEXIST: "link vbr0 already exists" },
 * });
 * console.assert(err.message === "EEXIST: link vbr0 already exists");
 * console.assert(err.code === "network_error" && err.details?.op === "create bridge");
 * ```
 */
export function netlinkError(
  errno: number,
  context: FailureContext,
  kernelMessage?: string,
): NetlinkError {
  const name = errnoName(errno);
  let phrase = context.phrases?.[name];
  if (phrase === undefined) {
    phrase = name === "EPERM" || name === "EACCES"
      ? `not permitted to ${context.op} ${context.subject}: needs CAP_NET_ADMIN (run as root)`
      : `cannot ${context.op} ${context.subject}: ${errnoText(errno).toLowerCase()}`;
  }
  const kernel = kernelMessage === undefined || kernelMessage === ""
    ? ""
    : ` (kernel: ${kernelMessage})`;
  const options: {
    op: string;
    link?: string;
    kernelMessage?: string;
    details?: Record<string, unknown>;
  } = {
    op: context.op,
  };
  if (context.link !== undefined) options.link = context.link;
  if (kernelMessage !== undefined && kernelMessage !== "") options.kernelMessage = kernelMessage;
  if (context.details !== undefined) options.details = context.details;
  return new NetlinkError(errno, `${name}: ${phrase}${kernel}`, options);
}
