/**
 * The seam between volantd and `hypervisor/`: how the daemon gets its {@linkcode Driver}.
 * `main()` takes a factory (tests pass the fake driver); this is the default.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { Driver } from "../hypervisor/driver.ts";
import type { ResolvedConfig } from "./config.ts";
import type { Logger } from "./log.ts";

/** Builds the hypervisor driver from the daemon config. */
export type DriverFactory = (config: ResolvedConfig, logger: Logger) => Promise<Driver>;

/**
 * The default driver: `selectDriver` from `hypervisor/mod.ts`.
 *
 * SEAM (lead): `hypervisor/mod.ts` did not exist when this was written; replace the body with
 * `return selectDriver(config.hypervisor)` (a static import, so `deno bundle` includes it).
 */
export function defaultDriverFactory(config: ResolvedConfig, _logger: Logger): Promise<Driver> {
  return Promise.reject(
    new VolantError(
      "hypervisor_unavailable",
      `No hypervisor driver is wired into volantd yet (hypervisor.name: ${config.hypervisor.name})`,
    ),
  );
}
