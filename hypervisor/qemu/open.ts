/**
 * Builds a {@linkcode QemuDriver} from configuration: finds and checks the binary, detects KVM
 * and resolves the accelerator choice.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import { detectKvm, type KvmStatus, resolveAccel } from "../kvm.ts";
import { QemuDriver } from "./driver.ts";
import { probeQemu } from "./probe.ts";

/** Options of {@linkcode openQemuDriver}. */
export interface OpenQemuOptions {
  /** A name on PATH or a path; default `qemu-system-x86_64`. */
  binary?: string;
  /** `auto` (KVM when usable), `kvm` (required) or `tcg`; default `auto`. */
  accel?: "auto" | "kvm" | "tcg";
  /** KVM detection result to use instead of checking `/dev/kvm`. */
  kvm?: KvmStatus;
  /** Command words QEMU is run through (each must exec, not fork); tests only. */
  launchPrefix?: readonly string[];
  /** Limit from spawn until QMP answers; default 10 000 ms. */
  startTimeoutMs?: number;
  /** Limit for each QMP command; default 5000 ms. */
  qmpTimeoutMs?: number;
}

async function hasTscDeadline(): Promise<boolean> {
  try {
    return /^flags\s*:.*\btsc_deadline_timer\b/m.test(await Deno.readTextFile("/proc/cpuinfo"));
  } catch {
    return false;
  }
}

/**
 * A QEMU driver for this host. Throws `hypervisor_unavailable` (with the reason and the fix)
 * when the binary is missing, too old or lacks microvm, or when `accel` is `kvm` and KVM is
 * not usable.
 *
 * @example
 * ```ts ignore
 * import { openQemuDriver } from "./open.ts";
 * const driver = await openQemuDriver({ accel: "auto" });
 * console.log(driver.kvm ? "KVM" : "TCG");
 * ```
 */
export async function openQemuDriver(options: OpenQemuOptions = {}): Promise<QemuDriver> {
  const binary = options.binary ?? "qemu-system-x86_64";
  const probe = await probeQemu(binary);
  if (!probe.available || !probe.binary) {
    throw new VolantError(
      "hypervisor_unavailable",
      `QEMU is unavailable: ${probe.reason ?? "unknown reason"}`,
      { binary, ...(probe.version ? { version: probe.version } : {}) },
    );
  }
  const kvm = options.kvm ?? await detectKvm();
  const accel = resolveAccel(options.accel ?? "auto", kvm);
  return new QemuDriver({
    binary: probe.binary,
    accel,
    noLegacyTimers: accel === "kvm" && await hasTscDeadline(),
    ...(options.launchPrefix ? { launchPrefix: options.launchPrefix } : {}),
    ...(options.startTimeoutMs ? { startTimeoutMs: options.startTimeoutMs } : {}),
    ...(options.qmpTimeoutMs ? { qmpTimeoutMs: options.qmpTimeoutMs } : {}),
  });
}
