/**
 * Builds a {@linkcode CloudHypervisorDriver} from configuration: finds and checks the binary,
 * its release and hardware KVM.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type { KvmStatus } from "../kvm.ts";
import { CloudHypervisorDriver } from "./driver.ts";
import { probeCloudHypervisor } from "./probe.ts";

/** Options of {@linkcode openCloudHypervisorDriver}. */
export interface OpenCloudHypervisorOptions {
  /** A name on PATH or a path; default `cloud-hypervisor`. */
  binary?: string;
  /** KVM detection result to use instead of checking `/dev/kvm`. */
  kvm?: KvmStatus;
  /** Command words the VMM is run through (each must exec, not fork); tests only. */
  launchPrefix?: readonly string[];
  /** What `/proc/<pid>/exe` shows for a script VMM (tests only). */
  processExe?: string;
  /** Limit from spawn until the API answers; default 10 000 ms. */
  startTimeoutMs?: number;
  /** Limit for each API request; default 5000 ms. */
  apiTimeoutMs?: number;
}

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
export async function openCloudHypervisorDriver(
  options: OpenCloudHypervisorOptions = {},
): Promise<CloudHypervisorDriver> {
  const binary = options.binary ?? "cloud-hypervisor";
  const probe = await probeCloudHypervisor(binary, options.kvm ? { kvm: options.kvm } : {});
  if (!probe.available || !probe.binary) {
    throw new VolantError(
      "hypervisor_unavailable",
      `Cloud Hypervisor is unavailable: ${probe.reason ?? "unknown reason"}`,
      { binary, ...(probe.version ? { version: probe.version } : {}) },
    );
  }
  return new CloudHypervisorDriver({ ...options, binary: probe.binary });
}
