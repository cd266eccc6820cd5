/**
 * Each benchmark's results as figures under stable keys (see `bench/results.ts`). The labels
 * follow the printed tables; a key, once in `bench/accepted.json`, is not renamed.
 *
 * @module
 */
import type { BootBenchResult } from "./boot_bench.ts";
import type { NetBenchResult } from "./net_bench.ts";
import type { ApplianceBenchResult } from "./appliance_bench.ts";
import type { ImageBenchResult } from "./image_bench.ts";
import type { ProbeBenchResult } from "./probe_bench.ts";
import type { PolicyBenchResult } from "./policy_bench.ts";
import type { JailBenchResult } from "./jail_bench.ts";
import type { EventsBenchResult } from "./events_bench.ts";
import type { ApiBenchResult } from "./api_bench.ts";
import type { DeployBenchResult } from "./deploy_bench.ts";
import type { SnapshotBenchResult } from "./snapshot_bench.ts";
import {
  type Benchmark,
  collectHost,
  type Figure,
  figure,
  type FigureSpec,
  type Params,
  type Run,
} from "./results.ts";
import type { z } from "zod";

/** What `bench/main.ts` measured: one entry per benchmark that ran. */
export interface RawResults {
  boot?: BootBenchResult;
  net?: NetBenchResult;
  appliance?: ApplianceBenchResult;
  image?: ImageBenchResult;
  probe?: ProbeBenchResult;
  policy?: PolicyBenchResult;
  jail?: JailBenchResult;
  events?: EventsBenchResult;
  api?: ApiBenchResult;
  deploy?: DeployBenchResult;
  snapshot?: SnapshotBenchResult;
}

/** One benchmark's figures (keyed), parameters and accelerator. */
export interface Extracted {
  figures: Record<string, Figure>;
  params: z.infer<typeof Params>;
  accel?: string;
}

const lower = "lower" as const;
const higher = "higher" as const;

function keyed(bench: string, specs: Record<string, FigureSpec | null>): Record<string, Figure> {
  return Object.fromEntries(
    Object.entries(specs).flatMap(([k, s]) => s ? [[`${bench}.${k}`, figure(s)]] : []),
  );
}

/** `boot`: POST → ready line against raw QEMU, and memory at ready. */
export function bootFigures(b: BootBenchResult): Extracted {
  const r = b.report;
  return {
    accel: b.accel,
    params: { marker: b.marker, kestrelVersion: r.kestrel_version, memTotalKb: r.mem_total_kb },
    figures: keyed("boot", {
      post_to_ready_ms: {
        label: "POST /api/v1/vms → kestrel ready line",
        unit: "ms",
        direction: lower,
        samples: b.daemonMs,
        baseline: {
          label: "raw qemu (same kernel, initramfs, command line, NIC)",
          samples: b.rawMs,
        },
      },
      post_to_running_ms: {
        label: "POST /api/v1/vms → running (wait route)",
        unit: "ms",
        direction: lower,
        samples: b.daemonRunningMs,
      },
      daemon_boot_ms: {
        label: "daemon boot_ms (start request → first /healthz answer)",
        unit: "ms",
        direction: lower,
        samples: b.daemonBootMs,
      },
      guest_mem_used_kib: {
        label: "guest memory in use at ready (MemTotal − MemAvailable)",
        unit: "KiB",
        direction: lower,
        samples: r.mem_total_kb - r.mem_available_kb,
      },
      kestrel_rss_kib: r.kestrel_rss_kb === undefined ? null : {
        label: "kestrel RSS inside the guest",
        unit: "KiB",
        direction: lower,
        samples: r.kestrel_rss_kb,
      },
      guest_mem_settled_kib: b.settled === undefined ? null : {
        label: "guest memory in use, settled (volar vms stats)",
        unit: "KiB",
        direction: lower,
        samples: b.settled.memory.used_kb,
      },
      kestrel_rss_settled_kib: b.settled === undefined ? null : {
        label: "kestrel RSS, settled (volar vms stats)",
        unit: "KiB",
        direction: lower,
        samples: b.settled.kestrel.rss_kb,
      },
      kestrel_anon_settled_kib: b.settled === undefined ? null : {
        label: "kestrel RSS, anonymous part (V8 heap, stacks)",
        unit: "KiB",
        direction: lower,
        samples: b.settled.kestrel.anon_kb,
      },
      kestrel_file_settled_kib: b.settled === undefined ? null : {
        label: "kestrel RSS, file-backed part (the Deno binary's pages)",
        unit: "KiB",
        direction: lower,
        samples: b.settled.kestrel.file_kb,
      },
      guest_uptime_at_ready_ms: {
        label: "guest uptime at ready",
        unit: "ms",
        direction: lower,
        samples: r.uptime_ms,
      },
      volantd_rss_kib: {
        label: "volantd RSS (host)",
        unit: "KiB",
        direction: lower,
        samples: b.volantdRssKb,
      },
      qemu_rss_kib: {
        label: "one QEMU process RSS at ready (host)",
        unit: "KiB",
        direction: lower,
        samples: b.qemuRssKb,
      },
    }),
  };
}

/** `net`: tap setup through FFI against `ip`, lease allocation against a pool table. */
export function netFigures(n: NetBenchResult): Extracted {
  return {
    params: {
      sqliteJournalMode: n.sqliteJournalMode,
      sqliteSynchronous: n.sqliteSynchronous,
      leasesTaken: 10_000,
    },
    figures: keyed("net", {
      tap_setup_ms: {
        label: "tap create + attach + up through Deno FFI",
        unit: "ms",
        direction: lower,
        samples: n.ffiTapMs,
        baseline: { label: "`ip tuntap add` + `ip link set`", samples: n.ipTapMs },
      },
      leases_per_s: {
        label: "leases/s with 10 000 taken, volantd's store path",
        unit: "/s",
        direction: higher,
        samples: n.storeLeasesPerSec,
        baseline: { label: "a SQLite pool table", samples: n.poolTablePerSec },
      },
    }),
  };
}

/** `appliance`: POST → first HTTP 200 against raw QEMU, sizes and guest memory. */
export function applianceFigures(a: ApplianceBenchResult): Extracted {
  return {
    accel: a.accel,
    params: { memTotalKb: a.memTotalKb },
    figures: keyed("appliance", {
      post_to_http_ms: {
        label: "POST /api/v1/vms → first HTTP 200 (busybox httpd as PID 1)",
        unit: "ms",
        direction: lower,
        samples: a.volantMs,
        baseline: {
          label: "raw qemu (same kernel + initramfs) → first HTTP 200",
          samples: a.rawMs,
        },
      },
      kestrel_post_to_http_ms: {
        label: "POST /api/v1/vms → first HTTP 200, the same appliance under kestrel",
        unit: "ms",
        direction: lower,
        samples: a.kestrelMs,
        baseline: { label: "init none (the binary as PID 1)", samples: a.volantMs },
      },
      kernel_raw_to_http_ms: {
        label: "raw qemu, Volant's kernel → first HTTP 200 (init none appliance)",
        unit: "ms",
        direction: lower,
        samples: a.rawMs,
        baseline: {
          label: "the same with Debian's cloud kernel and its stage 0 (modules)",
          samples: a.debianRawMs,
        },
      },
      build_ms: { label: "volar build time", unit: "ms", direction: lower, samples: a.buildMs },
      archive_bytes: {
        label: "appliance archive (.cpio.gz)",
        unit: "bytes",
        direction: lower,
        samples: a.applianceBytes,
      },
      vm_initramfs_bytes: {
        label: "per-VM initramfs (stage 0 + appliance + boot config)",
        unit: "bytes",
        direction: lower,
        samples: a.vmInitramfsBytes,
      },
      guest_mem_none_kib: {
        label: "guest memory in use after boot, init none",
        unit: "KiB",
        direction: lower,
        samples: a.memNoneKb,
      },
      guest_mem_kestrel_kib: {
        label: "guest memory in use after boot, init kestrel",
        unit: "KiB",
        direction: lower,
        samples: a.memKestrelKb,
      },
    }),
  };
}

/** `image`: image VM against the same workload as an appliance, disk per VM, pulls. */
export function imageFigures(r: ImageBenchResult): Extracted {
  return {
    accel: r.accel,
    params: { layerBytes: r.layerBytes },
    figures: keyed("image", {
      create_to_running_ms: {
        label: "create → running, image VM (erofs + overlay)",
        unit: "ms",
        direction: lower,
        samples: r.imageMs,
        baseline: { label: "the same workload as an appliance", samples: r.applianceMs },
      },
      second_vm_bytes: {
        label: "disk used by a second VM of the image",
        unit: "bytes",
        direction: lower,
        samples: r.secondVmBytes,
        baseline: { label: "the image's root filesystem", samples: r.rootfsBytes },
      },
      cold_pull_ms: {
        label: "pull + rootfs, cold cache",
        unit: "ms",
        direction: lower,
        samples: r.coldPullMs,
      },
      warm_pull_ms: {
        label: "pull again, warm cache (manifest only)",
        unit: "ms",
        direction: lower,
        samples: r.warmPullMs,
      },
    }),
  };
}

/** `probe`: volantd start with a cached KVM verdict against a cold cache. */
export function probeFigures(p: ProbeBenchResult): Extracted {
  return {
    accel: p.accel,
    params: { reason: p.reason },
    figures: keyed("probe", {
      start_cached_ms: {
        label: "volantd start → /healthz with a cached verdict",
        unit: "ms",
        direction: lower,
        samples: p.cachedMs,
        baseline: { label: "with a cold cache (the probe boot runs)", samples: p.coldMs },
      },
      probe_boot_ms: p.probeMs === null ? null : {
        label: "the probe boot itself",
        unit: "ms",
        direction: lower,
        samples: p.probeMs,
      },
    }),
  };
}

/** `policy`: with the nftables rules against without. */
export function policyFigures(p: PolicyBenchResult): Extracted {
  return {
    accel: p.accel,
    params: { bytes: p.bytes, rules: p.rules },
    figures: keyed("policy", {
      throughput_mib_s: {
        label: "guest → listener HTTP throughput with the rules",
        unit: "MiB/s",
        direction: higher,
        samples: p.withMibPerSec,
        baseline: { label: "without the rules", samples: p.withoutMibPerSec },
      },
      latency_ms: {
        label: "guest → listener HTTP GET latency with the rules",
        unit: "ms",
        direction: lower,
        samples: p.withLatencyMs,
        baseline: { label: "without the rules", samples: p.withoutLatencyMs },
      },
      ready_ms: {
        label: "POST /api/v1/vms → running, network.isolation true",
        unit: "ms",
        direction: lower,
        samples: p.withReadyMs,
        baseline: { label: "network.isolation false", samples: p.withoutReadyMs },
      },
    }),
  };
}

/** `jail`: jailed VMMs against `security.jail: off`. */
export function jailFigures(j: JailBenchResult): Extracted {
  return {
    accel: j.accel,
    params: {
      memoryMib: j.memoryMib,
      memoryMaxBytes: j.memoryMaxBytes,
      cgroupVersion: j.cgroupVersion,
    },
    figures: keyed("jail", {
      post_to_running_ms: {
        label: "POST /api/v1/vms → running, jailed",
        unit: "ms",
        direction: lower,
        samples: j.jailedMs,
        baseline: { label: "security.jail: off", samples: j.unjailedMs },
      },
      vmm_overhead_kib: {
        label: "VMM host memory outside guest RAM at ready, jailed",
        unit: "KiB",
        direction: lower,
        samples: j.overheadKb,
        baseline: { label: "unjailed", samples: j.unjailedOverheadKb },
      },
      guest_rss_kib: {
        label: "guest RAM resident at ready",
        unit: "KiB",
        direction: lower,
        samples: j.guestRssKb,
      },
      cgroup_bytes: {
        label: "cgroup charge at ready",
        unit: "bytes",
        direction: lower,
        samples: j.cgroupBytes,
      },
    }),
  };
}

/** `events`: durable event fan-out against the in-memory emitter, replay. */
export function eventsFigures(e: EventsBenchResult): Extracted {
  const sse = { label: "the in-memory emitter alone → the same clients", samples: e.sseMemoryMs };
  return {
    // Not eventBytes: the record's timestamps and ids change its length by a few bytes a run.
    params: { subscribers: e.subscribers },
    figures: keyed("events", {
      sse_durable_ms: {
        label: `recorded in the SQLite log → all ${e.subscribers} SSE clients have it`,
        unit: "ms",
        direction: lower,
        samples: e.sseDurableMs,
        baseline: sse,
      },
      sse_durable_p99_ms: {
        label: `recorded in the SQLite log → all ${e.subscribers} SSE clients have it, p99`,
        unit: "ms",
        direction: lower,
        statistic: "p99",
        samples: e.sseDurableMs,
        baseline: sse,
      },
      record_us: {
        label: `in process: recorded (transaction + commit) → ${e.subscribers} listeners`,
        unit: "us",
        direction: lower,
        samples: e.durableUs,
        baseline: { label: "the in-memory emitter → the same listeners", samples: e.memoryUs },
      },
      replay_per_s: {
        label: "replay from id 0 with 10 000 events in the log, events/s",
        unit: "/s",
        direction: higher,
        samples: e.replayPerSec,
      },
    }),
  };
}

/** `api`: REST list and create against cheap requests on the same server. */
export function apiFigures(a: ApiBenchResult): Extracted {
  const health = { label: "GET /healthz", samples: a.healthMs };
  const get = { label: "GET /api/v1/vms/<name>", samples: a.getMs };
  const list = `GET /api/v1/vms (${a.vms} rows)`;
  const create = "POST /api/v1/vms (create → starting)";
  return {
    params: { vms: a.vms },
    figures: keyed("api", {
      list_p50_ms: {
        label: `${list}, p50`,
        unit: "ms",
        direction: lower,
        statistic: "p50",
        samples: a.listMs,
        baseline: health,
      },
      list_p99_ms: {
        label: `${list}, p99`,
        unit: "ms",
        direction: lower,
        statistic: "p99",
        samples: a.listMs,
        baseline: health,
      },
      create_p50_ms: {
        label: `${create}, p50`,
        unit: "ms",
        direction: lower,
        statistic: "p50",
        samples: a.createMs,
        baseline: get,
      },
      create_p99_ms: {
        label: `${create}, p99`,
        unit: "ms",
        direction: lower,
        statistic: "p99",
        samples: a.createMs,
        baseline: get,
      },
      list_bytes: {
        label: `one ${list} answer`,
        unit: "bytes",
        direction: lower,
        samples: a.listBytes,
      },
    }),
  };
}

/** `snapshot`: pause and size of a snapshot, restore → running against a cold create. */
export function snapshotFigures(r: SnapshotBenchResult): Extracted {
  const figures: Record<string, FigureSpec | null> = {};
  for (const s of r.sizes) {
    const m = `${s.memoryMb}mib`;
    figures[`restore_to_running_${m}_ms`] = {
      label: `restore → running, ${s.memoryMb} MiB guest`,
      unit: "ms",
      direction: lower,
      samples: s.restoreMs,
      baseline: { label: "cold POST /api/v1/vms → running (same VM)", samples: s.coldMs },
    };
    figures[`paused_${m}_ms`] = {
      label: `guest paused for the snapshot, ${s.memoryMb} MiB guest`,
      unit: "ms",
      direction: lower,
      samples: s.pausedMs,
    };
    figures[`size_${m}_bytes`] = {
      label: `snapshot on disk, ${s.memoryMb} MiB guest`,
      unit: "bytes",
      direction: lower,
      samples: s.bytes,
    };
    figures[`clone_to_running_${m}_ms`] = s.cloneMs?.length
      ? {
        label: `clone (from_snapshot, own identity) → running, ${s.memoryMb} MiB guest`,
        unit: "ms",
        direction: lower,
        samples: s.cloneMs,
        baseline: { label: "cold POST /api/v1/vms → running (same VM)", samples: s.coldMs },
      }
      : null;
    figures[`clone_rss_${m}_bytes`] = s.cloneRssBytes?.length
      ? {
        label: `a clone's VMM resident memory, ${s.memoryMb} MiB guest`,
        unit: "bytes",
        direction: lower,
        samples: s.cloneRssBytes,
        baseline: { label: "the cold VM's VMM resident memory", samples: s.coldRssBytes },
      }
      : null;
  }
  return { accel: r.accel, params: {}, figures: keyed("snapshot", figures) };
}

/** `deploy`: replica replacement against a plain create, and where its time goes. */
export function deployFigures(d: DeployBenchResult): Extracted {
  return {
    accel: d.accel,
    params: { restartInitialMs: d.restartInitialMs },
    figures: keyed("deploy", {
      replace_ms: {
        label: "replica VMM SIGKILL → replacement running",
        unit: "ms",
        direction: lower,
        samples: d.replaceMs,
        baseline: { label: "POST /api/v1/vms → running (same plugin)", samples: d.createMs },
      },
      detect_ms: {
        label: "SIGKILL → crashed (daemon log)",
        unit: "ms",
        direction: lower,
        samples: d.detectMs,
      },
      backoff_ms: {
        label: "crashed → starting (backoff + start)",
        unit: "ms",
        direction: lower,
        samples: d.backoffMs,
      },
      boot_ms: {
        label: "starting → running (boot)",
        unit: "ms",
        direction: lower,
        samples: d.bootMs,
      },
    }),
  };
}

const EXTRACT: { [K in keyof RawResults]-?: (r: NonNullable<RawResults[K]>) => Extracted } = {
  boot: bootFigures,
  net: netFigures,
  appliance: applianceFigures,
  image: imageFigures,
  probe: probeFigures,
  policy: policyFigures,
  jail: jailFigures,
  events: eventsFigures,
  api: apiFigures,
  deploy: deployFigures,
  snapshot: snapshotFigures,
};

/** Every benchmark that ran, as results-document entries measured on this host in `run`. */
export async function toBenchmarks(raw: RawResults, run: Run): Promise<Record<string, Benchmark>> {
  const out: Record<string, Benchmark> = {};
  for (const name of Object.keys(EXTRACT) as (keyof RawResults)[]) {
    const result = raw[name];
    if (result === undefined) continue;
    const extract = EXTRACT[name] as (r: typeof result) => Extracted;
    const { figures, params, accel } = extract(result);
    out[name] = { run, host: await collectHost(accel), params, figures };
  }
  return out;
}
