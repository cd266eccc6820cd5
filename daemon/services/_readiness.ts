/**
 * Readiness: a VM is `running` once kestrel answers `GET http://<ip>:<agent port>/healthz`
 * (through the daemon's kestrel client, with the VM's secret) with a 200 and a valid
 * AgentHealth naming the VM (polled every ~100 ms, each probe with a short
 * deadline); `boot_ms` counts from the start request to that answer. The serial console's
 * `KESTREL_READY {json}` line is still watched: it carries kestrel's memory report (logged),
 * tells a guest network problem from a guest that never started, and is the readiness signal
 * for a VM that holds no address (one adopted from before networking).
 *
 * @module
 */
import { type AgentHealth, READY_MARKER } from "../../schema/mod.ts";
import { type KestrelTarget, kestrelTarget } from "../kestrel/target.ts";
import { type ReadyResult, tailLines, waitForReadyLine } from "./_serial.ts";
import { killHandle, killLadder, type Run, setState, type VmRuntime } from "./_runtime.ts";
import { faultPoint } from "../fault.ts";
import { type HealthWithWorkload, notReadyReason, summarize, watchWorkload } from "./_workload.ts";

/** What polling kestrel's `/healthz` found. */
export type HealthResult =
  | { kind: "ready"; health?: AgentHealth }
  | { kind: "timeout"; reason: string; attempts: number }
  | { kind: "aborted" };

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(id);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const id = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/**
 * Polls kestrel at `target` until it answers as VM `name`, `timeoutMs` passes or `signal`
 * aborts. At least one probe is made.
 */
export async function pollHealth(
  rt: VmRuntime,
  target: KestrelTarget,
  name: string,
  options: { timeoutMs: number; signal: AbortSignal; hasPlugin?: boolean },
): Promise<HealthResult> {
  const hasPlugin = options.hasPlugin ?? false;
  const deadline = performance.now() + options.timeoutMs;
  const interval = rt.config.probeIntervalMs ?? 100;
  const perProbe = rt.config.probeTimeoutMs ?? 1000;
  let reason = "no probe was made";
  let attempts = 0;
  while (true) {
    if (options.signal.aborted) return { kind: "aborted" };
    const began = performance.now();
    const left = deadline - began;
    if (left <= 0 && attempts > 0) return { kind: "timeout", reason, attempts };
    attempts++;
    const probe = await rt.network.probeAgent(target, {
      timeoutMs: Math.max(1, Math.min(perProbe, left)),
      signal: options.signal,
    });
    if (options.signal.aborted) return { kind: "aborted" };
    const notReady = probe.ok && probe.health.name === name
      ? notReadyReason(probe.health as HealthWithWorkload, hasPlugin)
      : undefined;
    if (probe.ok && probe.health.name === name && notReady === null) {
      return { kind: "ready", health: probe.health };
    }
    reason = !probe.ok
      ? probe.reason
      : probe.health.name !== name
      ? `it answered as VM ${probe.health.name}`
      : `kestrel answered, but ${notReady}`;
    await sleep(
      Math.min(interval - (performance.now() - began), deadline - performance.now()),
      options.signal,
    );
  }
}

/**
 * Polls a TCP port of the guest until it accepts a connection (plugins whose init is not
 * kestrel: nothing in the guest reports, the workload's own port is the signal).
 */
export async function pollTcp(
  rt: VmRuntime,
  ip: string,
  port: number,
  options: { timeoutMs: number; signal: AbortSignal },
): Promise<HealthResult> {
  const deadline = performance.now() + options.timeoutMs;
  const interval = rt.config.probeIntervalMs ?? 100;
  let reason = "no probe was made";
  let attempts = 0;
  while (true) {
    if (options.signal.aborted) return { kind: "aborted" };
    const began = performance.now();
    const left = deadline - began;
    if (left <= 0 && attempts > 0) return { kind: "timeout", reason, attempts };
    attempts++;
    const probe = await rt.network.probeTcp(ip, port, {
      timeoutMs: Math.max(1, Math.min(rt.config.probeTimeoutMs ?? 1000, left)),
      signal: options.signal,
    });
    if (options.signal.aborted) return { kind: "aborted" };
    if (probe.ok) return { kind: "ready" };
    reason = `${ip}:${port}: ${probe.reason}`;
    await sleep(
      Math.min(interval - (performance.now() - began), deadline - performance.now()),
      options.signal,
    );
  }
}

/** The port to watch for a plugin that runs without kestrel, else `undefined`. */
function directPort(rt: VmRuntime, plugin: string | null): number | undefined {
  if (plugin === null || !rt.plugins) return undefined;
  let manifest;
  try {
    manifest = rt.plugins.parsedManifest(plugin);
  } catch {
    return undefined;
  }
  if (manifest.init.mode === "kestrel") return undefined;
  if (manifest.health_check?.kind === "tcp" && manifest.health_check.port) {
    return manifest.health_check.port;
  }
  const port = new URL(manifest.workload.base_url).port;
  return port === "" ? 80 : Number(port);
}

/** Whether the run is still the VM's current one and the daemon still cares. */
function current(rt: VmRuntime, run: Run): boolean {
  return !rt.closing.signal.aborted && !run.expectExit && rt.runs.get(run.name) === run;
}

/**
 * Watches a `starting` VM until it is ready (`running`, with `boot_ms`) or the deadline passes
 * (`crashed`, its VMM ended, the reason in `last_error`).
 */
export function watchReady(rt: VmRuntime, run: Run, serialLog: string, offset: number): void {
  const timeoutMs = run.startedAtMs + rt.config.readyMs - rt.now().getTime();
  const signal = AbortSignal.any([run.abort.signal, rt.closing.signal]);
  const row = rt.store.get(run.name);
  const ip = row?.ip ?? null;
  const target = row === undefined ? undefined : kestrelTarget(row);
  const plugin = row?.plugin ?? null;
  const direct = directPort(rt, plugin);
  // A plugin or an image gives kestrel a workload: the VM is ready when it is healthy.
  const hasPlugin = (plugin !== null || (row?.image ?? null) !== null) && direct === undefined;
  let serial: ReadyResult | undefined;
  const serialDone = waitForReadyLine(serialLog, offset, {
    timeoutMs,
    signal,
    pollMs: rt.config.pollMs,
  }).then((result) => {
    serial = result;
    if (result.kind === "ready") {
      rt.logger.info("kestrel report", { vm: run.name, report: result.report ?? result.line });
      // The guest's own account of its boot (validated, bounded numbers), for this run only
      // (never after the service closed: the store may be gone).
      const timeline = result.report?.timeline;
      if (timeline && !signal.aborted && current(rt, run)) {
        try {
          if (rt.store.get(run.name)?.handle?.pid === run.handle.pid) {
            rt.store.update(run.name, { timeline });
          }
        } catch (err) {
          rt.logger.warn("boot timeline not recorded", { vm: run.name, error: err });
        }
      }
    }
    return result;
  });
  const ready: Promise<HealthResult | ReadyResult> = ip === null || target === undefined
    ? serialDone
    : direct !== undefined
    ? pollTcp(rt, ip, direct, { timeoutMs, signal })
    : pollHealth(rt, target, run.name, { timeoutMs, signal, hasPlugin });
  ready.then((result) => {
    if (result.kind === "aborted" || !current(rt, run)) return;
    return rt.mutex.run(run.name, async () => {
      if (!current(rt, run)) return;
      const row = rt.store.get(run.name);
      if (row?.state !== "starting") return;
      if (result.kind === "ready") {
        const readyAt = rt.now();
        const workload = "health" in result && result.health
          ? (result.health as HealthWithWorkload).workload
          : undefined;
        setState(rt, run.name, "running", {
          ready_at: readyAt.toISOString(),
          boot_ms: Math.max(0, Math.round(readyAt.getTime() - run.startedAtMs)),
          ...(workload ? { workload: summarize(workload, readyAt.toISOString()) } : {}),
        });
        rt.logger.info("vm ready", { vm: run.name, ip: ip ?? undefined });
        faultPoint("vm_ready");
        if (hasPlugin && target !== undefined) watchWorkload(rt, run, target);
        return;
      }
      const tail = await tailLines(serialLog, 5);
      await killHandle(rt, run.name, run.handle, killLadder(rt));
      setState(rt, run.name, "crashed", {
        last_error: (direct !== undefined && ip !== null
          ? `VM ${run.name} never became ready: its workload (run without kestrel) did not ` +
            `accept connections on ${ip}:${direct} within ${rt.config.readyMs} ms` +
            ("reason" in result ? ` (last probe: ${result.reason})` : "")
          : neverReady(rt, run.name, target, result, serial?.kind === "ready")) +
          (tail ? `; last serial output (${serialLog}):\n${tail}` : " (no serial output)"),
      });
    });
  }).catch((err) => rt.logger.error("ready watcher failed", { vm: run.name, error: err }));
}

function neverReady(
  rt: VmRuntime,
  name: string,
  target: KestrelTarget | undefined,
  result: HealthResult | ReadyResult,
  sawLine: boolean,
): string {
  const within = `within ${rt.config.readyMs} ms`;
  if (target === undefined) {
    return `VM ${name} never became ready: no ${READY_MARKER} line on its serial console ${within}`;
  }
  const last = result.kind === "timeout" && "reason" in result
    ? ` (last probe: ${result.reason})`
    : "";
  const url = `http://${target.ip}:${target.port}/healthz`;
  return `VM ${name} never became ready: kestrel did not answer ${url} ${within}${last}` +
    (sawLine
      ? `, although it printed ${READY_MARKER} on the serial console: check the guest network ` +
        "(tap on the bridge, the bridge's address, the guest's address)"
      : `, and printed no ${READY_MARKER} line on the serial console`);
}
