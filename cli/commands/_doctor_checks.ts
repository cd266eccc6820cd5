/**
 * The checklist of `volar doctor` and its first checks, each read-only: the line type, KVM and
 * the hypervisors (from `probeAllHypervisors`), and the guest files the config points at. Every
 * check is a value with a status, what was found and, when something is missing, the fix. The
 * host checks (bridge, disk, tools, daemon) are in `_doctor_host.ts`. Internal to the CLI.
 *
 * @module
 */
import type { Acceleration, KernelName } from "../../schema/mod.ts";
import type { ResolvedConfig } from "../../daemon/config.ts";
import { GUEST_FIX, INITRAMFS_FILE, KERNEL_FILES, RUNTIME_DISK_FILE } from "../../daemon/guest.ts";
import type { HypervisorSurvey } from "../../hypervisor/probe_all.ts";

/** How one check came out: `fail` means a VM cannot boot until it is fixed. */
export type CheckStatus = "ok" | "warn" | "fail" | "skip";

/** One line of the checklist. */
export interface DoctorCheck {
  /** Stable key: `kvm`, `hypervisor.qemu`, `guest.kernel`, `tool.nft`, … */
  id: string;
  status: CheckStatus;
  /** Short name shown in the checklist. */
  title: string;
  /** What was found. */
  detail: string;
  /** What to do about it; null when nothing needs doing. */
  fix: string | null;
}

/**
 * Splits `reason; fix` (the shape of KVM and connection reasons) into its two halves.
 *
 * @example
 * ```ts
 * import { splitFix } from "./_doctor_checks.ts";
 * console.assert(splitFix("no socket; start volantd").fix === "start volantd");
 * ```
 */
export function splitFix(text: string): { detail: string; fix: string | null } {
  const at = text.indexOf("; ");
  return at === -1
    ? { detail: text, fix: null }
    : { detail: text.slice(0, at), fix: text.slice(at + 2) };
}

/**
 * A size for humans: `812 B`, `14.2 MiB`, `3.1 GiB`.
 *
 * @example
 * ```ts
 * import { formatSize } from "./_doctor_checks.ts";
 * console.assert(formatSize(812) === "812 B" && formatSize(3 * 1024 ** 3) === "3.0 GiB");
 * ```
 */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

// ---------------------------------------------------------------------------------------------
// KVM and hypervisors

/**
 * The KVM line: a warning without KVM (QEMU emulates), a failure when the config needs it.
 *
 * @example
 * ```ts ignore
 * import { kvmCheck } from "./_doctor_checks.ts";
 * console.log(kvmCheck(survey, config));
 * ```
 */
export function kvmCheck(
  survey: HypervisorSurvey,
  config: ResolvedConfig,
  verdict: Acceleration | null = null,
): DoctorCheck {
  const { kvm } = survey;
  if (kvm.available) {
    const api = kvm.apiVersion === undefined ? "" : ` (KVM API ${kvm.apiVersion})`;
    if (verdict?.probe && !verdict.probe.ok) {
      // It opens and answers, and still cannot run the guest: the accelerator line says more.
      return {
        id: "kvm",
        status: "warn",
        title: "KVM",
        detail: `${kvm.path} answers${api}, but the guest kernel does not boot under it`,
        fix: null,
      };
    }
    const proven = verdict?.probe?.ok ? ", proven by a probe boot" : "";
    return {
      id: "kvm",
      status: "ok",
      title: "KVM",
      detail: `${kvm.path} usable${api}${proven}`,
      fix: null,
    };
  }
  const { detail, fix } = splitFix(kvm.reason ?? `${kvm.path} is unusable`);
  const hv = config.hypervisor;
  const needed = hv.accel === "kvm" || hv.name === "cloud-hypervisor" ||
    hv.name === "firecracker";
  return {
    id: "kvm",
    status: needed ? "fail" : "warn",
    title: "KVM",
    detail: needed
      ? `${detail}, and the config needs it (hypervisor.name: ${hv.name}, accel: ${hv.accel})`
      : `${detail}: guests run under QEMU's software emulation (TCG), several times slower`,
    fix,
  };
}

/**
 * Splits a probe's reason into what was found and the fix: a trailing parenthesised clause
 * (`… not found on PATH (install …, or set …)`) or the part after the first `; `.
 *
 * @example
 * ```ts
 * import { splitReason } from "./_doctor_checks.ts";
 * const r = splitReason("fc not found on PATH (install it, or set hypervisor.firecracker_binary)");
 * console.assert(r.detail === "fc not found on PATH" && r.fix?.startsWith("install it"));
 * ```
 */
export function splitReason(text: string): { detail: string; fix: string | null } {
  if (text.endsWith(")")) {
    let depth = 0;
    for (let i = text.length - 1; i >= 0; i--) {
      if (text[i] === ")") depth++;
      else if (text[i] === "(" && --depth === 0) {
        if (i > 0 && text[i - 1] === " ") {
          return { detail: text.slice(0, i - 1), fix: text.slice(i + 1, -1) };
        }
        break;
      }
    }
  }
  return splitFix(text);
}

/**
 * One line per hypervisor, then the selection: which one the config's `hypervisor.name` takes
 * (and which `auto` would). Only the selection can fail; a hypervisor that is not usable is
 * skipped unless the config names it.
 *
 * @example
 * ```ts ignore
 * import { hypervisorChecks } from "./_doctor_checks.ts";
 * console.log(hypervisorChecks(survey, config));
 * ```
 */
export function hypervisorChecks(
  survey: HypervisorSurvey,
  config: ResolvedConfig,
): DoctorCheck[] {
  const name = config.hypervisor.name;
  const checks: DoctorCheck[] = survey.hypervisors.map((h) => {
    const found = [h.version, h.binary ? `at ${h.binary}` : undefined].filter(Boolean).join(" ");
    if (h.usable) {
      return {
        id: `hypervisor.${h.name}`,
        status: "ok",
        title: h.name,
        detail: `${found}, ${h.kvm ? "hardware KVM" : "TCG (software emulation)"}, boots ` +
          h.kernelFormats.join(" or "),
        fix: null,
      };
    }
    const { detail, fix } = splitReason(h.reason ?? "unusable");
    return {
      id: `hypervisor.${h.name}`,
      status: name === h.name ? "fail" : "skip",
      title: h.name,
      detail: h.version && !detail.includes(h.version) ? `${h.version}: ${detail}` : detail,
      fix,
    };
  });
  const chosen = survey.hypervisors.find((h) => h.name === survey.selected);
  const auto = survey.hypervisors.find((h) => h.usable) ?? null;
  const passed = survey.hypervisors.slice(0, chosen ? survey.hypervisors.indexOf(chosen) : 0)
    .map((h) => h.name);
  let detail: string;
  if (chosen) {
    const how = `${chosen.name}${chosen.version ? ` ${chosen.version}` : ""} with ` +
      (chosen.kvm ? "hardware KVM" : "TCG (software emulation)");
    detail = `hypervisor.name: ${name} selects ${how}`;
    if (name === "auto" && passed.length > 0) {
      detail += ` (passed over ${passed.join(" and ")}: see above)`;
    }
    if (name !== "auto" && auto && auto.name !== chosen.name) {
      detail += ` (auto would select ${auto.name})`;
    }
  } else {
    detail = `hypervisor.name: ${name} selects nothing: ` +
      (name === "auto" ? "no hypervisor is usable (see above)" : `${name} is not usable`);
  }
  checks.push({
    id: "hypervisor",
    status: chosen ? "ok" : "fail",
    title: "hypervisor",
    detail,
    fix: chosen
      ? null
      : name !== "auto" && auto
      ? `set hypervisor.name: auto (it would select ${auto.name}), or fix ${name} as above`
      : "install QEMU (apt-get install --no-install-recommends qemu-system-x86), which runs " +
        "everywhere, or fix one of the hypervisors above",
  });
  return checks;
}

// ---------------------------------------------------------------------------------------------
// Guest files

/** A guest file the config points at. */
export interface GuestFile {
  role: "kernel" | "initramfs" | "runtime_disk";
  path: string;
  exists: boolean;
  size_bytes: number | null;
}

/**
 * The kernel `kernel` (`guest.default_kernel`, or for `auto` the selected hypervisor's own),
 * initramfs and runtime disk in `guest.dir`.
 *
 * @example
 * ```ts ignore
 * import { guestFiles } from "./_doctor_checks.ts";
 * console.log(await guestFiles(config));
 * ```
 */
export async function guestFiles(
  config: ResolvedConfig,
  kernel: KernelName,
): Promise<GuestFile[]> {
  const dir = config.guest.dir;
  const wanted: Array<[GuestFile["role"], string]> = [
    ["kernel", `${dir}/${KERNEL_FILES[kernel].file}`],
    ["initramfs", `${dir}/${INITRAMFS_FILE}`],
    ["runtime_disk", `${dir}/${RUNTIME_DISK_FILE}`],
  ];
  return await Promise.all(wanted.map(async ([role, path]) => {
    try {
      const info = await Deno.stat(path);
      return { role, path, exists: info.isFile, size_bytes: info.isFile ? info.size : null };
    } catch {
      return { role, path, exists: false, size_bytes: null };
    }
  }));
}

const GUEST_TITLES: Record<GuestFile["role"], string> = {
  kernel: "guest kernel",
  initramfs: "guest initramfs",
  runtime_disk: "guest runtime disk",
};

/**
 * One line per guest file: present with its size, or missing (a failure) with the fix.
 *
 * @example
 * ```ts ignore
 * import { guestChecks, guestFiles } from "./_doctor_checks.ts";
 * console.log(guestChecks(await guestFiles(config), config));
 * ```
 */
export function guestChecks(files: readonly GuestFile[], kernel: KernelName): DoctorCheck[] {
  return files.map((f) => {
    const title = GUEST_TITLES[f.role];
    const what = f.role === "kernel" ? `${kernel} (${KERNEL_FILES[kernel].format}) ` : "";
    return f.exists
      ? {
        id: `guest.${f.role}`,
        status: "ok",
        title,
        detail: `${what}${f.path}, ${formatSize(f.size_bytes ?? 0)}`,
        fix: null,
      }
      : {
        id: `guest.${f.role}`,
        status: "fail",
        title,
        detail: `${what}${f.path} is missing`,
        fix: GUEST_FIX,
      };
  });
}
