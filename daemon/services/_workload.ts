/**
 * The plugin's workload as the daemon sees it through kestrel's `/healthz`: a plugin VM is
 * `running` only once its workload is healthy, and afterwards a watcher polls kestrel, keeps
 * the VM's `workload` summary current and records `vm.workload` events when the workload turns
 * unhealthy or healthy again, is restarted by kestrel, or fails for good.
 *
 * @module
 */
import type { AgentHealth, WorkloadStatus } from "../../schema/agent.ts";
import type { WorkloadSummary } from "../store/mod.ts";
import type { Run, VmRuntime } from "./_runtime.ts";
import type { KestrelTarget } from "../kestrel/target.ts";

/** kestrel's health with its workload (absent in kestrels older than plugins). */
export type HealthWithWorkload = AgentHealth & { workload?: WorkloadStatus | null };

/** The summary the daemon stores of a workload status. */
export function summarize(status: WorkloadStatus, at: string): WorkloadSummary {
  return {
    state: status.state,
    healthy: status.healthy,
    restarts: status.restarts,
    checked_at: at,
    error: status.last_error ?? status.health.last_error ?? null,
  };
}

/**
 * Why a plugin VM is not ready yet, or `null` when its workload is healthy. A VM without a
 * plugin is ready as soon as kestrel answers.
 */
export function notReadyReason(health: HealthWithWorkload, hasPlugin: boolean): string | null {
  if (!hasPlugin) return null;
  const w = health.workload;
  if (!w) return "kestrel reports no workload";
  if (w.healthy) return null;
  const why = w.last_error ?? w.health.last_error;
  return `the workload is ${w.state}${w.health.status === "unhealthy" ? " and unhealthy" : ""}` +
    (why ? ` (${why})` : "");
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const id = setTimeout(done, ms);
    function done() {
      clearTimeout(id);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

/** Records a new status with the events of the changes it shows, in one transaction. */
export function recordWorkload(rt: VmRuntime, name: string, status: WorkloadStatus): void {
  const at = rt.now().toISOString();
  const next = summarize(status, at);
  const changes = rt.transaction(() => {
    const row = rt.store.get(name);
    if (!row) return [];
    const prev = row.workload;
    rt.store.update(name, { workload: next });
    const changes: Array<"healthy" | "unhealthy" | "restarted" | "failed"> = [];
    if (prev && next.restarts > prev.restarts) changes.push("restarted");
    if (next.state === "failed" && prev?.state !== "failed") changes.push("failed");
    else if (prev && prev.healthy !== next.healthy) {
      changes.push(next.healthy ? "healthy" : "unhealthy");
    }
    for (const change of changes) {
      rt.events.record({ type: "vm.workload", name, change, at, workload: next });
    }
    return changes;
  });
  for (const change of changes) {
    rt.logger[change === "healthy" ? "info" : "warn"]("workload " + change, {
      vm: name,
      state: next.state,
      restarts: next.restarts,
      error: next.error ?? undefined,
    });
  }
}

/** Polls kestrel at `target` while the run lasts (plugin VMs, after `running`). */
export function watchWorkload(rt: VmRuntime, run: Run, target: KestrelTarget): void {
  const every = rt.config.workloadPollMs ?? 2_000;
  const signal = AbortSignal.any([run.abort.signal, rt.closing.signal]);
  (async () => {
    while (!signal.aborted) {
      await sleep(every, signal);
      if (signal.aborted) return;
      const probe = await rt.network.probeAgent(target, {
        timeoutMs: rt.config.probeTimeoutMs ?? 1000,
        signal,
      });
      if (signal.aborted || rt.runs.get(run.name) !== run) return;
      const workload = probe.ok ? (probe.health as HealthWithWorkload).workload : undefined;
      if (workload) recordWorkload(rt, run.name, workload);
    }
  })().catch((err) => rt.logger.error("workload watcher failed", { vm: run.name, error: err }));
}
