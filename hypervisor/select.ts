/**
 * Driver selection from the daemon config: `hypervisor.name` `auto` prefers Cloud Hypervisor,
 * then Firecracker, then QEMU. Only QEMU is in this build, so `auto` means QEMU.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { DaemonConfig } from "../schema/mod.ts";
import type { Driver } from "./driver.ts";
import { openQemuDriver } from "./qemu/mod.ts";

/** The logging a selection reports through (volantd's logger fits). */
export interface SelectLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
}

/** Test seams of {@linkcode selectDriver}. */
export interface SelectDriverOptions {
  /** Command words VMMs are run through (each must exec, not fork); tests only. */
  launchPrefix?: readonly string[];
}

/** Drivers `auto` would prefer, in order, that this build does not have yet. */
const NOT_YET = ["cloud-hypervisor", "firecracker"] as const;

/**
 * The driver for `config` (the daemon config's `hypervisor` section). Throws
 * `hypervisor_unavailable` with the reason and the fix when it cannot be used. `logger` gets one
 * line naming the chosen driver.
 *
 * @example
 * ```ts ignore
 * import { DaemonConfig } from "../schema/mod.ts";
 * import { selectDriver } from "./select.ts";
 * const driver = await selectDriver(DaemonConfig.parse({}).hypervisor);
 * console.log(driver.name, driver.kvm);
 * ```
 */
export async function selectDriver(
  config: DaemonConfig["hypervisor"],
  logger?: SelectLogger,
  options: SelectDriverOptions = {},
): Promise<Driver> {
  if (config.name === "cloud-hypervisor" || config.name === "firecracker") {
    throw new VolantError(
      "hypervisor_unavailable",
      `hypervisor.name: ${config.name} is not supported by this build yet; ` +
        "set hypervisor.name to qemu or auto",
      { hypervisor: config.name },
    );
  }
  const qemu = () =>
    openQemuDriver({
      binary: config.qemu_binary,
      accel: config.accel,
      ...(options.launchPrefix ? { launchPrefix: options.launchPrefix } : {}),
    });
  if (config.name === "qemu") {
    const driver = await qemu();
    logger?.info("hypervisor selected", { driver: driver.name, kvm: driver.kvm });
    return driver;
  }
  try {
    const driver = await qemu();
    logger?.info("hypervisor selected", {
      driver: driver.name,
      kvm: driver.kvm,
      why: `auto: ${NOT_YET.join(" and ")} are not in this build; qemu is installed`,
    });
    return driver;
  } catch (err) {
    if (!(err instanceof VolantError)) throw err;
    throw new VolantError(
      "hypervisor_unavailable",
      `No usable hypervisor (hypervisor.name: auto): ${NOT_YET.join(" and ")} are not ` +
        `supported by this build yet, and ${err.message}`,
      { hypervisor: "auto", ...err.details },
      { cause: err },
    );
  }
}
