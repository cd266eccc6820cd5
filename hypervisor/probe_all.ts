/**
 * Every hypervisor this build knows, probed at once, and which one the config would select:
 * what `volar doctor` shows, and the choice `hypervisor.name: auto` makes (Cloud Hypervisor,
 * then Firecracker, then QEMU; the first that is installed, new enough, has what it needs —
 * hardware KVM for the first two — and fits the config's accelerator and guest kernel).
 *
 * @module
 */
import type { DaemonConfig } from "../schema/mod.ts";
import { CH_KERNEL_FORMATS } from "./cloud_hypervisor/config.ts";
import { probeCloudHypervisor } from "./cloud_hypervisor/probe.ts";
import type { KernelFormat } from "./driver.ts";
import { FC_KERNEL_FORMATS } from "./firecracker/config.ts";
import { probeFirecracker } from "./firecracker/probe.ts";
import { detectKvm, type KvmStatus, resolveAccel } from "./kvm.ts";
import { QEMU_KERNEL_FORMATS } from "./qemu/driver.ts";
import { probeQemu } from "./qemu/probe.ts";

/** The order `hypervisor.name: auto` tries the hypervisors in. */
export const AUTO_ORDER = ["cloud-hypervisor", "firecracker", "qemu"] as const;

/** A hypervisor this build has a driver for. */
export type HypervisorName = typeof AUTO_ORDER[number];

/** What was found for one hypervisor. */
export interface HypervisorReport {
  name: HypervisorName;
  /** Installed, new enough, and (for Cloud Hypervisor and Firecracker) KVM is usable. */
  available: boolean;
  /** The binary found. */
  binary?: string;
  /** Its release, `major.minor.patch`. */
  version?: string;
  /** Whether it would run guests on hardware KVM (QEMU: per `hypervisor.accel`). */
  kvm: boolean;
  /** Kernel formats it boots. */
  kernelFormats: readonly KernelFormat[];
  /** Available, and it fits the config's accelerator and guest kernel. */
  usable: boolean;
  /** Why it is not usable, and the fix. */
  reason?: string;
}

/** What {@linkcode probeAllHypervisors} found. */
export interface HypervisorSurvey {
  /** The host's KVM. */
  kvm: KvmStatus;
  /** One report per hypervisor, in {@linkcode AUTO_ORDER}. */
  hypervisors: HypervisorReport[];
  /** The one the config selects; null when none can be used. */
  selected: HypervisorName | null;
  /** One sentence: what is selected and why, or why nothing can be. */
  summary: string;
}

/** Options of {@linkcode probeAllHypervisors}. */
export interface ProbeAllOptions {
  /** KVM detection result to use instead of checking `/dev/kvm`. */
  kvm?: KvmStatus;
  /** The guest kernel's format (from `guest.default_kernel`): drivers that cannot boot it are not usable. */
  kernelFormat?: KernelFormat;
}

const LABELS: Record<HypervisorName, string> = {
  "cloud-hypervisor": "Cloud Hypervisor",
  firecracker: "Firecracker",
  qemu: "QEMU",
};

/** Marks an available KVM-only VMM unusable when the config asks for TCG or another kernel. */
function kvmOnly(
  name: "cloud-hypervisor" | "firecracker",
  found: Omit<HypervisorReport, "name" | "kernelFormats" | "usable">,
  kernelFormats: readonly KernelFormat[],
  config: DaemonConfig["hypervisor"],
  kernelFormat: KernelFormat | undefined,
): HypervisorReport {
  const report = { name, ...found, kernelFormats, usable: false };
  if (!found.available) return report;
  if (config.accel === "tcg") {
    return {
      ...report,
      reason: `hypervisor.accel is tcg, but ${LABELS[name]} runs on hardware KVM only ` +
        "(set hypervisor.accel to auto or kvm)",
    };
  }
  if (kernelFormat && !kernelFormats.includes(kernelFormat)) {
    return {
      ...report,
      reason: `${LABELS[name]} boots ${kernelFormats.join(" or ")}, and the guest kernel is ` +
        `a ${kernelFormat} (set guest.default_kernel: auto, which boots vmlinux-generic under ` +
        `${LABELS[name]})`,
    };
  }
  return { ...report, usable: true };
}

async function qemuReport(
  config: DaemonConfig["hypervisor"],
  kvm: KvmStatus,
  kernelFormat: KernelFormat | undefined,
): Promise<HypervisorReport> {
  const found = await probeQemu(config.qemu_binary);
  const base: HypervisorReport = {
    name: "qemu",
    available: found.available,
    ...(found.binary ? { binary: found.binary } : {}),
    ...(found.version ? { version: found.version } : {}),
    kvm: false,
    kernelFormats: QEMU_KERNEL_FORMATS,
    usable: false,
    ...(found.reason ? { reason: found.reason } : {}),
  };
  if (!found.available) return base;
  let accel: "kvm" | "tcg";
  try {
    accel = resolveAccel(config.accel, kvm);
  } catch (err) {
    return { ...base, reason: (err as Error).message };
  }
  if (kernelFormat && !QEMU_KERNEL_FORMATS.includes(kernelFormat)) {
    return { ...base, kvm: accel === "kvm", reason: `QEMU cannot boot a ${kernelFormat}` };
  }
  return { ...base, kvm: accel === "kvm", usable: true };
}

/**
 * Probes Cloud Hypervisor, Firecracker and QEMU (in parallel; KVM is checked once) with the
 * binaries `config` names, and works out which one `config.name` selects. Never throws for a
 * missing or unusable hypervisor: that is in the report.
 *
 * @example
 * ```ts ignore
 * import { DaemonConfig } from "../schema/mod.ts";
 * import { probeAllHypervisors } from "./probe_all.ts";
 * const survey = await probeAllHypervisors(DaemonConfig.parse({}).hypervisor);
 * for (const h of survey.hypervisors) console.log(h.name, h.usable ? h.version : h.reason);
 * console.log(survey.summary);
 * ```
 */
export async function probeAllHypervisors(
  config: DaemonConfig["hypervisor"],
  options: ProbeAllOptions = {},
): Promise<HypervisorSurvey> {
  const kvm = options.kvm ?? await detectKvm();
  const format = options.kernelFormat;
  const [ch, fc, qemu] = await Promise.all([
    probeCloudHypervisor(config.cloud_hypervisor_binary, { kvm }).then((found) =>
      kvmOnly("cloud-hypervisor", found, CH_KERNEL_FORMATS, config, format)
    ),
    probeFirecracker(config.firecracker_binary, { kvm }).then((found) =>
      kvmOnly("firecracker", found, FC_KERNEL_FORMATS, config, format)
    ),
    qemuReport(config, kvm, format),
  ]);
  const hypervisors = [ch, fc, qemu];
  const how = (h: HypervisorReport) =>
    `${h.name} ${h.version ?? ""} with ${h.kvm ? "KVM" : "TCG (software emulation)"}`.replace(
      "  ",
      " ",
    );
  if (config.name !== "auto") {
    const forced = hypervisors.find((h) => h.name === config.name)!;
    return {
      kvm,
      hypervisors,
      selected: forced.usable ? forced.name : null,
      summary: forced.usable
        ? `hypervisor.name: ${config.name} selects ${how(forced)}`
        : `hypervisor.name is ${config.name}, which cannot be used: ${forced.reason}`,
    };
  }
  const chosen = hypervisors.find((h) => h.usable) ?? null;
  const skipped = hypervisors.slice(0, chosen ? hypervisors.indexOf(chosen) : undefined)
    .map((h) => `${h.name}: ${h.reason}`);
  return {
    kvm,
    hypervisors,
    selected: chosen?.name ?? null,
    summary: chosen
      ? `auto selects ${how(chosen)}` + (skipped.length ? ` (skipped ${skipped.join("; ")})` : "")
      : `No usable hypervisor (hypervisor.name: auto): ${skipped.join("; ")}`,
  };
}
