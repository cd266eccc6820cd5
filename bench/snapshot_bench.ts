/**
 * Snapshot benchmark (issue 18): for the busybox httpd appliance under kestrel
 * (e2e/httpd_appliance.ts) at two guest memory sizes, the snapshot's pause and size on disk, and
 * `POST /api/v1/vms/:name/restore` → `running` against a cold `POST /api/v1/vms` → `running` of
 * the same VM (created, timed, deleted), interleaved; then a clone (`from_snapshot`: resumed
 * with its own identity) → `running` beside the restored VM, and the host memory (VMM RSS) of
 * the clone against the cold VM's. At most two VMs at a time.
 *
 * @module
 */
import { type E2eDaemon, startDaemon } from "../e2e/harness.ts";
import { installHttpd } from "../e2e/httpd_appliance.ts";
import { SnapshotRecord, VmRecord } from "../schema/mod.ts";

/** One memory size's figures. */
export interface SnapshotSizeResult {
  /** Guest memory, MiB. */
  memoryMb: number;
  /** Cold `POST /api/v1/vms` → `running`, ms, one per round. */
  coldMs: number[];
  /** `POST …/restore` of a stopped VM → `running`, ms, one per round. */
  restoreMs: number[];
  /** How long the guest was paused for each snapshot (the daemon's `save_ms`), ms. */
  pausedMs: number[];
  /** `POST …/snapshots` round trip, ms. */
  snapshotMs: number[];
  /** Snapshot size on disk, bytes. */
  bytes: number[];
  /** `POST /api/v1/vms` with `from_snapshot` → `running` (a clone), ms, one per round. */
  cloneMs: number[];
  /** The cold VM's VMM resident memory once running, bytes. */
  coldRssBytes: number[];
  /** The clone's VMM resident memory once running, bytes. */
  cloneRssBytes: number[];
}

/** What the snapshot benchmark measured. */
export interface SnapshotBenchResult {
  accel: string;
  sizes: SnapshotSizeResult[];
}

async function call(daemon: E2eDaemon, path: string, body?: unknown): Promise<unknown> {
  const r = await daemon.api(path, {
    method: body === undefined ? "GET" : "POST",
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  if (r.status >= 300) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function untilRunning(daemon: E2eDaemon, name: string): Promise<VmRecord> {
  return VmRecord.parse(
    await call(daemon, `/api/v1/vms/${name}/wait?state=running&timeout_ms=180000`),
  );
}

/** A process's resident memory (bytes) after a second to settle; 0 when unreadable. */
async function settledRss(pid: number | null): Promise<number> {
  if (pid === null) return 0;
  await new Promise((r) => setTimeout(r, 1_000));
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

/**
 * Runs `rounds` rounds per memory size.
 *
 * @example
 * ```ts ignore
 * import { runSnapshotBench } from "./snapshot_bench.ts";
 * const r = await runSnapshotBench(3);
 * ```
 */
export async function runSnapshotBench(
  rounds: number,
  sizes: readonly number[] = [256, 1024],
): Promise<SnapshotBenchResult> {
  const daemon = await startDaemon();
  let accel = "tcg";
  const out: SnapshotSizeResult[] = [];
  try {
    await installHttpd(daemon, "app");
    for (const memoryMb of sizes) {
      const r: SnapshotSizeResult = {
        memoryMb,
        coldMs: [],
        restoreMs: [],
        pausedMs: [],
        snapshotMs: [],
        bytes: [],
        cloneMs: [],
        coldRssBytes: [],
        cloneRssBytes: [],
      };
      for (let i = 0; i < rounds; i++) {
        const name = `snap-${memoryMb}`;
        // Cold: create → running.
        let t0 = performance.now();
        await call(daemon, "/api/v1/vms", { name, plugin: "app", memory_mb: memoryMb });
        const vm = await untilRunning(daemon, name);
        r.coldMs.push(performance.now() - t0);
        accel = vm.kvm ? "kvm" : "tcg";
        r.coldRssBytes.push(await settledRss(vm.pid));
        // Snapshot the running VM, stop it, restore → running.
        t0 = performance.now();
        const snap = SnapshotRecord.parse(
          await call(daemon, `/api/v1/vms/${name}/snapshots`, { snapshot: `s-${i}` }),
        );
        r.snapshotMs.push(performance.now() - t0);
        r.pausedMs.push(snap.save_ms);
        r.bytes.push(snap.bytes);
        await call(daemon, `/api/v1/vms/${name}/stop`, {});
        t0 = performance.now();
        await call(daemon, `/api/v1/vms/${name}/restore`, { from: `s-${i}` });
        await untilRunning(daemon, name);
        r.restoreMs.push(performance.now() - t0);
        // A clone beside it: resumed with its own identity.
        t0 = performance.now();
        await call(daemon, "/api/v1/vms", { name: `${name}-c`, from_snapshot: `s-${i}` });
        const clone = await untilRunning(daemon, `${name}-c`);
        r.cloneMs.push(performance.now() - t0);
        r.cloneRssBytes.push(await settledRss(clone.pid));
        await daemon.api(`/api/v1/vms/${name}-c`, { method: "DELETE" });
        await daemon.api(`/api/v1/vms/${name}`, { method: "DELETE" });
        await daemon.api(`/api/v1/snapshots/s-${i}`, { method: "DELETE" });
      }
      out.push(r);
    }
    return { accel, sizes: out };
  } finally {
    await daemon.dispose();
  }
}
