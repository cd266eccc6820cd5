/**
 * Boot benchmark (issue 3): (a) a raw `qemu-system-x86_64` launch of the same kernel, stage-0
 * initramfs and runtime disk to kestrel's ready line, against (b) `POST /api/v1/vms` → `running`
 * through volantd, interleaved, median of N. Also the guest's memory as kestrel reports it from
 * inside, and the host RSS of volantd and of one QEMU.
 *
 * @module
 */
import { ReadyReport, VmRecord } from "../schema/mod.ts";
import { guestDirArtifacts } from "../daemon/guest.ts";
import { readHostCmdline } from "../daemon/host.ts";
import { buildCmdline } from "../daemon/services/spec.ts";
import { detectKvm, resolveAccel } from "../hypervisor/kvm.ts";
import { qemuArgs } from "../hypervisor/qemu/cmdline.ts";
import { type E2eDaemon, startDaemon } from "../e2e/_harness.ts";

/** What one run of the boot benchmark measured. */
export interface BootBenchResult {
  /** `tcg` or `kvm`. */
  accel: string;
  /** Raw QEMU launch → ready line, ms, one per run. */
  rawMs: number[];
  /** `POST /api/v1/vms` → `running`, ms, one per run. */
  daemonMs: number[];
  /** The daemon's own `boot_ms` (start request → ready line), one per run. */
  daemonBootMs: number[];
  /** The last daemon-booted guest's ready report. */
  report: ReadyReport;
  /** RSS of volantd after the runs, kB. */
  volantdRssKb: number;
  /** RSS of one QEMU process at ready, kB. */
  qemuRssKb: number;
}

/** The median of a list of numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function rssKb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
}

async function waitForLine(path: string, marker: string, timeoutMs: number): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const line = (await Deno.readTextFile(path)).split("\n").find((l) => l.startsWith(marker));
      if (line) return line;
    } catch {
      // Not created yet.
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no ${marker} line in ${path} within ${timeoutMs} ms`);
}

/** (a): QEMU started by hand with the driver's own arguments, minus the paused start. */
async function rawBoot(ns: string, guestDir: string, dir: string, i: number): Promise<number> {
  const kvm = await detectKvm();
  const accel = resolveAccel("auto", kvm);
  const image = await guestDirArtifacts(guestDir).resolve("bzImage-volant");
  const runtimeDir = `${dir}/raw-${i}`;
  await Deno.mkdir(runtimeDir, { recursive: true });
  const name = `raw-${i}`;
  const args = qemuArgs({
    id: name,
    cpus: 1,
    memoryMib: 256,
    kernel: image.kernel,
    initramfs: image.initramfs,
    cmdline: buildCmdline(name, await readHostCmdline(accel === "kvm"), null),
    disks: [{ id: "runtime", path: image.runtimeDisk, readOnly: true, format: "raw" }],
    nics: [],
    serialLog: `${runtimeDir}/serial.log`,
    vmmLog: `${runtimeDir}/vmm.log`,
    runtimeDir,
  }, { accel }).filter((a) => a !== "-S");
  const started = performance.now();
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, "qemu-system-x86_64", ...args],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitForLine(`${runtimeDir}/serial.log`, "KESTREL_READY", 120_000);
    return performance.now() - started;
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

/** (b): through the daemon's API, as a user would. */
async function daemonBoot(
  daemon: E2eDaemon,
  i: number,
  keep: boolean,
): Promise<{ ms: number; vm: VmRecord }> {
  const name = `bench-${i}`;
  const started = performance.now();
  const created = await daemon.api("/api/v1/vms", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, memory_mb: 256 }),
  });
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
  const waited = await daemon.api(`/api/v1/vms/${name}/wait?state=running&timeout_ms=120000`);
  const ms = performance.now() - started;
  const vm = VmRecord.parse(waited.body);
  if (!keep) await daemon.api(`/api/v1/vms/${name}`, { method: "DELETE" });
  return { ms, vm };
}

/**
 * Runs the boot benchmark `runs` times per side, interleaved.
 *
 * @example
 * ```ts ignore
 * import { runBootBench } from "./boot_bench.ts";
 * const result = await runBootBench(5);
 * ```
 */
export async function runBootBench(runs: number): Promise<BootBenchResult> {
  const daemon = await startDaemon();
  const dir = await Deno.makeTempDir({ prefix: "volant-bench-" });
  try {
    const guestDir = (await Deno.readTextFile(daemon.config)).match(/^ {2}dir: (.*)$/m)![1]!;
    const rawMs: number[] = [];
    const daemonMs: number[] = [];
    const daemonBootMs: number[] = [];
    let last: VmRecord | undefined;
    for (let i = 0; i < runs; i++) {
      rawMs.push(await rawBoot(daemon.ns, guestDir, dir, i));
      const keep = i === runs - 1;
      const { ms, vm } = await daemonBoot(daemon, i, keep);
      daemonMs.push(ms);
      daemonBootMs.push(vm.boot_ms ?? NaN);
      if (keep) last = vm;
    }
    const serial = await Deno.readTextFile(`${daemon.dir}/log/vms/${last!.name}/serial.log`);
    const line = serial.split("\n").find((l) => l.startsWith("KESTREL_READY "))!;
    const report = ReadyReport.parse(JSON.parse(line.slice("KESTREL_READY ".length)));
    const qemuRssKb = await rssKb(last!.pid!);
    await daemon.api(`/api/v1/vms/${last!.name}`, { method: "DELETE" });
    const volantdRssKb = await rssKb(daemon.pid()!);
    return {
      accel: last!.kvm ? "kvm" : "tcg",
      rawMs,
      daemonMs,
      daemonBootMs,
      report,
      volantdRssKb,
      qemuRssKb,
    };
  } finally {
    await daemon.dispose();
    await Deno.remove(dir, { recursive: true });
  }
}
