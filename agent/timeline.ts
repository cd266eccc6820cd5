/**
 * The boot timeline kestrel reports (`BootTimeline`): the guest's uptime at each phase. Stage 0
 * passes its own marks in the environment ({@linkcode STAGE0_MARKS}: uptimes in seconds as
 * `/proc/uptime` prints them; the network and workload ones only when stage 0 started the
 * workload itself); kestrel marks the rest as it boots (a phase is marked once: stage 0's
 * mark stands).
 *
 * @module
 */
import type { BootTimeline } from "../schema/boot_config.ts";

/** The environment variables stage 0 passes, and the phase each marks. */
const STAGE0_PHASES = {
  VOLANT_T_KERNEL: "kernel_ms",
  VOLANT_T_STAGE0: "stage0_ms",
  VOLANT_T_NETWORK: "network_ms",
  VOLANT_T_WORKLOAD: "workload_ms",
} as const satisfies Record<string, keyof BootTimeline>;

/** The names of stage 0's marks. */
export const STAGE0_MARKS = Object.keys(STAGE0_PHASES) as Array<keyof typeof STAGE0_PHASES>;

/** Seconds as `/proc/uptime` prints them (`12.34`) → whole milliseconds, or undefined. */
export function uptimeMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text.trim().split(/\s+/)[0]);
  return text.trim() !== "" && Number.isFinite(seconds) && seconds >= 0
    ? Math.round(seconds * 1000)
    : undefined;
}

/**
 * Collects the phases of one boot.
 *
 * @example
 * ```ts
 * import { Timeline } from "./timeline.ts";
 * const t = new Timeline(() => "1.50 1.00", { VOLANT_T_KERNEL: "0.80", VOLANT_T_STAGE0: "1.20" }, 100);
 * t.mark("mounts_ms");
 * const out = t.value();
 * console.assert(out.kernel_ms === 800 && out.stage0_ms === 1200 && out.mounts_ms === 1500);
 * console.assert(out.runtime_ms === 1400 && out.kestrel_ms === 1500);
 * ```
 */
export class Timeline {
  #read: () => string | undefined;
  #phases: BootTimeline = {};

  /**
   * `readUptime` reads `/proc/uptime` (undefined when it cannot); `env` holds stage 0's marks;
   * `sinceRuntimeMs` is how long the runtime has run (performance.now()) when this is built:
   * kestrel's code starts now, the runtime started that long before.
   */
  constructor(
    readUptime: () => string | undefined,
    env: Record<string, string | undefined>,
    sinceRuntimeMs: number,
  ) {
    this.#read = readUptime;
    for (const [name, phase] of Object.entries(STAGE0_PHASES)) {
      const ms = uptimeMs(env[name]);
      if (ms !== undefined) this.#phases[phase] = ms;
    }
    const now = this.#now();
    if (now !== undefined) {
      this.#phases.kestrel_ms = now;
      this.#phases.runtime_ms = Math.max(0, now - Math.round(sinceRuntimeMs));
    }
  }

  #now(): number | undefined {
    try {
      return uptimeMs(this.#read());
    } catch {
      return undefined;
    }
  }

  /** Records that `phase` is reached now (the first time only). */
  mark(phase: Exclude<keyof BootTimeline, "kernel_ms" | "stage0_ms">): void {
    if (this.#phases[phase] !== undefined) return;
    const now = this.#now();
    if (now !== undefined) this.#phases[phase] = now;
  }

  /** The phases so far. */
  value(): BootTimeline {
    return { ...this.#phases };
  }
}
