/**
 * Finding the guest control port: the device the boot config's `control_device` names (the
 * VMM's second UART, `/dev/ttyS1`, under QEMU), when it exists as a character device. A VMM
 * without one (Cloud Hypervisor, Firecracker today) gives no `control_device`.
 *
 * @module
 */

/** Options of {@linkcode findControlPort}. */
export interface FindPortOptions {
  /** The device the boot config names; none: no control port. */
  device?: string;
}

/**
 * The control port's device, or `undefined` when the boot config names none or it is not a
 * character device here. Never throws.
 *
 * @example
 * ```ts
 * import { findControlPort } from "./port.ts";
 * console.assert((await findControlPort({})) === undefined);
 * console.assert((await findControlPort({ device: "/dev/null" })) === "/dev/null");
 * ```
 */
export async function findControlPort(options: FindPortOptions): Promise<string | undefined> {
  const device = options.device;
  if (device === undefined) return undefined;
  const info = await Deno.stat(device).catch(() => undefined);
  return info?.isCharDevice ? device : undefined;
}
