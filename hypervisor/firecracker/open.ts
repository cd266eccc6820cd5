/**
 * Builds a {@linkcode FirecrackerDriver} from configuration: finds and checks the binary, its
 * release and hardware KVM.
 *
 * @module
 */
import { openRestVmm, type OpenRestVmmOptions } from "../rest/open.ts";
import { FirecrackerDriver } from "./driver.ts";
import { probeFirecracker } from "./probe.ts";

/** Options of {@linkcode openFirecrackerDriver} (`binary` defaults to `firecracker`). */
export type OpenFirecrackerOptions = OpenRestVmmOptions;

/**
 * A Firecracker driver for this host. Throws `hypervisor_unavailable` (with the reason and the
 * fix) when the binary is missing or older than 1.16, or KVM is unusable.
 *
 * @example
 * ```ts ignore
 * import { openFirecrackerDriver } from "./open.ts";
 * const driver = await openFirecrackerDriver({ binary: "firecracker" });
 * console.log((await driver.probe()).version);
 * ```
 */
export function openFirecrackerDriver(
  options: OpenFirecrackerOptions = {},
): Promise<FirecrackerDriver> {
  return openRestVmm(
    "Firecracker",
    "firecracker",
    options,
    probeFirecracker,
    (o) => new FirecrackerDriver(o),
  );
}
