/** Helpers shared by the kernels/ tests: the kernel cache and real QEMU boots. @module */
import { readKernelInfo } from "./debian_kernel.ts";
import type { KernelInfo } from "./debian_kernel.ts";

/** The kernel cache the tests use: `VOLANT_TEST_GUEST_DIR`, else `<repo>/.cache/guest`. */
export const KERNEL_CACHE = Deno.env.get("VOLANT_TEST_GUEST_DIR") ??
  new URL("../.cache/guest", import.meta.url).pathname;

/** The cached Debian kernel, or undefined when it was never fetched (tests then skip). */
export const CACHED_KERNEL: KernelInfo | undefined = await readKernelInfo(KERNEL_CACHE);

/** Why kernel tests are skipped, when they are. */
export const NO_KERNEL_REASON =
  `no Debian kernel in ${KERNEL_CACHE} (run ./volant test, which fetches it)`;

/** Whether `cmd` can be run (found on PATH). */
export function hasCommand(cmd: string): boolean {
  try {
    new Deno.Command(cmd, { args: ["--help"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

/** Host TSC in kHz from `/proc/cpuinfo` (`cpu MHz`), for `tsc_early_khz=`. */
export function tscKhz(): number {
  const match = Deno.readTextFileSync("/proc/cpuinfo").match(/cpu MHz\s*:\s*([0-9.]+)/);
  if (!match?.[1]) throw new Error("No `cpu MHz` in /proc/cpuinfo");
  return Math.round(Number(match[1]) * 1000);
}

/** Options of {@linkcode bootQemu}. */
export interface BootOptions {
  /** Kernel image (bzImage or PVH vmlinux). */
  kernel: string;
  /** Initramfs. */
  initramfs: string;
  /** Runtime disk attached as virtio-blk `/dev/vda` (read-only). */
  disk: string;
  /** Serial console log file. */
  log: string;
  /** Kill QEMU after this many ms; default 90 000. */
  timeoutMs?: number;
  /** Extra kernel command line words. */
  cmdline?: string;
}

/** What {@linkcode bootQemu} observed. */
export interface BootResult {
  /** QEMU's exit code (null when killed by the timeout). */
  code: number | null;
  /** Whether the timeout killed it. */
  timedOut: boolean;
  /** Serial console output. */
  console: string;
  /** Wall time from spawn to exit, ms. */
  wallMs: number;
  /** Wall time from spawn until `marker` first appeared in the log, ms (polled every 20 ms). */
  markerMs: number | undefined;
}

/**
 * Boots QEMU microvm (TCG) inside a fresh network namespace it deletes afterwards, with the
 * command line of feasibility.md recipe 3.
 */
export async function bootQemu(
  options: BootOptions,
  marker = "KESTREL_READY",
): Promise<BootResult> {
  const ns = `volant-t-${crypto.randomUUID().slice(0, 8)}`;
  const add = await new Deno.Command("ip", { args: ["netns", "add", ns], stderr: "piped" })
    .output();
  if (!add.success) throw new Error(`ip netns add ${ns}: ${new TextDecoder().decode(add.stderr)}`);
  try {
    const args = [
      "netns",
      "exec",
      ns,
      "qemu-system-x86_64",
      "-M",
      "microvm,x-option-roms=off,rtc=on",
      "-accel",
      "tcg",
      "-cpu",
      "max",
      "-m",
      "256",
      "-smp",
      "1",
      "-nodefaults",
      "-no-user-config",
      "-display",
      "none",
      "-no-reboot",
      "-serial",
      `file:${options.log}`,
      "-kernel",
      options.kernel,
      "-initrd",
      options.initramfs,
      "-drive",
      `file=${options.disk},if=none,id=d0,format=raw,readonly=on`,
      "-device",
      "virtio-blk-device,drive=d0",
      "-append",
      `console=ttyS0 quiet reboot=t panic=-1 tsc_early_khz=${tscKhz()} tsc=reliable ${
        options.cmdline ?? ""
      }`.trim(),
    ];
    const started = performance.now();
    // `ip netns exec` execs QEMU in place, so this PID is QEMU's.
    const child = new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).spawn();
    let timedOut = false;
    let markerMs: number | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutMs ?? 90_000);
    const poll = setInterval(() => {
      if (markerMs !== undefined) return;
      try {
        if (Deno.readTextFileSync(options.log).includes(marker)) {
          markerMs = performance.now() - started;
        }
      } catch {
        // not created yet
      }
    }, 20);
    const status = await child.output();
    const wallMs = performance.now() - started;
    clearTimeout(timer);
    clearInterval(poll);
    const console = await Deno.readTextFile(options.log).catch(() => "");
    const stderr = new TextDecoder().decode(status.stderr).trim();
    if (stderr) globalThis.console.error(`qemu stderr: ${stderr}`);
    return { code: timedOut ? null : status.code, timedOut, console, wallMs, markerMs };
  } finally {
    await new Deno.Command("ip", { args: ["netns", "del", ns] }).output();
  }
}

/** Whether real boots can run here (QEMU, ip, root for namespaces, a cached kernel). */
export function bootSkipReason(): string | undefined {
  if (!CACHED_KERNEL) return NO_KERNEL_REASON;
  if (!hasCommand("qemu-system-x86_64")) return "qemu-system-x86_64 is not installed";
  if (!hasCommand("ip")) return "ip (iproute2) is not installed";
  if (Deno.uid() !== 0) return "network namespaces need root";
  return undefined;
}

/**
 * A stand-in for the kestrel bundle that behaves like kestrel just enough: prints
 * `KESTREL_PROBE <json>` (what stage 0 set up: PID, args, env, mounts, loaded modules or null
 * without module support, kernel release, /tmp and /run modes, /dev/vda, input devices), then
 * `KESTREL_READY <json>`, and powers off.
 */
export const KESTREL_STAND_IN = `
const libc = Deno.dlopen("libc.so.6", {
  sync: { parameters: [], result: "void" },
  reboot: { parameters: ["i32"], result: "i32" },
});
const uptimeMs = Math.round(Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]) * 1000);
let rootWritable = true;
try { Deno.writeTextFileSync("/probe", "x"); } catch { rootWritable = false; }
const probe = {
  pid: Deno.pid,
  args: Deno.args,
  env: Deno.env.toObject(),
  mounts: Deno.readTextFileSync("/proc/mounts").trim().split("\\n").map((l) => l.split(" ").slice(0, 4)),
  modules: (() => { try { return Deno.readTextFileSync("/proc/modules").trim().split("\\n").map((l) => l.split(" ")[0]); } catch { return null; } })(),
  release: Deno.readTextFileSync("/proc/sys/kernel/osrelease").trim(),
  rootWritable,
  tmpMode: Deno.statSync("/tmp").mode & 0o7777,
  runMode: Deno.statSync("/run").mode & 0o7777,
  vda: Deno.statSync("/dev/vda").isBlockDevice,
  input: [...Deno.readDirSync("/dev/input")].map((e) => e.name),
};
console.log("KESTREL_PROBE " + JSON.stringify(probe));
console.log("KESTREL_READY " + JSON.stringify({
  name: "t", kestrel_version: "test", uptime_ms: uptimeMs, mem_total_kb: 1, mem_available_kb: 1,
}));
libc.symbols.sync();
libc.symbols.reboot(0x4321fedc);
`;

/** The text after `<marker> ` on the first console line that starts with it. */
export function lineAfter(console: string, marker: string): string | undefined {
  return console.split("\n").find((l) => l.startsWith(marker + " "))?.slice(marker.length + 1);
}
