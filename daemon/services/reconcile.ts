/**
 * Reconciliation on daemon start: make the store agree with what runs. VMMs outlive the
 * daemon; each row's handle is re-adopted (pid + start time + API) or declared dead.
 *
 * | stored state        | VMM alive                      | VMM dead / none               |
 * |---------------------|--------------------------------|-------------------------------|
 * | starting, running   | adopt; re-attach watchers      | crashed, release, free lease  |
 * | pending             | stop it; crashed, free lease   | crashed, release, free lease  |
 * | stopping            | finish the stop ladder; stopped| stopped, release              |
 * | stopped, crashed    | stop it (should not happen)    | release leftovers             |
 *
 * "Alive" means adopted: same pid and start time, and its API answers. A recorded VMM whose
 * process runs but cannot be adopted (volantd was killed between spawning it — its pid is
 * recorded at once — and its API answering) is ended first, whatever the state. Then the
 * jails of VMs without a watched VMM are removed: cgroup (killing what runs in it: a VMM
 * spawned just before a kill, not yet recorded) and root directory.
 *
 * "Release" is the VMM run's resources (driver files, tap). A VM marked crashed here also frees
 * its address lease (its `last_ip` is kept: the next start gets it back when it is free). Then
 * the host side: every tap with the project's prefix that no adopted VMM owns is deleted
 * (left by a daemon killed between creating a tap and recording or launching its VMM), leases
 * whose VM row is gone are freed, and the port forwards and network policy rules are rewritten
 * from the store (the rules of taps no VM owns go with them).
 *
 * @module
 */
import type { VmmHandle } from "../../hypervisor/driver.ts";
import { TAP_PREFIX } from "../../net/mod.ts";
import type { VmService } from "./mod.ts";
import { attachRun } from "./_lifecycle.ts";
import { freeLease, syncForwards } from "./_network.ts";
import { syncPolicies } from "./_policy.ts";
import {
  killHandle,
  killLadder,
  messageOf,
  releaseResources,
  setState,
  stopLadder,
  type VmRuntime,
} from "./_runtime.ts";
import type { VmRow } from "../store/mod.ts";
import { sweepJails } from "./_jail.ts";

/** What {@linkcode reconcile} did, by VM name (and tap name and address). */
export interface ReconcileReport {
  /** Live VMMs now watched again. */
  adopted: string[];
  /** VMs marked crashed. */
  crashed: string[];
  /** VMs whose interrupted stop was finished. */
  stopped: string[];
  /** Taps with the project's prefix that no live VMM owned, deleted. */
  orphan_taps: string[];
  /** Addresses freed: leases of VMs marked crashed, and leases without a VM. */
  freed_leases: string[];
  /**
   * VMs whose recorded VMM could not be adopted (its API does not answer: e.g. volantd was
   * killed while it started) and was ended, with everything it held.
   */
  killed: string[];
  /** VMs whose leftover jail (cgroup, with what ran in it, and root dir) was removed. */
  swept_jails: string[];
}

async function isAlive(rt: VmRuntime, row: VmRow): Promise<boolean> {
  const handle = row.handle;
  if (!handle) return false;
  if (handle.driver !== rt.driver.name) {
    rt.logger.warn("vmm from another driver", {
      vm: row.name,
      driver: handle.driver,
      current: rt.driver.name,
    });
    return false;
  }
  try {
    return await rt.driver.adopt(handle);
  } catch (err) {
    rt.logger.warn("adopt failed", { vm: row.name, pid: handle.pid, error: err });
    return false;
  }
}

function deadMessage(row: VmRow): string {
  return row.handle
    ? `The VMM (pid ${row.handle.pid}) exited while volantd was not running`
    : "volantd restarted and found no VMM process for this VM";
}

function freed(report: ReconcileReport, ip: string | null): void {
  if (ip !== null) report.freed_leases.push(ip);
}

/**
 * Ends the recorded VMM of a row that was not adopted, if its process still runs (same pid and
 * start time), and releases what it held: a VMM nobody watches must not keep running.
 */
async function endUnadopted(rt: VmRuntime, row: VmRow, report: ReconcileReport): Promise<void> {
  if (!row.handle) return;
  try {
    const { via } = await rt.driver.shutdown(row.handle, killLadder(rt));
    if (via === "already-exited") return;
    report.killed.push(row.name);
    rt.logger.warn("ended a VMM that could not be adopted", {
      vm: row.name,
      pid: row.handle.pid,
      via,
    });
  } catch (err) {
    rt.logger.error("ending a VMM that could not be adopted failed", {
      vm: row.name,
      pid: row.handle.pid,
      error: err,
    });
  }
}

/**
 * volantd pauses a guest only while it snapshots it (or while a restored guest waits for its
 * resume): a daemon killed in between left it paused. A VM meant to run runs on.
 */
async function resumeIfPaused(rt: VmRuntime, row: VmRow & { handle: VmmHandle }): Promise<void> {
  try {
    if ((await rt.driver.info(row.handle)) !== "paused") return;
    await rt.driver.resume(row.handle);
    rt.logger.warn("resumed a guest a cut-short snapshot or restore left paused", {
      vm: row.name,
      pid: row.handle.pid,
    });
  } catch (err) {
    rt.logger.warn("cannot resume a paused guest", { vm: row.name, error: err });
  }
}

async function reconcileOne(rt: VmRuntime, row: VmRow, report: ReconcileReport): Promise<void> {
  const alive = await isAlive(rt, row);
  const name = row.name;
  if (!alive) await endUnadopted(rt, row, report);
  switch (row.state) {
    case "starting":
    case "running":
      if (alive) {
        await resumeIfPaused(rt, row as VmRow & { handle: VmmHandle });
        attachRun(rt, row as VmRow & { handle: VmmHandle });
        report.adopted.push(name);
        rt.logger.info("vm adopted", { vm: name, pid: row.handle?.pid, state: row.state });
        return;
      }
      await releaseResources(rt, name, row.handle);
      freed(report, freeLease(rt, name));
      setState(rt, name, "crashed", { last_error: deadMessage(row) });
      report.crashed.push(name);
      return;
    case "pending":
      if (alive && row.handle) await killHandle(rt, name, row.handle, killLadder(rt));
      await releaseResources(rt, name, row.handle);
      freed(report, freeLease(rt, name));
      setState(rt, name, "crashed", {
        last_error: "volantd stopped while this VM was being created",
      });
      report.crashed.push(name);
      return;
    case "stopping":
      if (alive && row.handle) {
        try {
          await rt.driver.shutdown(row.handle, stopLadder(rt));
        } catch (err) {
          await releaseResources(rt, name, row.handle);
          setState(rt, name, "crashed", {
            last_error: `Finishing an interrupted stop failed: ${messageOf(err)}`,
          });
          report.crashed.push(name);
          return;
        }
      }
      await releaseResources(rt, name, row.handle);
      setState(rt, name, "stopped");
      report.stopped.push(name);
      return;
    case "stopped":
    case "crashed":
      if (alive && row.handle) await killHandle(rt, name, row.handle, killLadder(rt));
      await releaseResources(rt, name, row.handle);
      return;
  }
}

/**
 * Reconciles every stored VM with the processes that run; call once before serving.
 *
 * @example
 * ```ts ignore
 * import { reconcile } from "./reconcile.ts";
 * const report = await reconcile(service);
 * console.log(`adopted ${report.adopted.length} VMs`);
 * ```
 */
export async function reconcile(service: VmService): Promise<ReconcileReport> {
  const rt = service.runtime;
  const report: ReconcileReport = {
    adopted: [],
    crashed: [],
    stopped: [],
    orphan_taps: [],
    freed_leases: [],
    killed: [],
    swept_jails: [],
  };
  for (const row of rt.store.list()) {
    await rt.mutex.run(row.name, async () => {
      const current = rt.store.get(row.name);
      if (!current) return;
      try {
        await reconcileOne(rt, current, report);
      } catch (err) {
        rt.logger.error("reconcile failed", { vm: row.name, error: err });
      }
    });
  }
  try {
    report.swept_jails.push(...await sweepJails(rt));
  } catch (err) {
    rt.logger.error("removing leftover jails failed", { error: err });
  }
  await reconcileNetwork(rt, report);
  rt.logger.info("reconciled", { ...report });
  return report;
}

/** Deletes orphan taps, frees leases without a VM, rewrites the port forwards and policies. */
async function reconcileNetwork(rt: VmRuntime, report: ReconcileReport): Promise<void> {
  const owned = new Set<string>();
  for (const run of rt.runs.values()) {
    const tap = rt.store.get(run.name)?.tap;
    if (tap) owned.add(tap);
  }
  try {
    for (const tap of await rt.network.listTaps(TAP_PREFIX)) {
      if (owned.has(tap)) continue;
      await rt.network.deleteTap(tap);
      report.orphan_taps.push(tap);
      for (const row of rt.store.list()) {
        if (row.tap === tap) rt.store.update(row.name, { tap: null });
      }
      rt.logger.info("orphan tap deleted", { tap });
    }
  } catch (err) {
    rt.logger.error("deleting orphan taps failed", { error: err });
  }
  for (const lease of rt.leases.releaseOrphans()) {
    report.freed_leases.push(lease.ip);
    rt.logger.info("orphan lease freed", { ip: lease.ip, vm_id: lease.vm_id });
  }
  try {
    await syncForwards(rt);
  } catch (err) {
    rt.logger.error("restoring port forwards failed", { error: err });
  }
  // The policies of the VMs that run; rules of taps no VM owns go.
  try {
    await syncPolicies(rt);
  } catch (err) {
    rt.logger.error("restoring network policies failed", { error: err });
  }
}
