/**
 * Opening a REST-driven VMM (Cloud Hypervisor, Firecracker): probe the binary, its release and
 * hardware KVM, and build the driver only when all are usable.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type { KvmStatus } from "../kvm.ts";

/** Options every REST-driven VMM's open function takes. */
export interface OpenRestVmmOptions {
  /** A name on PATH or a path; default the VMM's own name. */
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

/** What a VMM's probe found (the fields opening needs). */
interface Probed {
  available: boolean;
  binary?: string;
  version?: string;
  reason?: string;
}

/**
 * Probes `binary` and builds the driver with the binary found; `hypervisor_unavailable` naming
 * `label`, the reason and the fix otherwise.
 *
 * @example
 * ```ts ignore
 * import { openRestVmm } from "./open.ts";
 * const driver = await openRestVmm("Firecracker", "firecracker", {}, probeFirecracker,
 *   (o) => new FirecrackerDriver(o));
 * ```
 */
export async function openRestVmm<D, O extends OpenRestVmmOptions>(
  label: string,
  defaultBinary: string,
  options: O,
  probe: (binary: string, opts: { kvm?: KvmStatus }) => Promise<Probed>,
  make: (options: O & { binary: string }) => D,
): Promise<D> {
  const binary = options.binary ?? defaultBinary;
  const found = await probe(binary, options.kvm ? { kvm: options.kvm } : {});
  if (!found.available || !found.binary) {
    throw new VolantError(
      "hypervisor_unavailable",
      `${label} is unavailable: ${found.reason ?? "unknown reason"}`,
      { binary, ...(found.version ? { version: found.version } : {}) },
    );
  }
  return make({ ...options, binary: found.binary });
}
