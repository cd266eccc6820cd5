/**
 * Host facts the guest command line needs. Under TCG (no KVM) a microvm guest must be told
 * the TSC frequency (`tsc_early_khz=`), or about one boot in three hangs calibrating it.
 *
 * @module
 */

/**
 * The TSC frequency in kHz from `/proc/cpuinfo` text (`cpu MHz : 2095.995` → 2095995).
 *
 * @example
 * ```ts
 * import { tscKhzFromCpuinfo } from "./host.ts";
 * console.assert(tscKhzFromCpuinfo("cpu MHz\t\t: 2095.995\n") === 2095995);
 * ```
 */
export function tscKhzFromCpuinfo(cpuinfo: string): number | null {
  const m = cpuinfo.match(/^cpu MHz\s*:\s*([0-9.]+)/m);
  if (!m) return null;
  const khz = Math.round(Number(m[1]) * 1000);
  return Number.isFinite(khz) && khz > 0 ? khz : null;
}

/**
 * Kernel command-line words this host adds for every guest: with KVM none; without,
 * `tsc_early_khz=<kHz> tsc=reliable` (just `tsc=reliable` when the frequency is unknown).
 *
 * @example
 * ```ts
 * import { hostCmdline } from "./host.ts";
 * console.assert(hostCmdline(true, "") === "");
 * ```
 */
export function hostCmdline(kvm: boolean, cpuinfo: string): string {
  if (kvm) return "";
  const khz = tscKhzFromCpuinfo(cpuinfo);
  return khz === null ? "tsc=reliable" : `tsc_early_khz=${khz} tsc=reliable`;
}

/** {@linkcode hostCmdline} for this machine. */
export async function readHostCmdline(kvm: boolean): Promise<string> {
  let cpuinfo = "";
  try {
    cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  } catch {
    // Not Linux, or /proc is hidden: no frequency.
  }
  return hostCmdline(kvm, cpuinfo);
}
