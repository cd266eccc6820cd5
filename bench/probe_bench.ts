/**
 * The cost of proving KVM by booting: volantd start → `GET /healthz` answers, with a cold verdict
 * cache (the probe boot runs: on a host whose KVM hangs the guest, that is the full deadline; on
 * one whose KVM works, about one guest boot) against a warm one (the cached verdict, no boot) in
 * the same run. Each start is a real volantd in a namespace of its own (the e2e harness).
 *
 * @module
 */
import { startDaemon } from "../e2e/harness.ts";

/** What {@linkcode runProbeBench} measured. */
export interface ProbeBenchResult {
  /** Start → ready with an empty verdict cache, ms per run. */
  coldMs: number[];
  /** Start → ready with the verdict cached, ms per run. */
  cachedMs: number[];
  /** The accelerator volantd chose and why (from `/healthz`). */
  accel: string;
  reason: string;
  /** The probe boot's own duration, when one ran (from the verdict). */
  probeMs: number | null;
}

async function startToReady(verdicts: string): Promise<{ ms: number; health: unknown }> {
  const started = performance.now();
  const daemon = await startDaemon({ env: { VOLANT_BOOT_VERDICTS: verdicts } });
  const ms = performance.now() - started;
  try {
    const health = (await daemon.api("/healthz")).body;
    return { ms, health };
  } finally {
    await daemon.dispose();
  }
}

/**
 * Starts volantd `runs` times cold and `runs` times cached, interleaved.
 *
 * @example
 * ```ts ignore
 * import { runProbeBench } from "./probe_bench.ts";
 * const r = await runProbeBench(3);
 * console.log(r.coldMs, r.cachedMs);
 * ```
 */
export async function runProbeBench(runs: number): Promise<ProbeBenchResult> {
  const dir = await Deno.makeTempDir({ prefix: "volant-probe-bench-" });
  const result: ProbeBenchResult = {
    coldMs: [],
    cachedMs: [],
    accel: "",
    reason: "",
    probeMs: null,
  };
  try {
    for (let i = 0; i < runs; i++) {
      const verdicts = `${dir}/verdicts-${i}.json`;
      const cold = await startToReady(verdicts);
      result.coldMs.push(cold.ms);
      const cached = await startToReady(verdicts);
      result.cachedMs.push(cached.ms);
      const h = cold.health as {
        hypervisor: {
          acceleration: { accel: string; reason: string; probe: { ms: number | null } | null };
        };
      };
      result.accel = h.hypervisor.acceleration.accel;
      result.reason = h.hypervisor.acceleration.reason;
      result.probeMs = h.hypervisor.acceleration.probe?.ms ?? null;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return result;
}
