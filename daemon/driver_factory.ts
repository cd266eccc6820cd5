/**
 * The seam between volantd and `hypervisor/`: how the daemon gets its {@linkcode Driver}.
 * `main()` takes a factory (tests pass the fake driver); this is the default.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import { type Driver, selectDriver, UnavailableDriver } from "../hypervisor/mod.ts";
import type { ResolvedConfig } from "./config.ts";
import { KERNEL_FILES } from "./guest.ts";
import type { Logger } from "./log.ts";

/** Builds the hypervisor driver from the daemon config. */
export type DriverFactory = (config: ResolvedConfig, logger: Logger) => Promise<Driver>;

/**
 * The default driver: {@linkcode selectDriver} on the config's `hypervisor` section (`auto`:
 * Cloud Hypervisor, then Firecracker, then QEMU; the first usable one that boots the default
 * guest kernel's format). When no
 * hypervisor can be used the daemon still starts, with a driver that fails every VM operation
 * with the reason and the fix (`hypervisor_unavailable`).
 *
 * @example
 * ```ts ignore
 * import { defaultDriverFactory } from "./driver_factory.ts";
 * const driver = await defaultDriverFactory(config, logger);
 * ```
 */
export async function defaultDriverFactory(
  config: ResolvedConfig,
  logger: Logger,
): Promise<Driver> {
  try {
    // A hypervisor that cannot boot the default guest kernel is passed over by `auto`.
    return await selectDriver(config.hypervisor, logger, {
      kernelFormat: KERNEL_FILES[config.guest.default_kernel].format,
    });
  } catch (err) {
    if (!(err instanceof VolantError) || err.code !== "hypervisor_unavailable") throw err;
    const name = config.hypervisor.name === "auto" ? "qemu" : config.hypervisor.name;
    return new UnavailableDriver(name, err);
  }
}
