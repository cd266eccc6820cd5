/**
 * REST API benchmark: what volantd's own API costs per request, with the fake driver (no VM
 * boots), a real SQLite file and the app served over a unix socket as volantd serves it. Each
 * measure and its baseline are sampled in the same run, interleaved, over one HTTP client:
 *
 * - `GET /api/v1/vms` with 200 VMs in the table (created through the service), p50 and p99.
 *   Baseline: `GET /healthz` on the same server and app (the same middleware: access check,
 *   access log), so the ratio is the cost of the list itself. Also rows/s at p50.
 * - `POST /api/v1/vms` (create; answers in state starting), p50 and p99, each VM deleted again
 *   (untimed) so the table stays at 200. Baseline: `GET /api/v1/vms/<name>` of one VM.
 *
 * @module
 */
import { makeTestEnv, testApp } from "../daemon/testing.ts";

/** What the API benchmark measured (all latencies in ms, one entry per request). */
export interface ApiBenchResult {
  /** VMs in the table while measuring. */
  vms: number;
  /** Bytes of one `GET /api/v1/vms` answer. */
  listBytes: number;
  /** `GET /api/v1/vms` latencies. */
  listMs: number[];
  /** `GET /healthz` latencies (baseline of the list). */
  healthMs: number[];
  /** `POST /api/v1/vms` latencies. */
  createMs: number[];
  /** `GET /api/v1/vms/<name>` latencies (baseline of the create). */
  getMs: number[];
  /** Time to fill the table through the service (setup, for reference). */
  setupMs: number;
}

const VMS = 200;

/** The `p`-quantile of `values` (nearest rank, p in [0, 1]). */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/**
 * Runs the benchmark: `listRounds` list/health pairs and `createRounds` create/get pairs,
 * interleaved (the order within a pair alternates), after a warm-up.
 */
export async function runApiBench(
  listRounds: number,
  createRounds: number,
): Promise<ApiBenchResult> {
  const env = await makeTestEnv({ readyMs: 5_000 });
  const { app, daemon } = testApp(env);
  const socket = `${env.runtimeDir}/bench.sock`;
  const server = Deno.serve(
    { path: socket, onListen() {} },
    (req) => app.fetch(req, { remoteAddr: { transport: "unix", path: socket } }),
  );
  const http = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  /** One request, its body read in full: the time taken. */
  const timed = async (path: string, init: RequestInit = {}, status = 200) => {
    const started = performance.now();
    const res = await fetch(`http://volant${path}`, { ...init, client: http });
    const body = await res.arrayBuffer();
    const ms = performance.now() - started;
    if (res.status !== status) {
      throw new Error(
        `${init.method ?? "GET"} ${path}: HTTP ${res.status}: ${
          new TextDecoder().decode(body).slice(0, 200)
        }`,
      );
    }
    return { ms, bytes: body.byteLength };
  };
  /** Runs `a` and `b` once each, alternating which goes first. */
  const pair = async (i: number, a: () => Promise<number>, b: () => Promise<number>) => {
    if (i % 2 === 0) return [await a(), await b()] as const;
    const second = await b();
    return [await a(), second] as const;
  };
  try {
    const setupStarted = performance.now();
    const names = Array.from({ length: VMS }, (_, i) => `vm-${String(i).padStart(3, "0")}`);
    for (const name of names) await daemon.service.create({ name });
    for (const name of names) await daemon.service.wait(name, "running", 5_000);
    const setupMs = performance.now() - setupStarted;
    if (daemon.service.count() !== VMS) throw new Error(`${daemon.service.count()} VMs`);

    const list = async () => (await timed("/api/v1/vms")).ms;
    const health = async () => (await timed("/healthz")).ms;
    const listBytes = (await timed("/api/v1/vms")).bytes;
    for (let i = 0; i < 20; i++) await pair(i, list, health); // warm-up
    const listMs: number[] = [];
    const healthMs: number[] = [];
    for (let i = 0; i < listRounds; i++) {
      const [l, h] = await pair(i, list, health);
      listMs.push(l);
      healthMs.push(h);
    }

    let created = 0;
    const create = async () => {
      const name = `bench-${created++}`;
      const { ms } = await timed("/api/v1/vms", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name }),
      }, 201);
      await daemon.service.delete(name); // untimed: the table stays at 200
      return ms;
    };
    const get = async () => (await timed(`/api/v1/vms/${names[VMS / 2]}`)).ms;
    for (let i = 0; i < 10; i++) await pair(i, create, get); // warm-up
    const createMs: number[] = [];
    const getMs: number[] = [];
    for (let i = 0; i < createRounds; i++) {
      const [c, g] = await pair(i, create, get);
      createMs.push(c);
      getMs.push(g);
    }
    if (daemon.service.count() !== VMS) throw new Error(`${daemon.service.count()} VMs left`);
    return { vms: VMS, listBytes, listMs, healthMs, createMs, getMs, setupMs };
  } finally {
    http.close();
    await server.shutdown();
    await env.dispose();
  }
}

if (import.meta.main) {
  const r = await runApiBench(200, 50);
  const f = (v: number) => v.toFixed(2);
  console.log(
    `list p50 ${f(percentile(r.listMs, 0.5))} ms (healthz ${f(percentile(r.healthMs, 0.5))} ms), ` +
      `create p50 ${f(percentile(r.createMs, 0.5))} ms (get ${f(percentile(r.getMs, 0.5))} ms)`,
  );
}
