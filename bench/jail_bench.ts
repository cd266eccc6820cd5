/**
 * VMM jail benchmark (issue 15): what confining a VMM costs, measured in one run.
 *
 * - `POST /api/v1/vms` → `running` of a bare VM (kestrel only, 256 MiB) on a daemon with the
 *   jail (own uid, cgroup, mount namespace) vs one with `security.jail: off`, interleaved (the
 *   side that goes first alternates), one VM at a time.
 * - The VMM's own host memory: its resident memory outside the guest's RAM mapping
 *   (`/proc/<pid>/smaps`) once the guest is ready, and what its cgroup is charged against the
 *   limit the jail wrote (guest memory + the overhead allowance).
 *
 * @module
 */
import { VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, startDaemon } from "../e2e/harness.ts";

/** What the jail benchmark measured (one value per round and side). */
export interface JailBenchResult {
  /** `tcg` or `kvm`. */
  accel: string;
  /** Guest memory of the VMs, MiB. */
  memoryMib: number;
  /** `POST /api/v1/vms` → running, ms, jailed. */
  jailedMs: number[];
  /** The same with `security.jail: off`. */
  unjailedMs: number[];
  /** The VMM's resident memory outside guest RAM at ready, KiB (jailed rounds). */
  overheadKb: number[];
  /** The same for the unjailed VMM. */
  unjailedOverheadKb: number[];
  /** Guest RAM resident at ready, KiB (jailed rounds). */
  guestRssKb: number[];
  /** The cgroup's charge at ready, bytes (jailed rounds). */
  cgroupBytes: number[];
  /** The memory limit the jail wrote, bytes. */
  memoryMaxBytes: number;
  /** The cgroup version the jail used. */
  cgroupVersion: string;
}

const MEMORY_MIB = 256;

/** RSS (KiB) of the guest RAM mapping (anonymous, exactly the guest's size) and of the rest. */
export async function vmmMemory(pid: number, guestMib: number): Promise<{
  guestKb: number;
  otherKb: number;
}> {
  const smaps = await Deno.readTextFile(`/proc/${pid}/smaps`);
  let guestKb = 0;
  let otherKb = 0;
  let guestFound = false;
  for (const region of smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const head = region.slice(0, region.indexOf("\n"));
    const [range, perms, , , inode] = head.split(/\s+/);
    const [start, end] = range!.split("-").map((x) => parseInt(x, 16));
    const rss = Number(region.match(/^Rss:\s+(\d+) kB/m)?.[1] ?? 0);
    const isGuest = !guestFound && end! - start! === guestMib * 1024 * 1024 &&
      perms === "rw-p" && inode === "0";
    if (isGuest) {
      guestFound = true;
      guestKb += rss;
    } else {
      otherKb += rss;
    }
  }
  if (!guestFound) throw new Error(`no ${guestMib} MiB guest RAM mapping in pid ${pid}`);
  return { guestKb, otherKb };
}

async function cgroupCharge(vm: VmRecord): Promise<number> {
  const cg = vm.jail!.cgroup;
  const file = cg.version === "v2" ? "memory.current" : "memory.usage_in_bytes";
  for (const dir of cg.paths) {
    const text = await Deno.readTextFile(`${dir}/${file}`).catch(() => null);
    if (text !== null) return Number(text.trim());
  }
  throw new Error(`no ${file} in ${cg.paths.join(", ")}`);
}

async function createReady(daemon: E2eDaemon, name: string): Promise<{ ms: number; vm: VmRecord }> {
  const started = performance.now();
  const created = await daemon.api("/api/v1/vms", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, memory_mb: MEMORY_MIB }),
  });
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
  const waited = await daemon.api(`/api/v1/vms/${name}/wait?state=running&timeout_ms=180000`);
  const ms = performance.now() - started;
  if (waited.status !== 200) throw new Error(`wait failed: ${JSON.stringify(waited.body)}`);
  return { ms, vm: VmRecord.parse(waited.body) };
}

async function remove(daemon: E2eDaemon, name: string): Promise<void> {
  const res = await daemon.api(`/api/v1/vms/${name}`, { method: "DELETE" });
  if (res.status !== 200) throw new Error(`delete failed: ${JSON.stringify(res.body)}`);
}

/**
 * Runs `runs` interleaved rounds (one jailed and one unjailed VM each) after one warm-up VM.
 *
 * @example
 * ```ts ignore
 * import { runJailBench } from "./jail_bench.ts";
 * const r = await runJailBench(3);
 * console.log(r.jailedMs, r.unjailedMs, r.overheadKb);
 * ```
 */
export async function runJailBench(runs: number): Promise<JailBenchResult> {
  const jailed = await startDaemon();
  let unjailed: E2eDaemon | undefined;
  try {
    unjailed = await startDaemon({ security: ["jail: off"] });
    const result: JailBenchResult = {
      accel: "tcg",
      memoryMib: MEMORY_MIB,
      jailedMs: [],
      unjailedMs: [],
      overheadKb: [],
      unjailedOverheadKb: [],
      guestRssKb: [],
      cgroupBytes: [],
      memoryMaxBytes: 0,
      cgroupVersion: "",
    };
    // Warm-up: page cache of the guest files, the daemons' first VM.
    const warm = await createReady(jailed, "warm");
    result.accel = warm.vm.kvm ? "kvm" : "tcg";
    await remove(jailed, "warm");
    for (let i = 0; i < runs; i++) {
      const sides: Array<[E2eDaemon, boolean]> = [[jailed, true], [unjailed, false]];
      if (i % 2 === 1) sides.reverse();
      for (const [daemon, isJailed] of sides) {
        const name = `b${i}`;
        const { ms, vm } = await createReady(daemon, name);
        const mem = await vmmMemory(vm.pid!, MEMORY_MIB);
        if (isJailed) {
          if (!vm.jail) throw new Error("the jailed daemon ran an unjailed VMM");
          result.jailedMs.push(ms);
          result.overheadKb.push(mem.otherKb);
          result.guestRssKb.push(mem.guestKb);
          result.cgroupBytes.push(await cgroupCharge(vm));
          result.memoryMaxBytes = vm.jail.cgroup.memory_max_bytes;
          result.cgroupVersion = vm.jail.cgroup.version;
        } else {
          if (vm.jail) throw new Error("security.jail: off still jailed the VMM");
          result.unjailedMs.push(ms);
          result.unjailedOverheadKb.push(mem.otherKb);
        }
        await remove(daemon, name);
      }
    }
    return result;
  } finally {
    await unjailed?.dispose();
    await jailed.dispose();
  }
}
