/**
 * The seam between volantd and `hypervisor/`: how the daemon gets its {@linkcode Driver}.
 * `main()` takes a factory (tests pass the fake driver); this is the default.
 *
 * @module
 */
import { type Acceleration, VolantError } from "../schema/mod.ts";
import {
  chooseDriver,
  type Driver,
  type KvmStatus,
  type SelectDriverOptions,
  UnavailableDriver,
} from "../hypervisor/mod.ts";
import { bootProver, cleanProbeDir, VerdictCache } from "./boot_probe/mod.ts";
import type { ResolvedConfig } from "./config.ts";
import { guestDirArtifacts, KERNEL_FILES } from "./guest.ts";
import type { Logger } from "./log.ts";

/** A driver with the accelerator it runs guests on, and why. */
export interface DriverChoice {
  driver: Driver;
  acceleration: Acceleration;
}

/** Builds the hypervisor driver from the daemon config (a bare driver: its KVM unproven). */
export type DriverFactory = (
  config: ResolvedConfig,
  logger: Logger,
) => Promise<Driver | DriverChoice>;

/**
 * The {@linkcode DriverChoice} of what a factory made: a bare driver's acceleration is what it
 * says of itself.
 */
export function asChoice(made: Driver | DriverChoice): DriverChoice {
  if ("acceleration" in made) return made;
  return {
    driver: made,
    acceleration: made.kvm
      ? { accel: "kvm", reason: "KVM (not proven by a probe boot)", probe: null }
      : { accel: "tcg", reason: "software emulation", probe: null },
  };
}

/** Test seams of {@linkcode driverFactoryWith}. */
export interface DriverFactoryOptions {
  /** KVM detection result to use instead of checking `/dev/kvm`. */
  kvm?: KvmStatus;
  /** Kernel command-line words the probe guest gets (TCG needs `tsc_early_khz=`). */
  probeCmdline?: string;
  /** What `/proc/<pid>/exe` shows for script stand-ins of the REST VMMs. */
  processExe?: SelectDriverOptions["processExe"];
}

/**
 * The default driver: `chooseDriver` on the config's `hypervisor` section (`auto`: Cloud
 * Hypervisor, then Firecracker, then QEMU; the first usable one), with KVM proven by a probe
 * boot of the guest kernel that driver's VMs boot (`guest.default_kernel`; `auto` follows the
 * hypervisor) and the verdict cached in `hypervisor.boot_verdicts`. A probe cut short by a
 * `kill -9` is cleaned up first. When no hypervisor can be used the daemon still starts, with a
 * driver that fails every VM operation with the reason and the fix (`hypervisor_unavailable`).
 *
 * @example
 * ```ts ignore
 * import { driverFactoryWith } from "./driver_factory.ts";
 * const factory = driverFactoryWith({ kvm: { available: true, path: "/dev/kvm" } });
 * const { driver, acceleration } = await factory(config, logger);
 * ```
 */
export function driverFactoryWith(options: DriverFactoryOptions = {}): DriverFactory {
  return async (config, logger) => {
    const workDir = `${config.runtime_dir}/probe`;
    await cleanProbeDir(workDir);
    const configured = config.guest.default_kernel;
    const prove = config.hypervisor.accel === "tcg" ? undefined : bootProver({
      guest: guestDirArtifacts(config.guest.dir),
      defaultKernel: configured,
      cache: new VerdictCache(config.hypervisor.boot_verdicts),
      workDir,
      timeoutMs: config.hypervisor.boot_probe_timeout_ms,
      logger,
      ...(options.probeCmdline ? { cmdline: options.probeCmdline } : {}),
    });
    try {
      return await chooseDriver(config.hypervisor, logger, {
        // A named kernel rules out hypervisors that cannot boot it; `auto` fits every one.
        ...(configured === "auto" ? {} : { kernelFormat: KERNEL_FILES[configured].format }),
        ...(prove ? { prove } : {}),
        ...(options.kvm ? { kvm: options.kvm } : {}),
        ...(options.processExe ? { processExe: options.processExe } : {}),
      });
    } catch (err) {
      if (!(err instanceof VolantError) || err.code !== "hypervisor_unavailable") throw err;
      const name = config.hypervisor.name === "auto" ? "qemu" : config.hypervisor.name;
      return {
        driver: new UnavailableDriver(name, err),
        acceleration: { accel: "tcg", reason: err.message, probe: null },
      };
    }
  };
}

/** {@linkcode driverFactoryWith} for this host: what volantd uses. */
export const defaultDriverFactory: DriverFactory = driverFactoryWith();
