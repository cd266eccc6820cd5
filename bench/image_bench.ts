/**
 * Image benchmark (issue 7): pull + convert of an OCI image from a real registry (Debian's
 * docker-registry in the daemon's namespace) with a cold cache (median of N: the image is
 * removed and the cache checked empty between runs) and a warm one; `POST /api/v1/vms`
 * → `running` for a VM of that image (rootfs path: shared erofs + overlay, kestrel supervising
 * busybox httpd) against the same workload built as an initramfs appliance with kestrel
 * (initramfs path), interleaved, median of N; and the disk bytes a second VM of the image uses
 * (its writable layer only) against the image's root filesystem.
 *
 * @module
 */
import { type E2eDaemon, startDaemon } from "../e2e/harness.ts";
import { type E2eRegistry, pushTestImage, run, startRegistryInNetns } from "../e2e/registry.ts";
import { ImageRecord, VmRecord } from "../schema/mod.ts";
import { httpdApplianceConfig } from "../e2e/httpd_appliance.ts";

/** What one run of the image benchmark measured. */
export interface ImageBenchResult {
  /** `tcg` or `kvm`. */
  accel: string;
  /** Pull + rootfs build with nothing cached, ms, one per run (the cache emptied before each). */
  coldPullMs: number[];
  /** The same pull again right after (manifest only), ms, one per run. */
  warmPullMs: number[];
  /** The image's compressed layers, bytes. */
  layerBytes: number;
  /** Its erofs root filesystem, bytes. */
  rootfsBytes: number;
  /** Image VM: create → running, ms, one per run. */
  imageMs: number[];
  /** The same workload as an initramfs appliance (kestrel): create → running, ms, one per run. */
  applianceMs: number[];
  /** Host disk a second VM of the image uses (its state dir), bytes. */
  secondVmBytes: number;
}

async function api(daemon: E2eDaemon, path: string, body?: unknown) {
  const r = await daemon.api(
    path,
    body === undefined ? {} : {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    },
  );
  if (r.status >= 300) throw new Error(`${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}

async function createAndWait(daemon: E2eDaemon, body: Record<string, unknown>) {
  const started = performance.now();
  await api(daemon, "/api/v1/vms", body);
  const vm = VmRecord.parse(
    await api(daemon, `/api/v1/vms/${body.name}/wait?state=running&timeout_ms=180000`),
  );
  return { ms: performance.now() - started, vm };
}

/** Files left in the daemon's image cache (blobs and root filesystems). */
async function cachedFiles(daemon: E2eDaemon): Promise<string[]> {
  const out: string[] = [];
  for (const dir of ["blobs/sha256", "rootfs"]) {
    const path = `${daemon.dir}/state/images/${dir}`;
    try {
      for await (const e of Deno.readDir(path)) out.push(`${dir}/${e.name}`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return out;
}

/** Removes the image and checks that nothing of it is left in the cache. */
async function clearImageCache(daemon: E2eDaemon, ref: string): Promise<void> {
  const r = await daemon.api(`/api/v1/images/${encodeURIComponent(ref)}`, { method: "DELETE" });
  if (r.status !== 200) throw new Error(`removing ${ref}: ${JSON.stringify(r.body)}`);
  const left = await cachedFiles(daemon);
  if (left.length > 0) throw new Error(`the image cache is not empty: ${left.join(", ")}`);
}

/**
 * Pulls `ref` `runs` times into an empty cache (cold), each followed by a pull of the cached
 * image (warm); the image stays cached after the last run.
 */
async function pulls(daemon: E2eDaemon, ref: string, runs: number) {
  const coldPullMs: number[] = [];
  const warmPullMs: number[] = [];
  let image: ImageRecord | undefined;
  for (let i = 0; i < runs; i++) {
    if (i > 0) await clearImageCache(daemon, ref);
    let t0 = performance.now();
    image = ImageRecord.parse(await api(daemon, "/api/v1/images", { ref, insecure: true }));
    coldPullMs.push(performance.now() - t0);
    t0 = performance.now();
    await api(daemon, "/api/v1/images", { ref, insecure: true });
    warmPullMs.push(performance.now() - t0);
  }
  return { image: image!, coldPullMs, warmPullMs };
}

async function volarOk(daemon: E2eDaemon, ...args: string[]): Promise<string> {
  const r = await daemon.volar(...args);
  if (r.code !== 0) throw new Error(`volar ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The appliance twin of the test image: busybox httpd serving the same page, with kestrel. */
async function buildAppliance(daemon: E2eDaemon, work: string): Promise<void> {
  await Deno.mkdir(`${work}/app/www`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${work}/app/busybox`);
  await Deno.chmod(`${work}/app/busybox`, 0o755);
  await Deno.writeTextFile(`${work}/app/www/index.html`, "hello from an OCI image\n");
  await Deno.writeTextFile(
    `${work}/app/app.toml`,
    httpdApplianceConfig("twin", "kestrel", [`kind = "tcp"`, `port = 80`, `interval_ms = 1000`]),
  );
  const built = JSON.parse(
    await volarOk(daemon, "build", "-c", `${work}/app/app.toml`, "-o", `${work}/out`, "--json"),
  );
  await volarOk(daemon, "plugins", "install", "--manifest", built.manifest, "--allow-unsigned");
}

/**
 * Runs the image benchmark: `runs` boots per path, interleaved.
 *
 * @example
 * ```ts ignore
 * import { runImageBench } from "./image_bench.ts";
 * const result = await runImageBench(3);
 * ```
 */
export async function runImageBench(runs: number): Promise<ImageBenchResult> {
  let daemon: E2eDaemon | undefined;
  let registry: E2eRegistry | undefined;
  try {
    daemon = await startDaemon();
    const work = `${daemon.dir}/bench`;
    const port = 5000 + Math.floor(Math.random() * 1000);
    registry = await startRegistryInNetns(daemon.ns, `${work}/registry`, port);
    const ref = await pushTestImage(daemon.ns, work, port);
    if ((await cachedFiles(daemon)).length > 0) throw new Error("the image cache is not empty");
    const { image, coldPullMs, warmPullMs } = await pulls(daemon, ref, runs);
    await buildAppliance(daemon, work);
    const imageMs: number[] = [];
    const applianceMs: number[] = [];
    let accel = "tcg";
    for (let i = 0; i < runs; i++) {
      const img = await createAndWait(daemon, { name: `img-${i}`, image: ref });
      imageMs.push(img.ms);
      accel = img.vm.kvm ? "kvm" : "tcg";
      await volarOk(daemon, "vms", "delete", `img-${i}`);
      const app = await createAndWait(daemon, { name: `app-${i}`, plugin: "twin" });
      applianceMs.push(app.ms);
      await volarOk(daemon, "vms", "delete", `app-${i}`);
    }
    await createAndWait(daemon, { name: "first", image: ref });
    await createAndWait(daemon, { name: "second", image: ref });
    const du = await run("du", "-sk", `${daemon.dir}/state/vms/second`);
    const secondVmBytes = Number(du.split("\t")[0]) * 1024;
    await volarOk(daemon, "vms", "delete", "first");
    await volarOk(daemon, "vms", "delete", "second");
    return {
      accel,
      coldPullMs,
      warmPullMs,
      layerBytes: image.layers.reduce((n, l) => n + l.size, 0),
      rootfsBytes: image.rootfs.size_bytes,
      imageMs,
      applianceMs,
      secondVmBytes,
    };
  } finally {
    await registry?.stop();
    await daemon?.dispose();
  }
}
