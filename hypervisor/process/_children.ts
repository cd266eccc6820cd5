/**
 * The VMMs this process spawned and has not yet reaped: their exit status is the fastest way to
 * learn they are gone. Adopted VMMs (after a daemon restart) are not here.
 *
 * @module
 */

interface Child {
  startTime: number;
  status: Promise<Deno.CommandStatus>;
}

/** Children this process spawned and has not yet seen exit, by pid. */
const children = new Map<number, Child>();

/**
 * Records a child spawned by this process until `status` resolves (it is reaped then).
 *
 * @example
 * ```ts ignore
 * import { trackChild } from "./_children.ts";
 * trackChild(child.pid, startTime, child.status);
 * ```
 */
export function trackChild(
  pid: number,
  startTime: number,
  status: Promise<Deno.CommandStatus>,
): void {
  children.set(pid, { startTime, status });
  status.finally(() => {
    if (children.get(pid)?.status === status) children.delete(pid);
  }).catch(() => {});
}

/**
 * The exit status of a VMM this process spawned (resolves when it exits, and reaps it);
 * `undefined` when it is not our child (adopted) or has already been reaped.
 *
 * @example
 * ```ts ignore
 * import { childStatus } from "./mod.ts";
 * const status = childStatus(handle.pid, handle.startTime);
 * if (status) console.log((await status).code);
 * ```
 */
export function childStatus(
  pid: number,
  startTime: number,
): Promise<Deno.CommandStatus> | undefined {
  const child = children.get(pid);
  return child && child.startTime === startTime ? child.status : undefined;
}
