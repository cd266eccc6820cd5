/**
 * Finding and checking the Cloud Hypervisor binary: lookup, `--version`, the minimum release,
 * and hardware KVM.
 *
 * @module
 */
import type { KvmStatus } from "../kvm.ts";
import { probeVmm, type VmmProbe, type VmmVersion } from "../rest/vmm_probe.ts";

/**
 * The oldest Cloud Hypervisor this driver supports: v53.0, the release whose API document
 * (`openapi/openapi-v53.0.yaml`) every request this driver sends is validated against.
 */
export const CH_MIN_VERSION: Readonly<VmmVersion> = { major: 53, minor: 0, patch: 0 };

/** How to get Cloud Hypervisor. */
export const CH_INSTALL_FIX = "install the cloud-hypervisor static binary of release v53.0 " +
  "or newer from the project's GitHub releases into /usr/local/bin";

/**
 * Probes the Cloud Hypervisor `binary` (a name on PATH or a path). Never throws.
 *
 * @example
 * ```ts ignore
 * import { probeCloudHypervisor } from "./probe.ts";
 * const probe = await probeCloudHypervisor("cloud-hypervisor");
 * console.log(probe.available ? probe.version : probe.reason);
 * ```
 */
export function probeCloudHypervisor(
  binary: string,
  options: { kvm?: KvmStatus; timeoutMs?: number } = {},
): Promise<VmmProbe> {
  return probeVmm({
    label: "Cloud Hypervisor",
    versionName: "cloud-hypervisor",
    binary,
    configKey: "hypervisor.cloud_hypervisor_binary",
    min: CH_MIN_VERSION,
    minWhy: "the oldest release whose API document this driver is validated against",
    installFix: CH_INSTALL_FIX,
    ...options,
  });
}
