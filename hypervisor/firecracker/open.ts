/**
 * Builds a {@linkcode FirecrackerDriver} from configuration: finds and checks the binary, its
 * release and hardware KVM.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type { KvmStatus } from "../kvm.ts";
import { FirecrackerDriver } from "./driver.ts";
import { probeFirecracker } from "./probe.ts";

/** Options of {@linkcode openFirecrackerDriver}. */
export interface OpenFirecrackerOptions {
  /** A name on PATH or a path; default `firecracker`. */
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
export async function openFirecrackerDriver(
  options: OpenFirecrackerOptions = {},
): Promise<FirecrackerDriver> {
  const binary = options.binary ?? "firecracker";
  const probe = await probeFirecracker(binary, options.kvm ? { kvm: options.kvm } : {});
  if (!probe.available || !probe.binary) {
    throw new VolantError(
      "hypervisor_unavailable",
      `Firecracker is unavailable: ${probe.reason ?? "unknown reason"}`,
      { binary, ...(probe.version ? { version: probe.version } : {}) },
    );
  }
  return new FirecrackerDriver({ ...options, binary: probe.binary });
}
