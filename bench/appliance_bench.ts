/**
 * Appliance benchmark (issue 6): a `volar build` appliance (busybox httpd, the binary as PID 1)
 * from `POST /api/v1/vms` to its first HTTP 200, against a raw `qemu-system-x86_64` launch of
 * the same kernel, the same initramfs (copied from the daemon's VM) and the same command line on
 * a tap of the same bridge, to the same first HTTP 200; and the same appliance under kestrel
 * (issue 17: its workload is started by stage 0 and adopted) against `init none`; interleaved,
 * median of N. Also the appliance's size, and the guest's memory in use after boot
 * (MemTotal − MemAvailable from `/proc/meminfo`, as `volar vms stats` computes it, read by a
 * CGI script inside the guest) with init mode `none` and `kestrel`.
 *
 * @module
 */
import { guestDirArtifacts } from "../daemon/guest.ts";
import { qemuArgs } from "../hypervisor/qemu/cmdline.ts";
import { type E2eDaemon, ip, startDaemon, testGuestDir } from "../e2e/harness.ts";
import { VmRecord } from "../schema/mod.ts";
import { httpdApplianceConfig } from "../e2e/httpd_appliance.ts";

/** What one run of the appliance benchmark measured. */
export interface ApplianceBenchResult {
  /** `tcg` or `kvm`. */
  accel: string;
  /** `POST /api/v1/vms` → first HTTP 200 from the appliance, ms, one per run. */
  volantMs: number[];
  /** Raw QEMU launch of the same kernel + initramfs → first HTTP 200, ms, one per run. */
  rawMs: number[];
  /** The same appliance under kestrel: `POST /api/v1/vms` → first HTTP 200, ms, one per run. */
  kestrelMs: number[];
  /**
   * The raw launch again with Debian's cloud kernel and its own stage 0 (which loads the
   * virtio, erofs and overlay modules) in place of Volant's, the same appliance and boot
   * archive → first HTTP 200, ms, one per run (issue 17: Volant's kernel vs Debian's).
   */
  debianRawMs: number[];
  /** `volar build` wall time, ms. */
  buildMs: number;
  /** The appliance archive (`.cpio.gz`), bytes. */
  applianceBytes: number;
  /** The whole per-VM initramfs (stage 0 + appliance + boot config), bytes. */
  vmInitramfsBytes: number;
  /** Guest memory in use after boot (kB), init mode `none`. */
  memNoneKb: number;
  /** Guest memory in use after boot (kB), init mode `kestrel`. */
  memKestrelKb: number;
  /** Guest memory size (MemTotal, kB). */
  memTotalKb: number;
}

async function volarOk(daemon: E2eDaemon, ...args: string[]): Promise<string> {
  const r = await daemon.volar(...args);
  if (r.code !== 0) throw new Error(`volar ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** One `wget` from inside the namespace; the body, or undefined when it did not answer 200. */
async function get(ns: string, url: string): Promise<string | undefined> {
  const out = await new Deno.Command("ip", {
    // Not `wget -T`: Debian's busybox 1.35 wget crashes (SIGSEGV) with it.
    args: ["netns", "exec", ns, "busybox", "wget", "-q", "-O", "-", url],
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(3000),
  }).output().catch(() => ({ success: false, stdout: new Uint8Array() }));
  return out.success ? new TextDecoder().decode(out.stdout) : undefined;
}

async function firstOk(ns: string, url: string, started: number): Promise<number> {
  const deadline = started + 120_000;
  while (performance.now() < deadline) {
    if (await get(ns, url) !== undefined) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${url} did not answer within 120 s`);
}

function memInUse(meminfo: string): { used: number; total: number } {
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(meminfo)?.[1]);
  return { used: kb("MemTotal") - kb("MemAvailable"), total: kb("MemTotal") };
}

interface Booted {
  ms: number;
  vm: VmRecord;
}

async function volantBoot(daemon: E2eDaemon, name: string, plugin: string): Promise<Booted> {
  const started = performance.now();
  const created = await daemon.api("/api/v1/vms", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, plugin }),
  });
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
  const vm = VmRecord.parse(created.body);
  try {
    const ms = await firstOk(daemon.ns, `http://${vm.ip}/index.html`, started);
    return { ms, vm };
  } catch (err) {
    const now = await daemon.api(`/api/v1/vms/${name}`);
    const serial = await Deno.readTextFile(`${daemon.dir}/log/vms/${name}/serial.log`)
      .catch(() => "(none)");
    throw new Error(
      `${(err as Error).message}; VM: ${JSON.stringify(now.body)}; serial:\n${serial.slice(-2000)}`,
    );
  }
}

/** The raw launch: the daemon VM's initramfs and command line, on a tap of our own. */
async function rawBoot(
  daemon: E2eDaemon,
  guestDir: string,
  dir: string,
  vm: { ip: string; mac: string; cmdline: string; initramfs: string; kvm: boolean },
  i: number,
  tag = "raw",
): Promise<number> {
  const image = await guestDirArtifacts(guestDir).resolve("bzImage-volant");
  const runtimeDir = `${dir}/${tag}-${i}`;
  await Deno.mkdir(runtimeDir, { recursive: true });
  const tap = `vb-${tag.slice(0, 3)}${i}`;
  await ip("-n", daemon.ns, "tuntap", "add", tap, "mode", "tap");
  try {
    await ip("-n", daemon.ns, "link", "set", tap, "master", "vbr0", "up");
    const args = qemuArgs({
      id: `${tag}-${i}`,
      cpus: 1,
      memoryMib: 256,
      kernel: image.kernel,
      initramfs: vm.initramfs,
      cmdline: vm.cmdline,
      disks: [],
      nics: [{ id: "eth0", tap, mac: vm.mac }],
      serialLog: `${runtimeDir}/serial.log`,
      vmmLog: `${runtimeDir}/vmm.log`,
      runtimeDir,
      // The accelerator the daemon's VM ran with (proven by its probe boot), not /dev/kvm's
      // presence: a KVM that cannot boot the guest must not be the raw side's either.
    }, { accel: vm.kvm ? "kvm" : "tcg" }).filter((a) => a !== "-S");
    const started = performance.now();
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", daemon.ns, "qemu-system-x86_64", ...args],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      return await firstOk(daemon.ns, `http://${vm.ip}/index.html`, started);
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
  } finally {
    await ip("-n", daemon.ns, "link", "del", tap).catch(() => {});
  }
}

/**
 * The VM's initramfs with Debian's stage 0 (and its modules) in place of the shared Volant one:
 * the appliance and the boot archive that follow it are kept byte for byte.
 */
async function withDebianStage0(
  vmInitramfs: string,
  volantGuest: string,
  debianGuest: string,
  out: string,
): Promise<void> {
  const pad = (n: number) => n + ((4 - (n % 4)) % 4);
  const shared = pad((await Deno.stat(`${volantGuest}/initramfs.cpio`)).size);
  const debian = await Deno.readFile(`${debianGuest}/initramfs.cpio`);
  const rest = (await Deno.readFile(vmInitramfs)).subarray(shared);
  const bytes = new Uint8Array(pad(debian.length) + rest.length);
  bytes.set(debian);
  bytes.set(rest, pad(debian.length));
  await Deno.writeFile(out, bytes);
}

/** The `-append` value and the initramfs of a running VM's QEMU, from its command line. */
async function launchOf(pid: number): Promise<{ cmdline: string; initramfs: string }> {
  const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
  return {
    cmdline: argv[argv.indexOf("-append") + 1]!,
    initramfs: argv[argv.indexOf("-initrd") + 1]!,
  };
}

async function guestMemory(
  daemon: E2eDaemon,
  vm: VmRecord,
): Promise<{ used: number; total: number }> {
  const text = await get(daemon.ns, `http://${vm.ip}/cgi-bin/meminfo`);
  if (text === undefined) throw new Error(`no /proc/meminfo from ${vm.name}`);
  return memInUse(text);
}

/**
 * Runs the appliance benchmark: `runs` boots per side, interleaved, then one kestrel-mode boot
 * for its memory figure.
 *
 * @example
 * ```ts ignore
 * import { runApplianceBench } from "./appliance_bench.ts";
 * const result = await runApplianceBench(5);
 * ```
 */
export async function runApplianceBench(runs: number): Promise<ApplianceBenchResult> {
  // Debian's kernel and its stage 0, built beside the test guest (once; then cached).
  const debianGuest = await testGuestDir("debian");
  const daemon = await startDaemon();
  const work = `${daemon.dir}/appliance`;
  try {
    const guestDir = (await Deno.readTextFile(daemon.config)).match(/^ {2}dir: (.*)$/m)![1]!;
    await Deno.mkdir(`${work}/www/cgi-bin`, { recursive: true });
    await Deno.copyFile("/bin/busybox", `${work}/busybox`);
    await Deno.chmod(`${work}/busybox`, 0o755);
    await Deno.writeTextFile(`${work}/www/index.html`, "hello\n");
    await Deno.writeTextFile(
      `${work}/www/cgi-bin/meminfo`,
      '#!/bin/busybox sh\necho "Content-Type: text/plain"\necho\n/bin/busybox cat /proc/meminfo\n',
    );
    await Deno.chmod(`${work}/www/cgi-bin/meminfo`, 0o755);
    const built: Record<string, { manifest: string; archive: string }> = {};
    let buildMs = 0;
    for (const mode of ["none", "kestrel"] as const) {
      await Deno.writeTextFile(
        `${work}/app-${mode}.toml`,
        httpdApplianceConfig(`app-${mode}`, mode),
      );
      const t0 = performance.now();
      const out = JSON.parse(
        await volarOk(
          daemon,
          "build",
          "-c",
          `${work}/app-${mode}.toml`,
          "-o",
          `${work}/out`,
          "--json",
        ),
      );
      if (mode === "none") buildMs = performance.now() - t0;
      built[mode] = out;
      await volarOk(daemon, "plugins", "install", "--manifest", out.manifest, "--allow-unsigned");
    }
    const applianceBytes = (await Deno.stat(built.none!.archive)).size;
    const volantMs: number[] = [];
    const rawMs: number[] = [];
    const kestrelMs: number[] = [];
    const debianRawMs: number[] = [];
    let memKestrel = { used: NaN, total: NaN };
    let vmInitramfsBytes = 0;
    let memNone = { used: NaN, total: NaN };
    let accel = "tcg";
    const raw = `${work}/raw`;
    await Deno.mkdir(raw);
    for (let i = 0; i < runs; i++) {
      const { ms, vm } = await volantBoot(daemon, `app-${i}`, "app-none");
      volantMs.push(ms);
      accel = vm.kvm ? "kvm" : "tcg";
      const launch = await launchOf(vm.pid!);
      const initramfs = `${raw}/initramfs-${i}.cpio`;
      await Deno.copyFile(launch.initramfs, initramfs);
      vmInitramfsBytes = (await Deno.stat(initramfs)).size;
      if (i === 0) memNone = await guestMemory(daemon, vm);
      await volarOk(daemon, "vms", "delete", vm.name);
      rawMs.push(
        await rawBoot(daemon, guestDir, raw, {
          ip: vm.ip!,
          mac: vm.mac!,
          cmdline: launch.cmdline,
          initramfs,
          kvm: vm.kvm,
        }, i),
      );
      const debianInitramfs = `${raw}/initramfs-debian-${i}.cpio`;
      await withDebianStage0(initramfs, guestDir, debianGuest, debianInitramfs);
      debianRawMs.push(
        await rawBoot(
          daemon,
          debianGuest,
          raw,
          {
            ip: vm.ip!,
            mac: vm.mac!,
            cmdline: launch.cmdline,
            initramfs: debianInitramfs,
            kvm: vm.kvm,
          },
          i,
          "deb",
        ),
      );
      const kestrel = await volantBoot(daemon, `app-k${i}`, "app-kestrel");
      kestrelMs.push(kestrel.ms);
      if (i === 0) {
        // Settled, as a user reads it: once kestrel is ready and a few seconds on.
        await daemon.api(`/api/v1/vms/app-k${i}/wait?state=running&timeout_ms=120000`);
        await new Promise((r) => setTimeout(r, 5_000));
        memKestrel = await guestMemory(daemon, kestrel.vm);
      }
      await volarOk(daemon, "vms", "delete", `app-k${i}`);
    }
    return {
      accel,
      volantMs,
      rawMs,
      kestrelMs,
      debianRawMs,
      buildMs,
      applianceBytes,
      vmInitramfsBytes,
      memNoneKb: memNone.used,
      memKestrelKb: memKestrel.used,
      memTotalKb: memNone.total,
    };
  } finally {
    await daemon.dispose();
  }
}
