/**
 * Driver selection from the daemon config: `hypervisor.name: auto` opens the first usable of
 * Cloud Hypervisor, Firecracker and QEMU ({@linkcode AUTO_ORDER}; the first two need hardware
 * KVM and an ELF `vmlinux` guest kernel), a named hypervisor opens that one or fails with the
 * reason and the fix. What is usable comes from {@linkcode probeAllHypervisors}.
 *
 * KVM is proven, not assumed: a driver that would run guests on KVM is handed to the caller's
 * {@linkcode BootProver} (a probe boot of the real guest kernel, see `boot_probe.ts`) before it
 * is chosen. One that fails is passed over with the reason — QEMU falls back to TCG, Cloud
 * Hypervisor and Firecracker (KVM only) are skipped — unless `hypervisor.accel: kvm` demands KVM,
 * which then fails with the reason. `hypervisor.accel: tcg` never probes.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { Acceleration, DaemonConfig } from "../schema/mod.ts";
import { openCloudHypervisorDriver } from "./cloud_hypervisor/open.ts";
import type { Driver, KernelFormat } from "./driver.ts";
import { openFirecrackerDriver } from "./firecracker/open.ts";
import { type KvmStatus, kvmSuspect } from "./kvm.ts";
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
  /** What `/proc/<pid>/exe` shows for script stand-ins of the REST VMMs; tests only. */
  processExe?: Partial<Record<"cloud-hypervisor" | "firecracker", string>>;
  /**
   * Proves a driver that would use KVM by booting the guest through it. Without one, KVM is
   * taken on `/dev/kvm`'s word (tests and tools that boot nothing).
   */
  prove?: BootProver;
}

/** A prover's verdict on one driver with KVM. */
export interface BootVerdict {
  /** The guest reached its init under KVM. */
  ok: boolean;
  /** Why not, in one sentence. */
  reason?: string;
  /** Boot to the marker (or to the failure), ms. */
  ms?: number;
  /** Taken from the cache: no probe ran. */
  cached: boolean;
  /** When the probe ran (ISO 8601). */
  checkedAt?: string;
}

/** Boots the guest once through `driver` (which uses KVM) and says whether it came up. */
export type BootProver = (driver: Driver) => Promise<BootVerdict>;

/** What {@linkcode chooseDriver} chose. */
export interface Selection {
  driver: Driver;
  /** The survey's sentence plus what the probes changed. */
  summary: string;
  /** The accelerator the driver runs guests with, and why. */
  acceleration: Acceleration;
}

/** Opens the driver `report` describes, with the binary the probe found. */
function open(
  report: HypervisorReport,
  config: DaemonConfig["hypervisor"],
  kvm: KvmStatus,
  options: SelectDriverOptions,
): Promise<Driver> {
  const prefix = options.launchPrefix ? { launchPrefix: options.launchPrefix } : {};
  const exe = (name: "cloud-hypervisor" | "firecracker") =>
    options.processExe?.[name] ? { processExe: options.processExe[name] } : {};
  switch (report.name) {
    case "cloud-hypervisor":
      return openCloudHypervisorDriver({
        binary: report.binary ?? config.cloud_hypervisor_binary,
        kvm,
        ...prefix,
        ...exe("cloud-hypervisor"),
      });
    case "firecracker":
      return openFirecrackerDriver({
        binary: report.binary ?? config.firecracker_binary,
        kvm,
        ...prefix,
        ...exe("firecracker"),
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

/** The {@linkcode Acceleration} of a driver that needed no probe. */
function unprobed(
  driver: Driver,
  config: DaemonConfig["hypervisor"],
  kvm: KvmStatus,
): Acceleration {
  if (driver.kvm) {
    return { accel: "kvm", reason: "KVM (not proven by a probe boot)", probe: null };
  }
  const reason = config.accel === "tcg"
    ? "hypervisor.accel is tcg: software emulation, no KVM probe"
    : `no usable KVM: ${kvm.reason ?? "unknown reason"}`;
  return { accel: "tcg", reason, probe: null };
}

function probeReport(verdict: BootVerdict): NonNullable<Acceleration["probe"]> {
  return {
    ok: verdict.ok,
    ms: verdict.ms === undefined ? null : Math.round(verdict.ms),
    cached: verdict.cached,
    checked_at: verdict.checkedAt ?? null,
    reason: verdict.reason ?? null,
  };
}

/**
 * Why KVM was not used after a failed probe: the sentence `doctor` and the logs show.
 *
 * @example
 * ```ts
 * import { failedKvmSentence } from "./select.ts";
 * const s = failedKvmSentence({ available: true, path: "/dev/kvm", modules: ["kvm_pvm"] });
 * console.assert(s.startsWith("/dev/kvm is present but the guest kernel does not boot under it"));
 * ```
 */
export function failedKvmSentence(kvm: KvmStatus): string {
  const suspect = kvmSuspect(kvm);
  return `${kvm.path} is present but the guest kernel does not boot under it` +
    (suspect ? ` (${suspect})` : "");
}

/**
 * The driver for `config` (the daemon config's `hypervisor` section) with the accelerator it
 * was proven to run, and why. Throws `hypervisor_unavailable` with the reason and the fix when
 * nothing can be used (for `auto`: why each hypervisor was passed over). `logger` gets one line
 * naming the chosen driver, its accelerator and why.
 *
 * @example
 * ```ts ignore
 * import { DaemonConfig } from "../schema/mod.ts";
 * import { chooseDriver } from "./select.ts";
 * const { driver, acceleration } = await chooseDriver(DaemonConfig.parse({}).hypervisor, console, {
 *   prove: async (d) => ({ ok: false, reason: "hung after Probing EDD", cached: false }),
 * });
 * console.log(driver.name, acceleration.accel, acceleration.reason);
 * ```
 */
export async function chooseDriver(
  config: DaemonConfig["hypervisor"],
  logger?: SelectLogger,
  options: SelectDriverOptions = {},
): Promise<Selection> {
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
  // `auto` walks the usable ones in order, so a VMM that passed the survey but fails to open
  // (replaced or removed in between) or fails its KVM probe falls through to the next.
  const candidates = config.name === "auto"
    ? survey.hypervisors.filter((h) => h.usable)
    : survey.hypervisors.filter((h) => h.name === survey.selected);
  const failures: string[] = [];
  const chosen = (driver: Driver, report: HypervisorReport, acceleration: Acceleration) => {
    const why = failures.length === 0
      ? survey.summary
      : `${survey.summary}; passed over: ${failures.join("; ")}`;
    logger?.info("hypervisor selected", {
      driver: driver.name,
      version: report.version ?? null,
      kvm: driver.kvm,
      accel: acceleration.accel,
      accel_reason: acceleration.reason,
      probe: acceleration.probe,
      why,
    });
    return { driver, summary: why, acceleration };
  };
  for (const report of candidates) {
    let driver: Driver;
    try {
      driver = await open(report, config, survey.kvm, options);
    } catch (err) {
      if (!(err instanceof VolantError) || config.name !== "auto") throw err;
      failures.push(`${report.name}: ${err.message}`);
      continue;
    }
    if (!driver.kvm || !options.prove) {
      return chosen(driver, report, unprobed(driver, config, survey.kvm));
    }
    const verdict = await options.prove(driver);
    if (verdict.ok) {
      const how = verdict.cached ? "cached verdict" : `${Math.round(verdict.ms ?? 0)} ms`;
      return chosen(driver, report, {
        accel: "kvm",
        reason: `KVM: the guest kernel boots under ${report.name} on it (probe boot, ${how})`,
        probe: probeReport(verdict),
      });
    }
    const sentence = failedKvmSentence(survey.kvm);
    const detail = `${sentence}: ${verdict.reason ?? "the probe boot failed"}`;
    if (config.accel === "kvm") {
      failures.push(`${report.name}: ${detail}`);
      if (config.name === "auto") continue;
      throw new VolantError(
        "hypervisor_unavailable",
        `hypervisor.accel is kvm, but ${detail}; set hypervisor.accel: auto (QEMU then falls ` +
          "back to TCG) or tcg",
        { hypervisor: report.name, accel: "kvm", probe: probeReport(verdict) },
      );
    }
    if (report.name === "qemu") {
      const tcg = await openQemuDriver({
        binary: report.binary ?? config.qemu_binary,
        accel: "tcg",
        kvm: survey.kvm,
        ...(options.launchPrefix ? { launchPrefix: options.launchPrefix } : {}),
      });
      return chosen(tcg, report, {
        accel: "tcg",
        reason: `${sentence}: using TCG`,
        probe: probeReport(verdict),
      });
    }
    failures.push(`${report.name} (KVM only): ${detail}`);
    if (config.name !== "auto") {
      throw new VolantError(
        "hypervisor_unavailable",
        `hypervisor.name is ${report.name}, which runs on KVM only, and ${detail}; set ` +
          "hypervisor.name: auto (QEMU then runs guests under TCG)",
        { hypervisor: report.name, probe: probeReport(verdict) },
      );
    }
  }
  throw new VolantError(
    "hypervisor_unavailable",
    `No usable hypervisor (hypervisor.name: ${config.name}, hypervisor.accel: ${config.accel}): ` +
      failures.join("; "),
    { hypervisor: config.name, reasons: reasons(survey), order: [...AUTO_ORDER] },
  );
}

/**
 * The driver for `config`: {@linkcode chooseDriver} without the report.
 *
 * @example
 * ```ts ignore
 * import { DaemonConfig } from "../schema/mod.ts";
 * import { selectDriver } from "./select.ts";
 * const driver = await selectDriver(DaemonConfig.parse({}).hypervisor, console);
 * console.log(driver.name, driver.kvm);
 * ```
 */
export async function selectDriver(
  config: DaemonConfig["hypervisor"],
  logger?: SelectLogger,
  options: SelectDriverOptions = {},
): Promise<Driver> {
  return (await chooseDriver(config, logger, options)).driver;
}
