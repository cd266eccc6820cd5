/**
 * Deployment benchmark (issue 16): how long a deployment's replica is down when its VMM dies.
 * A real daemon (e2e harness: its own network namespace, QEMU) runs a deployment of one
 * replica of the busybox httpd appliance under kestrel (e2e/httpd_appliance.ts); each round
 * kills the replica's VMM with SIGKILL and times kill → the replacement `running` again (the
 * restart policy `always` restarts it in place: same name, same address), against the
 * baseline `POST /api/v1/vms` → `running` of a plain VM of the same plugin (created, timed,
 * deleted untimed), interleaved, the side that goes first alternating. At most 2 VMs run at
 * once (the replica and the plain VM).
 *
 * The restart backoff is part of the replacement's time: the daemon runs with
 * `restart.initial_ms` = {@linkcode RESTART_INITIAL_MS} (default 1000), and every round is a
 * first crash in a row (the streak is reset before each kill), so each waits that long once.
 * Where the time goes is split with the daemon's own log timestamps: kill → `crashed` (the
 * daemon noticing), `crashed` → `starting` (backoff and scheduling), `starting` → `running`
 * (the boot).
 *
 * @module
 */
import { type E2eDaemon, startDaemon } from "../e2e/harness.ts";
import { httpdApplianceConfig } from "../e2e/httpd_appliance.ts";
import { VmRecord } from "../schema/mod.ts";
import { median } from "./boot_bench.ts";

/** The daemon's `restart.initial_ms` during the benchmark. */
export const RESTART_INITIAL_MS = 100;

/** What the deployment benchmark measured (one value per round). */
export interface DeployBenchResult {
  /** `tcg` or `kvm`. */
  accel: string;
  /** The daemon's `restart.initial_ms` (backoff before a first restart). */
  restartInitialMs: number;
  /** SIGKILL of the replica's VMM → the replica `running` again, ms (host clock, 20 ms polls). */
  replaceMs: number[];
  /** `POST /api/v1/vms` of a plain VM of the same plugin → `running` (wait route), ms. */
  createMs: number[];
  /** SIGKILL → the daemon logged the replica `crashed`, ms. */
  detectMs: number[];
  /** `crashed` → `starting` as the daemon logged them (the backoff, then the start), ms. */
  backoffMs: number[];
  /** `starting` → `running` as the daemon logged them (the boot), ms. */
  bootMs: number[];
}

const PLUGIN = "benchweb";
const DEPLOYMENT = "rep";
const REPLICA = `${DEPLOYMENT}-1`;
const TIMEOUT_MS = 180_000;

async function volarOk(daemon: E2eDaemon, ...args: string[]): Promise<string> {
  const r = await daemon.volar(...args);
  if (r.code !== 0) throw new Error(`volar ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function post(daemon: E2eDaemon, path: string, body: unknown): Promise<unknown> {
  const res = await daemon.api(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 201 && res.status !== 200 && res.status !== 202) {
    throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

async function getVm(daemon: E2eDaemon, name: string): Promise<VmRecord> {
  const res = await daemon.api(`/api/v1/vms/${name}`);
  if (res.status !== 200) throw new Error(`GET ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return VmRecord.parse(res.body);
}

/** The daemon's log timestamp (epoch ms) of `vm`'s first move to `to` at or after `after`. */
function stateAt(daemon: E2eDaemon, vm: string, to: string, after: number): number {
  for (const line of daemon.logs()) {
    try {
      const l = JSON.parse(line) as Record<string, unknown>;
      if (l.msg !== "vm state" || l.vm !== vm || l.to !== to) continue;
      const at = Date.parse(String(l.ts));
      if (at >= after) return at;
    } catch {
      // Not JSON.
    }
  }
  return NaN;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Kills the replica's VMM; times it back to `running` (restarts counted one higher). */
async function replace(
  daemon: E2eDaemon,
): Promise<{ ms: number; detect: number; backoff: number; boot: number }> {
  const before = await getVm(daemon, REPLICA);
  if (before.state !== "running" || before.pid === null) {
    throw new Error(`${REPLICA} is ${before.state}, not running`);
  }
  const killedAtEpoch = Date.now();
  const started = performance.now();
  Deno.kill(before.pid, "SIGKILL");
  const deadline = started + TIMEOUT_MS;
  for (;;) {
    const vm = await getVm(daemon, REPLICA);
    if (vm.state === "running" && vm.restart.restarts === before.restart.restarts + 1) break;
    if (performance.now() > deadline) throw new Error(`${REPLICA} not running again in time`);
    await sleep(20);
  }
  const ms = performance.now() - started;
  const crashed = stateAt(daemon, REPLICA, "crashed", killedAtEpoch - 5);
  const starting = stateAt(daemon, REPLICA, "starting", crashed);
  const running = stateAt(daemon, REPLICA, "running", starting);
  return {
    ms,
    detect: crashed - killedAtEpoch,
    backoff: starting - crashed,
    boot: running - starting,
  };
}

/** A plain VM of the same plugin: POST → running; deleted again, untimed. */
async function create(daemon: E2eDaemon, name: string): Promise<number> {
  const started = performance.now();
  await post(daemon, "/api/v1/vms", { name, plugin: PLUGIN });
  const waited = await daemon.api(
    `/api/v1/vms/${name}/wait?state=running&timeout_ms=${TIMEOUT_MS}`,
  );
  const ms = performance.now() - started;
  if (waited.status !== 200) throw new Error(`wait ${name}: ${JSON.stringify(waited.body)}`);
  const deleted = await daemon.api(`/api/v1/vms/${name}`, { method: "DELETE" });
  if (deleted.status >= 300) throw new Error(`delete ${name}: ${JSON.stringify(deleted.body)}`);
  return ms;
}

/**
 * Runs the deployment benchmark: `runs` interleaved rounds.
 *
 * @example
 * ```ts ignore
 * import { runDeployBench } from "./deploy_bench.ts";
 * const result = await runDeployBench(3);
 * ```
 */
export async function runDeployBench(runs: number): Promise<DeployBenchResult> {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon({
      // A replica that ran 1 s has its crash streak reset: every round is a first crash.
      config: [
        "restart:",
        `  initial_ms: ${RESTART_INITIAL_MS}`,
        "  stable_ms: 1000",
        "deployments:",
        "  resync_ms: 500",
      ],
    });
    const work = `${daemon.dir}/app`;
    await Deno.mkdir(`${work}/www`, { recursive: true });
    await Deno.copyFile("/bin/busybox", `${work}/busybox`);
    await Deno.chmod(`${work}/busybox`, 0o755);
    await Deno.writeTextFile(`${work}/www/index.html`, "ok\n");
    await Deno.writeTextFile(`${work}/app.toml`, httpdApplianceConfig(PLUGIN, "kestrel"));
    const built = JSON.parse(
      await volarOk(daemon, "build", "-c", `${work}/app.toml`, "-o", `${work}/out`, "--json"),
    );
    await volarOk(daemon, "plugins", "install", "--manifest", built.manifest, "--allow-unsigned");

    // The replica's first boot is the warm-up of the plugin's artifacts.
    await post(daemon, "/api/v1/deployments", { name: DEPLOYMENT, plugin: PLUGIN, replicas: 1 });
    const ready = await daemon.api(
      `/api/v1/deployments/${DEPLOYMENT}/wait?timeout_ms=${TIMEOUT_MS}`,
    );
    if (ready.status !== 200) throw new Error(`deployment wait: ${JSON.stringify(ready.body)}`);
    const first = await getVm(daemon, REPLICA);

    const result: DeployBenchResult = {
      accel: first.kvm ? "kvm" : "tcg",
      restartInitialMs: RESTART_INITIAL_MS,
      replaceMs: [],
      createMs: [],
      detectMs: [],
      backoffMs: [],
      bootMs: [],
    };
    for (let i = 0; i < runs; i++) {
      for (const side of i % 2 === 0 ? ["replace", "create"] : ["create", "replace"]) {
        if (side === "create") {
          result.createMs.push(await create(daemon, `plain-${i}`));
          continue;
        }
        // Past restart.stable_ms since it last came up: the streak is back at 0.
        const deadline = Date.now() + 30_000;
        while ((await getVm(daemon, REPLICA)).restart.streak !== 0) {
          if (Date.now() > deadline) throw new Error(`${REPLICA}'s crash streak was not reset`);
          await sleep(100);
        }
        const r = await replace(daemon);
        result.replaceMs.push(r.ms);
        result.detectMs.push(r.detect);
        result.backoffMs.push(r.backoff);
        result.bootMs.push(r.boot);
      }
    }
    const gone = await daemon.api(`/api/v1/deployments/${DEPLOYMENT}`, { method: "DELETE" });
    if (gone.status >= 300) throw new Error(`deployment delete: ${JSON.stringify(gone.body)}`);
    return result;
  } finally {
    await daemon?.dispose();
  }
}

/** The medians of `result`, for the printed table. */
export function deployMedians(result: DeployBenchResult): {
  replace: number;
  create: number;
  detect: number;
  backoff: number;
  boot: number;
} {
  return {
    replace: median(result.replaceMs),
    create: median(result.createMs),
    detect: median(result.detectMs),
    backoff: median(result.backoffMs),
    boot: median(result.bootMs),
  };
}
