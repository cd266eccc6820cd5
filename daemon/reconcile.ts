/**
 * Reconciliation on daemon start: make the store agree with what runs. VMMs outlive the
 * daemon; each row's handle is re-adopted (pid + start time + API) or declared dead.
 *
 * | stored state        | VMM alive                      | VMM dead / none        |
 * |---------------------|--------------------------------|------------------------|
 * | starting, running   | adopt; re-attach watchers      | crashed, release       |
 * | pending             | stop it; crashed               | crashed, release       |
 * | stopping            | finish the stop ladder; stopped| stopped, release       |
 * | stopped, crashed    | stop it (should not happen)    | release leftovers      |
 *
 * @module
 */
import type { VmmHandle } from "../hypervisor/driver.ts";
import type { VmService } from "./services/mod.ts";
import { attachRun, killHandle, killLadder, stopLadder } from "./services/_lifecycle.ts";
import { messageOf, releaseResources, setState, type VmRuntime } from "./services/_runtime.ts";
import type { VmRow } from "./store/mod.ts";

/** What {@linkcode reconcile} did, by VM name. */
export interface ReconcileReport {
  /** Live VMMs now watched again. */
  adopted: string[];
  /** VMs marked crashed. */
  crashed: string[];
  /** VMs whose interrupted stop was finished. */
  stopped: string[];
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

async function reconcileOne(rt: VmRuntime, row: VmRow, report: ReconcileReport): Promise<void> {
  const alive = await isAlive(rt, row);
  const name = row.name;
  switch (row.state) {
    case "starting":
    case "running":
      if (alive) {
        attachRun(rt, row as VmRow & { handle: VmmHandle });
        report.adopted.push(name);
        rt.logger.info("vm adopted", { vm: name, pid: row.handle?.pid, state: row.state });
        return;
      }
      await releaseResources(rt, name, row.handle);
      setState(rt, name, "crashed", { last_error: deadMessage(row) });
      report.crashed.push(name);
      return;
    case "pending":
      if (alive && row.handle) await killHandle(rt, name, row.handle, killLadder(rt));
      await releaseResources(rt, name, row.handle);
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
  const report: ReconcileReport = { adopted: [], crashed: [], stopped: [] };
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
  rt.logger.info("reconciled", { ...report });
  return report;
}
