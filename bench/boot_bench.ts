/**
 * Boot benchmark (issue 3): `POST /api/v1/vms` through volantd against a raw
 * `qemu-system-x86_64` launch of the same guest, interleaved (the side that goes first
 * alternates), median of N, after one discarded warm-up boot through the daemon.
 *
 * Like with like: the raw side boots what the daemon boots — the same QEMU binary and machine
 * options, kernel, command line (`buildCmdline`, the VM's name, address and MAC), runtime disk,
 * per-VM initramfs (stage 0 + the boot-config archive, written by `writeBootInitramfs` with
 * `bootConfigFor` and a kestrel secret, as the daemon does) and NIC (a tap on a bridge in a network namespace, both
 * made by the daemon's own `netHostNetwork` from the daemon's config). Every run checks that the
 * daemon's QEMU had the same arguments (paths aside) and the same initramfs bytes (the secret
 * aside), and fails
 * otherwise.
 *
 * Marker: both sides stop when kestrel's ready line (`KESTREL_READY {…}`) appears in the VM's
 * serial log, read from the host every 10 ms by the same function. kestrel prints it after it
 * serves `/healthz`, so this is also after the daemon could first see the guest healthy. The
 * daemon's own view (`POST` → `running` through the wait route, i.e. its first `/healthz`
 * answer) is recorded beside it. Also the guest's memory as kestrel reports it, and the host RSS
 * of volantd and of one QEMU.
 *
 * @module
 */
import { AGENT_PORT, GuestStats, READY_MARKER, ReadyReport, VmRecord } from "../schema/mod.ts";
import { AgentSecret } from "../daemon/kestrel/mod.ts";
import { guestDirArtifacts, type GuestImage } from "../daemon/guest.ts";
import { loadConfig } from "../daemon/config.ts";
import { readHostCmdline } from "../daemon/host.ts";
import { type HostNetwork, netHostNetwork, poolFromConfig } from "../daemon/network/mod.ts";
import { bootConfigFor, buildCmdline, vmPaths } from "../daemon/services/spec.ts";
import { writeBootInitramfs } from "../kernels/mod.ts";
import { formatIpv4, macFor, tapNameFor } from "../net/mod.ts";
import type { VmSpec } from "../hypervisor/driver.ts";
import { QEMU_CONTROL_DEVICE, qemuArgs } from "../hypervisor/qemu/cmdline.ts";
import { type E2eDaemon, ip, startDaemon } from "../e2e/harness.ts";

/** What both sides of the boot benchmark stop at, as printed with the table. */
export const BOOT_MARKER =
  `the ${READY_MARKER} line in the VM's serial log (polled from the host every 10 ms)`;

/** What one run of the boot benchmark measured. */
export interface BootBenchResult {
  /** `tcg` or `kvm`. */
  accel: string;
  /** What both sides stop at ({@linkcode BOOT_MARKER}). */
  marker: string;
  /** Raw QEMU launch → the marker, ms, one per run. */
  rawMs: number[];
  /** `POST /api/v1/vms` → the marker, ms, one per run. */
  daemonMs: number[];
  /** `POST /api/v1/vms` → `running` as the wait route reports it, ms, one per run. */
  daemonRunningMs: number[];
  /** The daemon's own `boot_ms` (start request → first `/healthz` answer), one per run. */
  daemonBootMs: number[];
  /** The last daemon-booted guest's ready report. */
  report: ReadyReport;
  /** RSS of volantd after the runs, kB. */
  volantdRssKb: number;
  /** RSS of one QEMU process at ready, kB. */
  qemuRssKb: number;
  /**
   * The last guest settled ({@linkcode SETTLE_MS} after running), read as users read it:
   * `GET /api/v1/vms/:name/stats` (`volar vms stats`).
   */
  settled?: GuestStats;
}

/** How long after `running` the settled figures are read, ms. */
export const SETTLE_MS = 5_000;

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

const READY_PREFIX = `${READY_MARKER} `;
const TIMEOUT_MS = 120_000;

/** Waits for the marker in `path`; the line. Both sides use this, with the same poll. */
async function waitForMarker(path: string, timeoutMs = TIMEOUT_MS): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const line = (await Deno.readTextFile(path)).split("\n").find((l) =>
        l.startsWith(READY_PREFIX)
      );
      if (line) return line;
    } catch {
      // Not created yet.
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no ${READY_MARKER} line in ${path} within ${timeoutMs} ms`);
}

/** The guest's NIC as the daemon gives it (see `guestNic` in daemon/services/_network.ts). */
interface Nic {
  tap: string;
  mac: string;
  ip: string;
  prefix: number;
  gateway: string;
}

/** What the raw side needs to launch exactly what the daemon launches. */
interface RawSetup {
  /** The raw side's own namespace (bridge, NAT, taps made by the daemon's code). */
  ns: string;
  network: HostNetwork;
  /** The daemon's QEMU binary, as it ran it. */
  binary: string;
  accel: "kvm" | "tcg";
  noLegacyTimers: boolean;
  image: GuestImage;
  hostWords: string;
  /** The address the daemon leases to every run's VM (the lowest free one), prefix, gateway. */
  ip: string;
  prefix: number;
  gateway: string;
  /** Root of the raw side's run, log and state dirs (the daemon's are under `daemon.dir`). */
  root: string;
}

function nicFor(setup: RawSetup, name: string): Nic {
  return {
    tap: tapNameFor(name),
    mac: macFor(name),
    ip: setup.ip,
    prefix: setup.prefix,
    gateway: setup.gateway,
  };
}

/** The raw side's spec and initramfs for VM `name`, made with the daemon's own functions. */
async function rawSpec(setup: RawSetup, name: string): Promise<VmSpec> {
  const nic = nicFor(setup, name);
  const paths = vmPaths(
    {
      runtimeDir: `${setup.root}/run`,
      logDir: `${setup.root}/log`,
      stateDir: `${setup.root}/state`,
    },
    name,
  );
  await Deno.mkdir(paths.runtimeDir, { recursive: true });
  await Deno.mkdir(paths.logDir, { recursive: true });
  await writeBootInitramfs(paths.initramfs, {
    shared: setup.image.initramfs,
    // kestrel's secret: a fresh one of the same size, as the daemon makes at each start.
    config: {
      ...bootConfigFor(name, nic),
      agent: { port: AGENT_PORT, secret: AgentSecret.generate().reveal() },
      // The control channel QEMU wires (qemuArgs adds the UART), as the daemon names it.
      control_device: QEMU_CONTROL_DEVICE,
    },
    env: { init: "kestrel" },
  });
  return {
    id: name,
    cpus: 1,
    memoryMib: 256,
    kernel: { path: setup.image.kernel.path, format: setup.image.kernel.format },
    initramfs: paths.initramfs,
    cmdline: buildCmdline(name, setup.hostWords, null, nic),
    disks: [{ id: "runtime", path: setup.image.runtimeDisk, readOnly: true, format: "raw" }],
    nics: [{ id: "eth0", tap: nic.tap, mac: nic.mac }],
    serialLog: paths.serialLog,
    vmmLog: paths.vmmLog,
    runtimeDir: paths.runtimeDir,
  };
}

function rawArgs(setup: RawSetup, spec: VmSpec): string[] {
  return qemuArgs(spec, { accel: setup.accel, noLegacyTimers: setup.noLegacyTimers });
}

interface RawRun {
  ms: number;
  /** QEMU's arguments (with the paused start the daemon uses), for the comparison. */
  args: string[];
  initramfs: Uint8Array;
}

/** The raw side: QEMU started by hand on a tap of our own, not paused, to the marker. */
async function rawBoot(setup: RawSetup, name: string): Promise<RawRun> {
  const spec = await rawSpec(setup, name);
  const args = rawArgs(setup, spec);
  const initramfs = await Deno.readFile(spec.initramfs!);
  await setup.network.createTap(spec.nics[0]!.tap);
  try {
    const started = performance.now();
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", setup.ns, setup.binary, ...args.filter((a) => a !== "-S")],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await Promise.race([
        waitForMarker(spec.serialLog),
        child.status.then((s) => {
          throw new Error(`raw QEMU exited with ${s.code} before ${READY_MARKER}`);
        }),
      ]);
      return { ms: performance.now() - started, args, initramfs };
    } finally {
      try {
        Deno.kill(child.pid, "SIGKILL");
      } catch {
        // Exited.
      }
      await child.status;
    }
  } finally {
    await setup.network.deleteTap(spec.nics[0]!.tap);
  }
}

interface DaemonRun {
  ms: number;
  runningMs: number;
  vm: VmRecord;
  /** Its QEMU's arguments (without the binary). */
  args: string[];
  binary: string;
  initramfs: Uint8Array;
}

/** The daemon side: through the API, as a user would, to the same marker. */
async function daemonBoot(daemon: E2eDaemon, name: string, keep: boolean): Promise<DaemonRun> {
  const serialLog = vmPaths({ runtimeDir: "", logDir: `${daemon.dir}/log` }, name).serialLog;
  const started = performance.now();
  const created = await daemon.api("/api/v1/vms", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, memory_mb: 256 }),
  });
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
  const running = daemon.api(`/api/v1/vms/${name}/wait?state=running&timeout_ms=${TIMEOUT_MS}`)
    .then((r) => ({ r, ms: performance.now() - started }));
  await waitForMarker(serialLog);
  const ms = performance.now() - started;
  const waited = await running;
  if (waited.r.status !== 200) throw new Error(`wait failed: ${JSON.stringify(waited.r.body)}`);
  const vm = VmRecord.parse(waited.r.body);
  const argv = (await Deno.readTextFile(`/proc/${vm.pid}/cmdline`)).split("\0").slice(0, -1);
  const initramfs = await Deno.readFile(argv[argv.indexOf("-initrd") + 1]!);
  if (!keep) await daemon.api(`/api/v1/vms/${name}`, { method: "DELETE" });
  return { ms, runningMs: waited.ms, vm, args: argv.slice(1), binary: argv[0]!, initramfs };
}

/** Throws unless both sides launched the same QEMU arguments (paths aside) and initramfs. */
function assertSame(setup: RawSetup, daemon: E2eDaemon, raw: RawRun, volant: DaemonRun): void {
  const normalized = raw.args.map((a) => a.replaceAll(setup.root, daemon.dir));
  const diff = normalized.flatMap((a, i) =>
    a === volant.args[i] ? [] : [`#${i}: raw ${a} vs daemon ${volant.args[i]}`]
  );
  if (normalized.length !== volant.args.length || diff.length > 0) {
    throw new Error(
      `the raw QEMU would not boot what the daemon booted (${volant.vm.name}):\n` +
        `${diff.join("\n")}\nraw:    ${normalized.join(" ")}\ndaemon: ${volant.args.join(" ")}`,
    );
  }
  // Each side has a secret of its own: the same bytes otherwise.
  const masked = (bytes: Uint8Array) =>
    new TextDecoder("latin1").decode(bytes).replace(/"secret":"[A-Za-z0-9_-]+"/, '"secret":""');
  const a = raw.initramfs;
  const b = volant.initramfs;
  if (a.length !== b.length || masked(a) !== masked(b)) {
    throw new Error(
      `the raw initramfs (${a.length} bytes) differs from the daemon's (${b.length} bytes) ` +
        `for ${volant.vm.name}`,
    );
  }
}

/** The raw side's namespace, bridge and options, from the daemon's config and warm-up VM. */
async function rawSetup(daemon: E2eDaemon, guestDir: string, warm: DaemonRun): Promise<RawSetup> {
  const config = await loadConfig({ path: daemon.config });
  const pool = poolFromConfig(config.network);
  const ns = `volant-bench-raw-${crypto.randomUUID().slice(0, 8)}`;
  await ip("netns", "add", ns);
  try {
    await ip("-n", ns, "link", "set", "lo", "up");
    const network = netHostNetwork({
      bridge: config.network.bridge,
      subnet: config.network.subnet,
      gateway: config.network.gateway,
      nat: config.network.nat,
      netns: ns,
    });
    await network.prepare();
    const arg = (flag: string) => warm.args[warm.args.indexOf(flag) + 1] ?? "";
    const accel = arg("-accel") === "kvm" ? "kvm" : "tcg";
    return {
      ns,
      network,
      binary: warm.binary,
      accel,
      noLegacyTimers: arg("-M").split(",").includes("pit=off"),
      image: await guestDirArtifacts(guestDir).resolve(warm.vm.kernel),
      hostWords: await readHostCmdline(accel === "kvm"),
      ip: warm.vm.ip!,
      prefix: pool.subnet.prefix,
      gateway: formatIpv4(pool.gateway),
      root: `${daemon.dir}/raw`,
    };
  } catch (err) {
    await ip("netns", "del", ns).catch(() => {});
    throw err;
  }
}

/**
 * Runs the boot benchmark `runs` times per side, interleaved, after one warm-up boot.
 *
 * @example
 * ```ts ignore
 * import { runBootBench } from "./boot_bench.ts";
 * const result = await runBootBench(5);
 * ```
 */
export async function runBootBench(runs: number): Promise<BootBenchResult> {
  let daemon: E2eDaemon | undefined;
  let setup: RawSetup | undefined;
  try {
    // QEMU on both sides, whatever else this host could run.
    daemon = await startDaemon({ config: ["hypervisor:", "  name: qemu"] });
    const guestDir = (await Deno.readTextFile(daemon.config)).match(/^ {2}dir: (.*)$/m)![1]!;
    // Warm-up (discarded): page cache, and the options the daemon's QEMU runs with.
    const warm = await daemonBoot(daemon, "bench-warmup", false);
    if (warm.vm.ip === null) throw new Error("the daemon's VM got no address");
    setup = await rawSetup(daemon, guestDir, warm);
    const rawMs: number[] = [];
    const daemonMs: number[] = [];
    const daemonRunningMs: number[] = [];
    const daemonBootMs: number[] = [];
    let last: VmRecord | undefined;
    for (let i = 0; i < runs; i++) {
      const name = `bench-${i}`;
      const keep = i === runs - 1;
      let raw: RawRun;
      let volant: DaemonRun;
      if (i % 2 === 0) {
        raw = await rawBoot(setup, name);
        volant = await daemonBoot(daemon, name, keep);
      } else {
        volant = await daemonBoot(daemon, name, keep);
        raw = await rawBoot(setup, name);
      }
      assertSame(setup, daemon, raw, volant);
      rawMs.push(raw.ms);
      daemonMs.push(volant.ms);
      daemonRunningMs.push(volant.runningMs);
      daemonBootMs.push(volant.vm.boot_ms ?? NaN);
      if (keep) last = volant.vm;
    }
    const serial = await Deno.readTextFile(`${daemon.dir}/log/vms/${last!.name}/serial.log`);
    const line = serial.split("\n").find((l) => l.startsWith(READY_PREFIX))!;
    const report = ReadyReport.parse(JSON.parse(line.slice(READY_PREFIX.length)));
    const qemuRssKb = await rssKb(last!.pid!);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const stats = await daemon.api(`/api/v1/vms/${last!.name}/stats`);
    if (stats.status !== 200) throw new Error(`stats: ${JSON.stringify(stats.body)}`);
    const settled = GuestStats.parse(stats.body);
    await daemon.api(`/api/v1/vms/${last!.name}`, { method: "DELETE" });
    const volantdRssKb = await rssKb(daemon.pid()!);
    return {
      accel: last!.kvm ? "kvm" : "tcg",
      marker: BOOT_MARKER,
      rawMs,
      daemonMs,
      daemonRunningMs,
      daemonBootMs,
      report,
      volantdRssKb,
      qemuRssKb,
      settled,
    };
  } finally {
    if (setup) await ip("netns", "del", setup.ns).catch(() => {});
    await daemon?.dispose();
  }
}
