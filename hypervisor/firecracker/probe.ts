/**
 * Finding and checking the Firecracker binary: lookup, `--version`, the minimum release, and
 * hardware KVM.
 *
 * @module
 */
import type { KvmStatus } from "../kvm.ts";
import { probeVmm, type VmmProbe, type VmmVersion } from "../rest/vmm_probe.ts";

/**
 * The oldest Firecracker this driver supports: the 1.16 series, whose API document
 * (`openapi/openapi-v1.16.1.yaml`) every request this driver sends is validated against.
 */
export const FC_MIN_VERSION: Readonly<VmmVersion> = { major: 1, minor: 16, patch: 0 };

/** How to get Firecracker. */
export const FC_INSTALL_FIX = "install the firecracker static binary of release v1.16 or " +
  "newer from the project's GitHub releases into /usr/local/bin";

/**
 * Probes the Firecracker `binary` (a name on PATH or a path). Never throws.
 *
 * @example
 * ```ts ignore
 * import { probeFirecracker } from "./probe.ts";
 * const probe = await probeFirecracker("firecracker");
 * console.log(probe.available ? probe.version : probe.reason);
 * ```
 */
export function probeFirecracker(
  binary: string,
  options: { kvm?: KvmStatus; timeoutMs?: number } = {},
): Promise<VmmProbe> {
  return probeVmm({
    label: "Firecracker",
    versionName: "firecracker",
    binary,
    configKey: "hypervisor.firecracker_binary",
    min: FC_MIN_VERSION,
    minWhy: "the oldest release series whose API document this driver is validated against",
    installFix: FC_INSTALL_FIX,
    ...options,
  });
}
