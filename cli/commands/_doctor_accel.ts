/**
 * The accelerator line of `volar doctor`: which accelerator guests really run with and why —
 * the running daemon's verdict (`GET /healthz`), else the cached probe verdict for the
 * hypervisor and guest kernel the config selects, else "not proven yet". Read-only: doctor
 * never boots a probe itself. Internal to the CLI.
 *
 * @module
 */
import type { Acceleration, Health } from "../../schema/mod.ts";
import type { ResolvedConfig } from "../../daemon/config.ts";
import { defaultKernelFor, KERNEL_FILES } from "../../daemon/guest.ts";
import { VerdictCache, verdictInputs } from "../../daemon/boot_probe/mod.ts";
import { failedKvmSentence } from "../../hypervisor/select.ts";
import type { HypervisorSurvey } from "../../hypervisor/probe_all.ts";
import type { DoctorCheck } from "./_doctor_checks.ts";

/** Where the accelerator verdict came from. */
export interface DoctorAccel {
  source: "daemon" | "cache" | "none";
  verdict: Acceleration | null;
}

/**
 * The verdict doctor shows: the daemon's, else the cache's for what the config selects.
 *
 * @example
 * ```ts ignore
 * import { accelVerdict } from "./_doctor_accel.ts";
 * const accel = await accelVerdict(config, survey, daemon.health);
 * ```
 */
export async function accelVerdict(
  config: ResolvedConfig,
  survey: HypervisorSurvey,
  health: Health | null,
): Promise<DoctorAccel> {
  if (health) return { source: "daemon", verdict: health.hypervisor.acceleration };
  const selected = survey.hypervisors.find((h) => h.name === survey.selected);
  if (!selected?.kvm || !selected.binary || config.hypervisor.accel === "tcg") {
    return { source: "none", verdict: null };
  }
  const kernel = defaultKernelFor(selected.name, config.guest.default_kernel);
  try {
    const inputs = await verdictInputs(
      selected.name,
      selected.binary,
      kernel,
      `${config.guest.dir}/${KERNEL_FILES[kernel].file}`,
    );
    const { entry } = await new VerdictCache(config.hypervisor.boot_verdicts).lookup(inputs);
    if (!entry) return { source: "none", verdict: null };
    const probe = {
      ok: entry.ok,
      ms: entry.ms,
      cached: true,
      checked_at: entry.checked_at,
      reason: entry.reason,
    };
    if (entry.ok) {
      return {
        source: "cache",
        verdict: {
          accel: "kvm",
          reason: `KVM: the guest kernel boots under ${selected.name} on it (probe boot, ` +
            "cached verdict)",
          probe,
        },
      };
    }
    return {
      source: "cache",
      verdict: {
        accel: "tcg",
        reason: `${failedKvmSentence(survey.kvm)}: ${
          selected.name === "qemu" ? "using TCG" : `${selected.name} cannot run`
        }`,
        probe,
      },
    };
  } catch {
    // No binary or kernel to fingerprint (the guest files check reports it): not proven.
    return { source: "none", verdict: null };
  }
}

/**
 * The accelerator line.
 *
 * @example
 * ```ts ignore
 * import { accelCheck } from "./_doctor_accel.ts";
 * console.log(accelCheck(await accelVerdict(config, survey, null), survey, config));
 * ```
 */
export function accelCheck(
  accel: DoctorAccel,
  survey: HypervisorSurvey,
  config: ResolvedConfig,
): DoctorCheck {
  const base = { id: "accel", title: "accelerator" } as const;
  const from = accel.source === "daemon" ? "volantd" : "cached probe verdict";
  const v = accel.verdict;
  if (v === null) {
    if (!survey.kvm.available || config.hypervisor.accel === "tcg") {
      return {
        ...base,
        status: "ok",
        detail: "TCG (software emulation): no KVM probe needed",
        fix: null,
      };
    }
    return {
      ...base,
      status: "skip",
      detail: "KVM is not proven yet: volantd boots the guest kernel once under it at its " +
        "next start and keeps the verdict",
      fix: null,
    };
  }
  const ms = v.probe?.ms === null || v.probe?.ms === undefined ? "" : `, ${v.probe.ms} ms`;
  if (v.accel === "kvm") {
    return { ...base, status: "ok", detail: `${v.reason} (${from}${ms})`, fix: null };
  }
  if (v.probe && !v.probe.ok) {
    const needed = config.hypervisor.accel === "kvm" ||
      config.hypervisor.name === "cloud-hypervisor" || config.hypervisor.name === "firecracker";
    return {
      ...base,
      status: needed ? "fail" : "warn",
      detail: `${v.reason} (${from}: ${v.probe.reason ?? "the probe boot failed"})`,
      fix: needed
        ? "set hypervisor.accel: auto and hypervisor.name: auto (QEMU then runs guests under TCG)"
        : "guests run under TCG (slower); KVM is used once it boots the guest (bare metal, or " +
          "nested VMX/SVM), or set hypervisor.accel: tcg to skip the probe",
    };
  }
  return { ...base, status: "ok", detail: `TCG: ${v.reason} (${from})`, fix: null };
}
