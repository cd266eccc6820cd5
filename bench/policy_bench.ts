/**
 * Network policy benchmark (issue 14): what the per-tap rules cost, measured in one run.
 *
 * - HTTP from a guest (the probe appliance: kestrel + busybox, e2e/probe_appliance.ts) to a
 *   listener in a namespace the benchmark creates ("the internet": a documentation address on
 *   a veth, through the daemon's NAT), with the policy rules vs without them, on the same VM,
 *   the rules switched on and off between samples (8 per round, the side that goes first
 *   alternating): throughput (busybox wget of a large file in the guest, timed from the host
 *   around the whole call) and latency (kestrel's `POST /v1/net/check`, one GET per check,
 *   timed by kestrel in the guest; 5 per sample). "Without" is the
 *   daemon's two policy tables deleted; "with" puts them back (a policy change rewrites them).
 * - `POST /api/v1/vms` → `running` of a bare VM (kestrel only) on a daemon with the policy vs
 *   one with `network.isolation: false`, interleaved, one VM at a time.
 *
 * @module
 */
import { NetCheckResult, VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, ip, startDaemon } from "../e2e/harness.ts";
import { guestSh, installProbePlugin } from "../e2e/probe_appliance.ts";
import { median } from "./boot_bench.ts";

/** What the policy benchmark measured (one value per round and side). */
export interface PolicyBenchResult {
  /** `tcg` or `kvm`. */
  accel: string;
  /** Bytes of the file each throughput round fetches. */
  bytes: number;
  /** Guest → listener throughput, MiB/s, with the rules. */
  withMibPerSec: number[];
  /** The same without the rules. */
  withoutMibPerSec: number[];
  /** One GET's latency as kestrel measured it in the guest, ms (median of each round's checks). */
  withLatencyMs: number[];
  /** The same without the rules. */
  withoutLatencyMs: number[];
  /** `POST /api/v1/vms` → running, ms, on the daemon with the rules. */
  withReadyMs: number[];
  /** The same on the daemon with `network.isolation: false`. */
  withoutReadyMs: number[];
  /** The rules in place during the "with" rounds (nft rule count of both tables). */
  rules: number;
}

const LISTENER = "198.51.100.2";
const FILE_BYTES = 8 * 1024 * 1024;
const CHECKS_PER_SAMPLE = 5;
/** Samples per round, alternating rules on and off (half each). */
const SAMPLES_PER_ROUND = 8;

async function nft(ns: string, ...args: string[]): Promise<string> {
  return await ip("netns", "exec", ns, "nft", ...args);
}

/** Removes the policy tables ("without"), or has the daemon rewrite them ("with"). */
async function setRules(daemon: E2eDaemon, vm: string, on: boolean): Promise<void> {
  if (on) {
    const res = await daemon.api(`/api/v1/vms/${vm}/network-policy`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({}),
    });
    if (res.status !== 200) throw new Error(`policy PUT: ${JSON.stringify(res.body)}`);
  } else {
    for (const family of ["bridge", "ip"]) {
      await nft(daemon.ns, "add", "table", family, "volant_policy"); // when it is gone already
      await nft(daemon.ns, "delete", "table", family, "volant_policy");
    }
  }
  const tables = await nft(daemon.ns, "list", "tables");
  if (tables.includes("volant_policy") !== on) throw new Error(`rules not ${on ? "on" : "off"}`);
}

/** Fetches the large file from the guest; MiB/s timed from the host. */
async function throughput(daemon: E2eDaemon, ip: string): Promise<number> {
  const started = performance.now();
  const out = await guestSh(
    daemon,
    ip,
    `busybox wget -q -O /dev/null http://${LISTENER}:8081/big && echo done`,
  );
  const ms = performance.now() - started;
  if (!out.includes("done")) throw new Error(`the guest's download failed: ${out}`);
  return FILE_BYTES / 1024 / 1024 / (ms / 1000);
}

/** Median latency of `CHECKS_PER_SAMPLE` GETs from the guest, as kestrel times them. */
async function latency(daemon: E2eDaemon, vm: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < CHECKS_PER_SAMPLE; i++) {
    const res = await daemon.api(`/api/v1/vms/${vm}/agent/v1/net/check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url: `http://${LISTENER}:8081/index.html`, timeout_ms: 5000 }),
    });
    const check = NetCheckResult.parse(res.body);
    if (!check.ok) throw new Error(`net check failed: ${JSON.stringify(check)}`);
    times.push(check.ms);
  }
  return median(times);
}

async function createReady(daemon: E2eDaemon, name: string): Promise<number> {
  const started = performance.now();
  const created = await daemon.api("/api/v1/vms", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, memory_mb: 256 }),
  });
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
  const waited = await daemon.api(`/api/v1/vms/${name}/wait?state=running&timeout_ms=120000`);
  const ms = performance.now() - started;
  if (waited.status !== 200) throw new Error(`wait failed: ${JSON.stringify(waited.body)}`);
  await daemon.api(`/api/v1/vms/${name}`, { method: "DELETE" });
  return ms;
}

/** The listener namespace, on a veth from the daemon's namespace; returns its httpd's PID. */
async function listener(daemon: E2eDaemon, ns: string, dir: string): Promise<number> {
  await ip("netns", "add", ns);
  await ip("-n", ns, "link", "set", "lo", "up");
  await ip("-n", daemon.ns, "link", "add", "vbench0", "type", "veth", "peer", "name", "vbench1");
  await ip("-n", daemon.ns, "link", "set", "vbench1", "netns", ns);
  await ip("-n", daemon.ns, "addr", "add", "198.51.100.1/24", "dev", "vbench0");
  await ip("-n", daemon.ns, "link", "set", "vbench0", "up");
  await ip("-n", ns, "addr", "add", `${LISTENER}/24`, "dev", "vbench1");
  await ip("-n", ns, "link", "set", "vbench1", "up");
  await Deno.writeFile(`${dir}/big`, new Uint8Array(FILE_BYTES));
  await Deno.writeTextFile(`${dir}/index.html`, "ok\n");
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, "busybox", "httpd", "-f", "-p", "8081", "-h", dir],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn().pid;
}

/** Turns `network.isolation` off in a test daemon's config and restarts it. */
async function withoutIsolation(daemon: E2eDaemon): Promise<void> {
  await daemon.stop();
  const text = await Deno.readTextFile(daemon.config);
  if (!/^network:\n/m.test(text)) throw new Error("the test config has no network section");
  await Deno.writeTextFile(
    daemon.config,
    text.replace(/^network:\n/m, "network:\n  isolation: false\n"),
  );
  await daemon.start();
}

/**
 * Runs the policy benchmark: `runs` interleaved rounds of each measure.
 *
 * @example
 * ```ts ignore
 * import { runPolicyBench } from "./policy_bench.ts";
 * const result = await runPolicyBench(3);
 * ```
 */
export async function runPolicyBench(runs: number): Promise<PolicyBenchResult> {
  const tag = crypto.randomUUID().slice(0, 6);
  const outside = `volant-bench-out-${tag}`;
  const dir = await Deno.makeTempDir({ prefix: "volant-bench-policy-" });
  let withRules: E2eDaemon | undefined;
  let withoutRules: E2eDaemon | undefined;
  let httpd: number | undefined;
  try {
    withRules = await startDaemon();
    httpd = await listener(withRules, outside, dir);
    await installProbePlugin(withRules);
    const created = await withRules.api("/api/v1/vms", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "pol", plugin: "probe" }),
    });
    if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
    const ready = await withRules.api("/api/v1/vms/pol/wait?state=running&timeout_ms=180000");
    if (ready.status !== 200) throw new Error(`wait failed: ${JSON.stringify(ready.body)}`);
    const vm = VmRecord.parse(ready.body);
    // Warm up both paths (ARP, the guest's caches) before measuring.
    await throughput(withRules, vm.ip!);
    await latency(withRules, "pol");
    const rules = (await nft(withRules.ns, "-a", "list", "table", "ip", "volant_policy") +
      await nft(withRules.ns, "-a", "list", "table", "bridge", "volant_policy"))
      .split("\n").filter((l) => /# handle \d+$/.test(l) && !/^\s*(chain|table|set|map)/.test(l))
      .length;

    const result: PolicyBenchResult = {
      accel: vm.kvm ? "kvm" : "tcg",
      bytes: FILE_BYTES,
      withMibPerSec: [],
      withoutMibPerSec: [],
      withLatencyMs: [],
      withoutLatencyMs: [],
      withReadyMs: [],
      withoutReadyMs: [],
      rules,
    };
    // Rules on and off alternate between samples (the machine's load drifts); each round is
    // the median of its samples.
    for (let i = 0; i < runs; i++) {
      const mib: Record<"on" | "off", number[]> = { on: [], off: [] };
      const ms: Record<"on" | "off", number[]> = { on: [], off: [] };
      for (let k = 0; k < SAMPLES_PER_ROUND; k++) {
        const on = (k + i) % 2 === 0;
        await setRules(withRules, "pol", on);
        mib[on ? "on" : "off"].push(await throughput(withRules, vm.ip!));
        ms[on ? "on" : "off"].push(await latency(withRules, "pol"));
      }
      result.withMibPerSec.push(median(mib.on));
      result.withoutMibPerSec.push(median(mib.off));
      result.withLatencyMs.push(median(ms.on));
      result.withoutLatencyMs.push(median(ms.off));
    }
    await setRules(withRules, "pol", true);
    await withRules.api("/api/v1/vms/pol", { method: "DELETE" });

    withoutRules = await startDaemon();
    await withoutIsolation(withoutRules);
    if ((await nft(withoutRules.ns, "list", "tables")).includes("volant_policy")) {
      throw new Error("the daemon without isolation installed policy tables");
    }
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? [withRules, withoutRules] : [withoutRules, withRules];
      for (const daemon of order) {
        const ms = await createReady(daemon, `ready-${i}`);
        (daemon === withRules ? result.withReadyMs : result.withoutReadyMs).push(ms);
      }
    }
    return result;
  } finally {
    if (httpd !== undefined) {
      try {
        Deno.kill(httpd, "SIGKILL");
      } catch {
        // Gone.
      }
    }
    await ip("netns", "del", outside).catch(() => {});
    await withRules?.dispose();
    await withoutRules?.dispose();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
