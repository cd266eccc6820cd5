/**
 * The cgroup limits of a VMM: memory for the guest plus the VMM's own (measured: see the
 * README's "Confinement" and `deno task bench`), CPU time for its vCPUs plus a share for the
 * VMM's own threads, and a cap on processes and threads.
 *
 * @module
 */
import type { CgroupLimits } from "./types.ts";

/**
 * What a VMM uses beyond guest memory, in MiB, by accelerator. Measured with QEMU 7.2 `-M
 * microvm` here (`deno task bench`): the VMM's resident memory outside guest RAM was 136 MiB
 * after a kestrel guest booted under TCG — 64 MiB of it the translated-code cache, bounded by
 * `tb-size` (unbounded, it passed 150 MiB in one boot and an OOM kill followed) — and the
 * rest (device state, I/O buffers, libraries) is what remains under KVM. Both carry a margin
 * for the page cache of the VM's files, which the memory limit also counts.
 */
export const VMM_MEMORY_OVERHEAD_MIB = { tcg: 192, kvm: 96 } as const;

/** The cgroup's CPU period, µs (the kernel's default). */
export const CPU_PERIOD_US = 100_000;

/**
 * The VMM's own threads (main loop, I/O) get this share of a CPU on top of one CPU per vCPU,
 * so a vCPU running flat out does not starve device emulation.
 */
export const VMM_CPU_SHARE = 0.25;

/** Default `pids.max`: vCPU threads, QEMU's block I/O thread pool (up to 64) and the rest. */
export const DEFAULT_PIDS_MAX = 256;

/** What the limits are computed from. */
export interface LimitInputs {
  cpus: number;
  memoryMib: number;
  /** The accelerator the VM runs with. */
  accel: "kvm" | "tcg";
  /** `security.vmm_memory_overhead_mib`; default {@linkcode VMM_MEMORY_OVERHEAD_MIB}. */
  overheadMib?: number | null;
  /** `security.pids_max`; default {@linkcode DEFAULT_PIDS_MAX}. */
  pidsMax?: number;
}

/**
 * The limits for one VMM.
 *
 * @example
 * ```ts
 * import { vmmLimits } from "./limits.ts";
 * const l = vmmLimits({ cpus: 2, memoryMib: 256, accel: "kvm" });
 * console.assert(l.memoryMaxBytes === (256 + 96) * 1024 * 1024);
 * console.assert(l.cpuQuotaUs === 225_000 && l.pidsMax === 256);
 * ```
 */
export function vmmLimits(inputs: LimitInputs): CgroupLimits {
  const overhead = inputs.overheadMib ?? VMM_MEMORY_OVERHEAD_MIB[inputs.accel];
  return {
    memoryMaxBytes: (inputs.memoryMib + overhead) * 1024 * 1024,
    cpuQuotaUs: Math.round((inputs.cpus + VMM_CPU_SHARE) * CPU_PERIOD_US),
    cpuPeriodUs: CPU_PERIOD_US,
    pidsMax: inputs.pidsMax ?? DEFAULT_PIDS_MAX,
  };
}
