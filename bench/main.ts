/**
 * `deno task bench` / `./volant bench`: runs the benchmarks and prints tables with the
 * baseline measured in the same run and the ratio. Timing targets live here, never in tests.
 *
 * Usage: `deno run -A bench/main.ts [--runs N]
 * [--only boot|net|appliance|image|probe|policy|jail|events|api|deploy|snapshot[,…]]
 * [--json] [--out FILE] [--compare [FILE]] [--fail-on-regression] [--accept]`
 *
 * Every run writes its results as one JSON document (`bench/results.ts`) to `--out` (default
 * `bench/results/latest.json`, not in git). `--compare` prints each figure against the accepted
 * results (default `bench/accepted.json`; `bench/compare.ts`), `--fail-on-regression` exits 1
 * when one is flagged WORSE, `--accept` replaces the benchmarks that ran in `bench/accepted.json`
 * (`bench/accept.ts` accepts several runs pooled).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BootBenchResult, median, runBootBench } from "./boot_bench.ts";
import { type NetBenchResult, runNetBench } from "./net_bench.ts";
import { type ApplianceBenchResult, runApplianceBench } from "./appliance_bench.ts";
import { type ImageBenchResult, runImageBench } from "./image_bench.ts";
import { type ProbeBenchResult, runProbeBench } from "./probe_bench.ts";
import { type PolicyBenchResult, runPolicyBench } from "./policy_bench.ts";
import { type JailBenchResult, runJailBench } from "./jail_bench.ts";
import { type EventsBenchResult, runEventsBench } from "./events_bench.ts";
import { type ApiBenchResult, runApiBench } from "./api_bench.ts";
import { type DeployBenchResult, deployMedians, runDeployBench } from "./deploy_bench.ts";
import { runSnapshotBench, type SnapshotBenchResult } from "./snapshot_bench.ts";
import { compareArgs, prepareRecord } from "./record.ts";

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
}

function mib(kb: number): string {
  return `${Math.round(kb / 1024)} MiB`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)]
    .join("\n");
}

function printBoot(boot: BootBenchResult, runs: number): void {
  const raw = median(boot.rawMs);
  const api = median(boot.daemonMs);
  const r = boot.report;
  console.log(
    `\nBoot to kestrel ready (${boot.accel.toUpperCase()}, median of ${runs}, interleaved, ` +
      "after one warm-up boot)\n",
  );
  console.log(table(["measure", "volant", "baseline", "ratio", "target"], [
    [
      "POST /api/v1/vms vs raw qemu (same kernel, initramfs, command line, NIC) → ready line",
      fmtMs(api),
      fmtMs(raw),
      (api / raw).toFixed(3),
      "≤ 1.10",
    ],
  ]));
  console.log(`\nMarker (both sides): ${boot.marker}.`);
  console.log(
    "kestrel prints it after it serves /healthz; the daemon reports running at its first " +
      `/healthz answer: POST → running (wait route) median ${fmtMs(median(boot.daemonRunningMs))}.`,
  );
  console.log(`\nruns: volant ${boot.daemonMs.map(fmtMs).join(", ")}`);
  console.log(`      raw    ${boot.rawMs.map(fmtMs).join(", ")}`);
  console.log(`      volant POST → running ${boot.daemonRunningMs.map(fmtMs).join(", ")}`);
  console.log(`      daemon boot_ms (start request → ready) ${boot.daemonBootMs.join(", ")}`);
  console.log("\nMemory\n");
  console.log(table(["measure", "value"], [
    [
      "guest memory in use at ready (MemTotal − MemAvailable)",
      `${mib(r.mem_total_kb - r.mem_available_kb)} of ${mib(r.mem_total_kb)}`,
    ],
    ["kestrel RSS inside the guest", r.kestrel_rss_kb ? mib(r.kestrel_rss_kb) : "n/a"],
    ["guest uptime at ready", fmtMs(r.uptime_ms)],
    ["volantd RSS (host)", mib(boot.volantdRssKb)],
    ["one QEMU process RSS at ready (host)", mib(boot.qemuRssKb)],
  ]));
}

function printNet(net: NetBenchResult, runs: number): void {
  const ffi = median(net.ffiTapMs);
  const ipTool = median(net.ipTapMs);
  console.log(`\nNetworking (median of ${runs} taps; leases with 10 000 addresses taken)\n`);
  console.log(table(["measure", "volant", "baseline", "ratio"], [
    [
      "tap create + attach + up: Deno FFI vs `ip tuntap add` + `ip link set`",
      fmtMs(ffi),
      fmtMs(ipTool),
      (ffi / ipTool).toFixed(3),
    ],
    [
      "leases/s (10 000 taken): volantd's store path vs a SQLite pool table (original)",
      Math.round(net.storeLeasesPerSec).toLocaleString("en"),
      Math.round(net.poolTablePerSec).toLocaleString("en"),
      (net.storeLeasesPerSec / net.poolTablePerSec).toFixed(2),
    ],
  ]));
  const sync = ["OFF", "NORMAL", "FULL", "EXTRA"][net.sqliteSynchronous] ?? net.sqliteSynchronous;
  console.log(
    `\nBoth lease paths run SQLite as volantd's store does: journal_mode ` +
      `${net.sqliteJournalMode}, synchronous ${sync}.`,
  );
}

function printAppliance(a: ApplianceBenchResult, runs: number): void {
  const volant = median(a.volantMs);
  const raw = median(a.rawMs);
  console.log(
    `\nAppliance (volar build, busybox httpd as PID 1; ${a.accel.toUpperCase()}, median of ${runs})\n`,
  );
  console.log(table(["measure", "volant", "baseline", "ratio"], [
    [
      "POST /api/v1/vms → first HTTP 200 vs raw qemu (same kernel + initramfs) → first HTTP 200",
      fmtMs(volant),
      fmtMs(raw),
      (volant / raw).toFixed(3),
    ],
    [
      "the same appliance under kestrel (stage 0 starts it) vs init none → first HTTP 200",
      fmtMs(median(a.kestrelMs)),
      fmtMs(volant),
      (median(a.kestrelMs) / volant).toFixed(3),
    ],
    [
      "raw qemu: Volant's kernel vs Debian's kernel + its stage 0 → first HTTP 200",
      fmtMs(raw),
      fmtMs(median(a.debianRawMs)),
      (raw / median(a.debianRawMs)).toFixed(3),
    ],
  ]));
  console.log(`\nruns: volant  ${a.volantMs.map(fmtMs).join(", ")}`);
  console.log(`      raw     ${a.rawMs.map(fmtMs).join(", ")}`);
  console.log(`      kestrel ${a.kestrelMs.map(fmtMs).join(", ")}`);
  console.log(`      debian  ${a.debianRawMs.map(fmtMs).join(", ")}`);
  console.log("\nSize and memory\n");
  const kb = (n: number) => `${(n / 1024).toFixed(1)} MiB`;
  console.log(table(["measure", "value"], [
    ["volar build time", fmtMs(a.buildMs)],
    ["appliance archive (.cpio.gz)", `${(a.applianceBytes / 1024).toFixed(0)} KiB`],
    [
      "per-VM initramfs (stage 0 + appliance + boot config)",
      `${(a.vmInitramfsBytes / 1048576).toFixed(2)} MiB`,
    ],
    [`guest memory in use after boot, init none (of ${kb(a.memTotalKb)})`, kb(a.memNoneKb)],
    [`guest memory in use after boot, init kestrel (of ${kb(a.memTotalKb)})`, kb(a.memKestrelKb)],
  ]));
  console.log(
    "\nThe seeds claim 50–150 ms boots and 10–20 MB on KVM; these figures are " +
      `${a.accel === "kvm" ? "on KVM" : "under TCG (software emulation, no /dev/kvm here)"}.`,
  );
}

function printImage(r: ImageBenchResult, runs: number): void {
  const image = median(r.imageMs);
  const appliance = median(r.applianceMs);
  console.log(`\nOCI images (${r.accel.toUpperCase()}, median of ${runs})\n`);
  console.log(table(["measure", "volant", "baseline", "ratio"], [
    [
      "create → running: image VM (erofs + overlay) vs the same workload as an appliance",
      fmtMs(image),
      fmtMs(appliance),
      (image / appliance).toFixed(3),
    ],
    [
      "disk used by a second VM of the image vs the image's root filesystem",
      `${(r.secondVmBytes / 1024).toFixed(0)} KiB`,
      `${(r.rootfsBytes / 1024).toFixed(0)} KiB`,
      (r.secondVmBytes / r.rootfsBytes).toFixed(3),
    ],
  ]));
  console.log(`\nruns: image     ${r.imageMs.map(fmtMs).join(", ")}`);
  console.log(`      appliance ${r.applianceMs.map(fmtMs).join(", ")}`);
  console.log(`\nPull and convert (median of ${r.coldPullMs.length})\n`);
  console.log(table(["measure", "value"], [
    [
      `pull + rootfs, cold cache (${(r.layerBytes / 1024).toFixed(0)} KiB of layers; ` +
      "image removed and cache checked empty before each run)",
      fmtMs(median(r.coldPullMs)),
    ],
    ["pull again, warm cache (manifest only)", fmtMs(median(r.warmPullMs))],
  ]));
  console.log(`\nruns: cold ${r.coldPullMs.map(fmtMs).join(", ")}`);
  console.log(`      warm ${r.warmPullMs.map(fmtMs).join(", ")}`);
}

function printProbe(p: ProbeBenchResult, runs: number): void {
  const cold = median(p.coldMs);
  const cached = median(p.cachedMs);
  console.log(`\nProving KVM by booting (volantd start → /healthz, median of ${runs})\n`);
  console.log(table(["measure", "volant", "baseline", "ratio"], [
    [
      "start with a cached verdict vs start with a cold cache (the probe boot runs)",
      fmtMs(cached),
      fmtMs(cold),
      (cached / cold).toFixed(3),
    ],
  ]));
  console.log(
    `\nThe probe's cost: ${fmtMs(cold - cached)} at the first start only` +
      (p.probeMs === null
        ? " (no probe ran: no KVM device here)"
        : ` (probe boot ${fmtMs(p.probeMs)})`) +
      `. Verdict: ${p.accel.toUpperCase()} — ${p.reason}.`,
  );
  console.log(`\nruns: cached ${p.cachedMs.map(fmtMs).join(", ")}`);
  console.log(`      cold   ${p.coldMs.map(fmtMs).join(", ")}`);
}

function printPolicy(p: PolicyBenchResult, runs: number): void {
  const ratio = (a: number[], b: number[]) => (median(a) / median(b)).toFixed(3);
  const mibs = (v: number) => `${v.toFixed(1)} MiB/s`;
  console.log(
    `\nNetwork policy (${p.accel.toUpperCase()}, median of ${runs} rounds, each the median of ` +
      `4 samples per side with the rules switched on and off in turn; ${p.rules} rules in ` +
      "place)\n",
  );
  console.log(table(["measure", "with rules", "without", "ratio", "target"], [
    [
      `guest → listener HTTP throughput (${p.bytes / 1048576} MiB, busybox wget in the guest)`,
      mibs(median(p.withMibPerSec)),
      mibs(median(p.withoutMibPerSec)),
      `${ratio(p.withoutMibPerSec, p.withMibPerSec)} (time)`,
      "≤ 1.05",
    ],
    [
      "guest → listener HTTP GET latency (kestrel /v1/net/check in the guest)",
      fmtMs(median(p.withLatencyMs)),
      fmtMs(median(p.withoutLatencyMs)),
      ratio(p.withLatencyMs, p.withoutLatencyMs),
      "≤ 1.05",
    ],
    [
      "POST /api/v1/vms → running (network.isolation true vs false)",
      fmtMs(median(p.withReadyMs)),
      fmtMs(median(p.withoutReadyMs)),
      ratio(p.withReadyMs, p.withoutReadyMs),
      "≤ 1.05",
    ],
  ]));
  console.log(`\nruns: throughput with    ${p.withMibPerSec.map(mibs).join(", ")}`);
  console.log(`      throughput without ${p.withoutMibPerSec.map(mibs).join(", ")}`);
  console.log(`      latency with       ${p.withLatencyMs.map(fmtMs).join(", ")}`);
  console.log(`      latency without    ${p.withoutLatencyMs.map(fmtMs).join(", ")}`);
  console.log(`      ready with         ${p.withReadyMs.map(fmtMs).join(", ")}`);
  console.log(`      ready without      ${p.withoutReadyMs.map(fmtMs).join(", ")}`);
}

function printJail(j: JailBenchResult, runs: number): void {
  const jailed = median(j.jailedMs);
  const unjailed = median(j.unjailedMs);
  console.log(
    `\nVMM jail (${j.accel.toUpperCase()}, ${j.memoryMib} MiB guests, median of ${runs} ` +
      `interleaved rounds after a warm-up VM; cgroup ${j.cgroupVersion})\n`,
  );
  console.log(table(["measure", "jailed", "unjailed", "ratio", "target"], [
    [
      "POST /api/v1/vms → running (uid + cgroup + mount namespace vs security.jail: off)",
      fmtMs(jailed),
      fmtMs(unjailed),
      (jailed / unjailed).toFixed(3),
      "≤ 1.05",
    ],
    [
      "VMM host memory outside guest RAM at ready (smaps RSS)",
      mib(median(j.overheadKb)),
      mib(median(j.unjailedOverheadKb)),
      (median(j.overheadKb) / median(j.unjailedOverheadKb)).toFixed(3),
      "-",
    ],
  ]));
  console.log("\nMemory of a jailed VMM\n");
  console.log(table(["measure", "value"], [
    ["guest RAM resident at ready", mib(median(j.guestRssKb))],
    ["VMM's own resident memory (the per-VM overhead)", mib(median(j.overheadKb))],
    ["cgroup charge at ready (RSS + page cache + kernel)", mib(median(j.cgroupBytes) / 1024)],
    ["memory.max written (guest + overhead allowance)", mib(j.memoryMaxBytes / 1024)],
  ]));
  console.log(`\nruns: jailed   ${j.jailedMs.map(fmtMs).join(", ")}`);
  console.log(`      unjailed ${j.unjailedMs.map(fmtMs).join(", ")}`);
  console.log(`      overhead ${j.overheadKb.map(mib).join(", ")}`);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function printEvents(e: EventsBenchResult): void {
  const us = (v: number) => `${v.toFixed(1)} µs`;
  console.log(
    `\nEvent fan-out to ${e.subscribers} subscribers (fake driver; one vm.state event with the ` +
      `VM's record, ${e.eventBytes} bytes; ${e.sseDurableMs.length} events per side, interleaved)\n`,
  );
  console.log(table(["measure", "volant", "baseline", "ratio"], [
    [
      `recorded in the SQLite log → all ${e.subscribers} SSE clients (unix socket) have it vs ` +
      "the in-memory emitter alone → the same clients (median)",
      fmtMs(median(e.sseDurableMs)),
      fmtMs(median(e.sseMemoryMs)),
      (median(e.sseDurableMs) / median(e.sseMemoryMs)).toFixed(3),
    ],
    [
      "the same, p99",
      fmtMs(percentile(e.sseDurableMs, 0.99)),
      fmtMs(percentile(e.sseMemoryMs, 0.99)),
      (percentile(e.sseDurableMs, 0.99) / percentile(e.sseMemoryMs, 0.99)).toFixed(3),
    ],
    [
      `in process: recorded (transaction + commit) → ${e.subscribers} listeners heard it vs ` +
      "the in-memory emitter → the same listeners",
      us(median(e.durableUs)),
      us(median(e.memoryUs)),
      (median(e.durableUs) / median(e.memoryUs)).toFixed(1),
    ],
  ]));
  console.log(
    `\nReplay: a client resuming from id 0 with 10 000 events in the log receives ` +
      `${Math.round(e.replayPerSec).toLocaleString("en")} events/s (read in pages of 100).`,
  );
}

function printApi(a: ApiBenchResult): void {
  const p = percentile;
  const row = (label: string, v: number[], base: number[], q: number) => [
    label,
    fmtMs(p(v, q)),
    fmtMs(p(base, q)),
    (p(v, q) / p(base, q)).toFixed(1),
  ];
  console.log(
    `\nREST API over the unix socket (fake driver, SQLite file, ${a.vms} VMs in the table; ` +
      `${a.listMs.length} list and ${a.createMs.length} create requests per side, interleaved ` +
      "with their baselines)\n",
  );
  console.log(table(["measure", "volant", "baseline", "ratio"], [
    row(`GET /api/v1/vms (${a.vms} rows) vs GET /healthz, p50`, a.listMs, a.healthMs, 0.5),
    row("the same, p99", a.listMs, a.healthMs, 0.99),
    row(
      "POST /api/v1/vms (create → starting) vs GET /api/v1/vms/<name>, p50",
      a.createMs,
      a.getMs,
      0.5,
    ),
    row("the same, p99", a.createMs, a.getMs, 0.99),
  ]));
  const rowsPerSec = a.vms / (p(a.listMs, 0.5) / 1000);
  console.log(
    `\nList throughput at p50: ${Math.round(rowsPerSec).toLocaleString("en")} rows/s ` +
      `(${(a.listBytes / 1024).toFixed(0)} KiB of JSON per answer). Filling the table through ` +
      `the service took ${fmtMs(a.setupMs)}; each created VM is deleted again, untimed.`,
  );
}

function printDeploy(d: DeployBenchResult, runs: number): void {
  const m = deployMedians(d);
  console.log(
    `\nDeployment replica replacement (${d.accel.toUpperCase()}, median of ${runs}, interleaved; ` +
      `restart.initial_ms set to ${d.restartInitialMs} for the bench, default 1000)\n`,
  );
  console.log(table(["measure", "volant", "baseline", "ratio"], [
    [
      "replica VMM SIGKILL → replacement running vs POST /api/v1/vms → running (same plugin)",
      fmtMs(m.replace),
      fmtMs(m.create),
      (m.replace / m.create).toFixed(2),
    ],
  ]));
  console.log(
    `\nWhere the replacement's time goes (daemon log timestamps, medians): SIGKILL → crashed ` +
      `${fmtMs(m.detect)}, crashed → starting (backoff ${d.restartInitialMs} ms + start) ` +
      `${fmtMs(m.backoff)}, starting → running (boot) ${fmtMs(m.boot)}.`,
  );
  console.log(`\nruns: replace ${d.replaceMs.map(fmtMs).join(", ")}`);
  console.log(`      create  ${d.createMs.map(fmtMs).join(", ")}`);
}

function printSnapshot(r: SnapshotBenchResult, runs: number): void {
  console.log(
    `\nSnapshots (busybox httpd appliance under kestrel; ${r.accel.toUpperCase()}, median of ` +
      `${runs}, one VM at a time)\n`,
  );
  console.log(table(
    ["measure", "volant", "baseline", "ratio"],
    r.sizes.flatMap((s) => {
      const restore = median(s.restoreMs);
      const cold = median(s.coldMs);
      return [
        [
          `${s.memoryMb} MiB guest: restore → running vs cold create → running`,
          fmtMs(restore),
          fmtMs(cold),
          (restore / cold).toFixed(3),
        ],
        [
          `${s.memoryMb} MiB guest: clone → running vs cold create → running`,
          fmtMs(median(s.cloneMs)),
          fmtMs(cold),
          (median(s.cloneMs) / cold).toFixed(3),
        ],
        [
          `${s.memoryMb} MiB guest: a clone's VMM RSS vs the cold VM's`,
          `${(median(s.cloneRssBytes) / 2 ** 20).toFixed(1)} MiB`,
          `${(median(s.coldRssBytes) / 2 ** 20).toFixed(1)} MiB`,
          (median(s.cloneRssBytes) / median(s.coldRssBytes)).toFixed(3),
        ],
        [
          `${s.memoryMb} MiB guest: paused for the snapshot (size on disk)`,
          `${fmtMs(median(s.pausedMs))} (${(median(s.bytes) / 2 ** 20).toFixed(1)} MiB)`,
          "-",
          "-",
        ],
      ];
    }),
  ));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: compareArgs(Deno.args),
    options: {
      runs: { type: "string", default: "5" },
      only: { type: "string" },
      json: { type: "boolean", default: false },
      out: { type: "string" },
      compare: { type: "string" },
      "fail-on-regression": { type: "boolean", default: false },
      accept: { type: "boolean", default: false },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error(`bench: --runs must be a positive integer, got ${values.runs}`);
    Deno.exit(2);
  }
  const names = [
    "boot",
    "net",
    "appliance",
    "image",
    "probe",
    "policy",
    "jail",
    "events",
    "api",
    "deploy",
    "snapshot",
  ];
  const only = values.only?.split(",");
  if (only?.some((n) => !names.includes(n))) {
    console.error(`bench: --only must be one of ${names.join(", ")}, got ${values.only}`);
    Deno.exit(2);
  }
  const want = (name: string) => only === undefined || only.includes(name);
  const record = await prepareRecord({
    runs,
    out: values.out,
    compare: values.compare,
    failOnRegression: values["fail-on-regression"],
    accept: values.accept,
    print: values.json ? console.error : console.log,
  }).catch((e: Error) => {
    console.error(`bench: ${e.message}`);
    Deno.exit(2);
  });
  const net = want("net") ? await runNetBench(Math.max(runs, 20)) : undefined;
  const boot = want("boot") ? await runBootBench(runs) : undefined;
  const appliance = want("appliance") ? await runApplianceBench(runs) : undefined;
  const image = want("image") ? await runImageBench(runs) : undefined;
  const probe = want("probe") ? await runProbeBench(Math.min(runs, 3)) : undefined;
  const policy = want("policy") ? await runPolicyBench(Math.min(runs, 3)) : undefined;
  const jail = want("jail") ? await runJailBench(Math.min(runs, 3)) : undefined;
  const events = want("events") ? await runEventsBench(Math.max(runs * 20, 50)) : undefined;
  const api = want("api")
    ? await runApiBench(Math.max(runs * 100, 200), Math.max(runs * 40, 100))
    : undefined;
  const deploy = want("deploy") ? await runDeployBench(Math.min(runs, 3)) : undefined;
  const snapshot = want("snapshot") ? await runSnapshotBench(Math.min(runs, 3)) : undefined;
  if (values.json) {
    console.log(
      JSON.stringify(
        { boot, net, appliance, image, probe, policy, jail, events, api, deploy, snapshot },
        null,
        2,
      ),
    );
  } else {
    if (net) printNet(net, Math.max(runs, 20));
    if (boot) printBoot(boot, runs);
    if (appliance) printAppliance(appliance, runs);
    if (image) printImage(image, runs);
    if (probe) printProbe(probe, Math.min(runs, 3));
    if (policy) printPolicy(policy, Math.min(runs, 3));
    if (jail) printJail(jail, Math.min(runs, 3));
    if (events) printEvents(events);
    if (api) printApi(api);
    if (deploy) printDeploy(deploy, Math.min(runs, 3));
    if (snapshot) printSnapshot(snapshot, Math.min(runs, 3));
  }
  const code = await record({
    boot,
    net,
    appliance,
    image,
    probe,
    policy,
    jail,
    events,
    api,
    deploy,
    snapshot,
  });
  if (code !== 0) Deno.exit(code);
}
