/**
 * Builds a {@linkcode CloudHypervisorDriver} from configuration: finds and checks the binary,
 * its release and hardware KVM.
 *
 * @module
 */
import { openRestVmm, type OpenRestVmmOptions } from "../rest/open.ts";
import { CloudHypervisorDriver } from "./driver.ts";
import { probeCloudHypervisor } from "./probe.ts";

/** Options of {@linkcode openCloudHypervisorDriver} (`binary` defaults to `cloud-hypervisor`). */
export type OpenCloudHypervisorOptions = OpenRestVmmOptions;

/**
 * A Cloud Hypervisor driver for this host. Throws `hypervisor_unavailable` (with the reason and
 * the fix) when the binary is missing or older than v53.0, or KVM is unusable.
 *
 * @example
 * ```ts ignore
 * import { openCloudHypervisorDriver } from "./open.ts";
 * const driver = await openCloudHypervisorDriver({ binary: "cloud-hypervisor" });
 * console.log((await driver.probe()).version);
 * ```
 */
export function openCloudHypervisorDriver(
  options: OpenCloudHypervisorOptions = {},
): Promise<CloudHypervisorDriver> {
  return openRestVmm(
    "Cloud Hypervisor",
    "cloud-hypervisor",
    options,
    probeCloudHypervisor,
    (o) => new CloudHypervisorDriver(o),
  );
}
