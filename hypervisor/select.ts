/**
 * Driver selection from the daemon config: `hypervisor.name: auto` opens the first usable of
 * Cloud Hypervisor, Firecracker and QEMU ({@linkcode AUTO_ORDER}; the first two need hardware
 * KVM and an ELF `vmlinux` guest kernel), a named hypervisor opens that one or fails with the
 * reason and the fix. What is usable comes from {@linkcode probeAllHypervisors}.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { DaemonConfig } from "../schema/mod.ts";
import { openCloudHypervisorDriver } from "./cloud_hypervisor/open.ts";
import type { Driver, KernelFormat } from "./driver.ts";
import { openFirecrackerDriver } from "./firecracker/open.ts";
import type { KvmStatus } from "./kvm.ts";
import {
  AUTO_ORDER,
  type HypervisorName,
  type HypervisorReport,
  type HypervisorSurvey,
  probeAllHypervisors,
} from "./probe_all.ts";
import { openQemuDriver } from "./qemu/open.ts";

/** The logging a selection reports through (volantd's logger fits). */
export interface SelectLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
}

/** Options and test seams of {@linkcode selectDriver}. */
export interface SelectDriverOptions {
  /**
   * The guest kernel's format (from `guest.default_kernel`): drivers that cannot boot it are
   * passed over by `auto` and refused when named. Unset: any format is assumed bootable.
   */
  kernelFormat?: KernelFormat;
  /** KVM detection result to use instead of checking `/dev/kvm` (tests). */
  kvm?: KvmStatus;
  /** Command words VMMs are run through (each must exec, not fork); tests only. */
  launchPrefix?: readonly string[];
}

/** Opens the driver `report` describes, with the binary the probe found. */
function open(
  report: HypervisorReport,
  config: DaemonConfig["hypervisor"],
  kvm: KvmStatus,
  options: SelectDriverOptions,
): Promise<Driver> {
  const prefix = options.launchPrefix ? { launchPrefix: options.launchPrefix } : {};
  switch (report.name) {
    case "cloud-hypervisor":
      return openCloudHypervisorDriver({
        binary: report.binary ?? config.cloud_hypervisor_binary,
        kvm,
        ...prefix,
      });
    case "firecracker":
      return openFirecrackerDriver({
        binary: report.binary ?? config.firecracker_binary,
        kvm,
        ...prefix,
      });
    case "qemu":
      return openQemuDriver({
        binary: report.binary ?? config.qemu_binary,
        accel: config.accel,
        kvm,
        ...prefix,
      });
  }
}

/** `{name: reason}` of every hypervisor that cannot be used, for error details. */
function reasons(survey: HypervisorSurvey): Partial<Record<HypervisorName, string>> {
  const out: Partial<Record<HypervisorName, string>> = {};
  for (const h of survey.hypervisors) if (!h.usable) out[h.name] = h.reason ?? "unusable";
  return out;
}

/** The message for a named hypervisor that cannot be used, with what `auto` would take. */
function forcedMessage(survey: HypervisorSurvey): string {
  const auto = survey.hypervisors.find((h) => h.usable);
  return survey.summary +
    (auto ? `; or set hypervisor.name: auto, which selects ${auto.name} here` : "");
}

/**
 * The driver for `config` (the daemon config's `hypervisor` section). Throws
 * `hypervisor_unavailable` with the reason and the fix when it cannot be used (for `auto`: why
 * each hypervisor was passed over). `logger` gets one line naming the chosen driver and why.
 *
 * @example
 * ```ts ignore
 * import { DaemonConfig } from "../schema/mod.ts";
 * import { selectDriver } from "./select.ts";
 * const config = DaemonConfig.parse({});
 * const driver = await selectDriver(config.hypervisor, console, { kernelFormat: "bzImage" });
 * console.log(driver.name, driver.kvm);
 * ```
 */
export async function selectDriver(
  config: DaemonConfig["hypervisor"],
  logger?: SelectLogger,
  options: SelectDriverOptions = {},
): Promise<Driver> {
  const survey = await probeAllHypervisors(config, {
    ...(options.kvm ? { kvm: options.kvm } : {}),
    ...(options.kernelFormat ? { kernelFormat: options.kernelFormat } : {}),
  });
  if (survey.selected === null) {
    throw new VolantError(
      "hypervisor_unavailable",
      config.name === "auto" ? survey.summary : forcedMessage(survey),
      { hypervisor: config.name, reasons: reasons(survey) },
    );
  }
  // `auto` walks the usable ones in order, so a VMM that passed the probe but fails to open
  // (replaced or removed in between) falls through to the next.
  const candidates = config.name === "auto"
    ? survey.hypervisors.filter((h) => h.usable)
    : survey.hypervisors.filter((h) => h.name === survey.selected);
  const failures: string[] = [];
  for (const report of candidates) {
    try {
      const driver = await open(report, config, survey.kvm, options);
      const why = failures.length === 0
        ? survey.summary
        : `${survey.summary}; opening failed for ${failures.join("; ")}`;
      logger?.info("hypervisor selected", {
        driver: driver.name,
        version: report.version ?? null,
        kvm: driver.kvm,
        why,
      });
      return driver;
    } catch (err) {
      if (!(err instanceof VolantError) || config.name !== "auto") throw err;
      failures.push(`${report.name}: ${err.message}`);
    }
  }
  throw new VolantError(
    "hypervisor_unavailable",
    `No usable hypervisor (hypervisor.name: auto): ${failures.join("; ")}`,
    { hypervisor: "auto", reasons: reasons(survey), order: [...AUTO_ORDER] },
  );
}
