/**
 * A tiny real guest for driver tests: Debian's cloud kernel plus a busybox initramfs (written
 * with the deterministic cpio writer, no root needed) whose `/init` speaks the contract suite's
 * guest protocol on the serial console:
 *
 * - prints `VOLANT_TEST_DISK <dev> <first line of the disk>` for every virtio disk and
 *   `VOLANT_TEST_NIC <ifname> <mac>` for every virtio NIC, then opens the power button's input
 *   device and prints `KESTREL_READY {json}` (a valid ready report);
 * - waits for the ACPI power button, prints `VOLANT_TEST_POWER pressed` and powers off, unless
 *   the kernel command line has `volant_test_power=ignore` (plain `key=value` words reach init's
 *   environment), in which case it ignores the button forever.
 *
 * @module
 */
import { type CpioEntry, writeCpio } from "../../kernels/cpio.ts";
import { fetchDebianKernel, readKernelInfo } from "../../kernels/debian_kernel.ts";
import { TEST_DISK_MARKER, TEST_IGNORE_POWER } from "./protocol.ts";
import type { KernelFormat } from "../driver.ts";

const [POWER_KEY, POWER_IGNORE] = TEST_IGNORE_POWER.split("=");

/** Kernel modules the guest loads, in dependency order (paths under `kernel/`). */
const MODULES = [
  "drivers/virtio/virtio_ring.ko",
  "drivers/virtio/virtio.ko",
  "drivers/virtio/virtio_mmio.ko",
  "drivers/block/virtio_blk.ko",
  "net/core/failover.ko",
  "drivers/net/net_failover.ko",
  "drivers/net/virtio_net.ko",
  "drivers/acpi/button.ko",
  "drivers/input/evdev.ko",
];

const INIT = `#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in ${MODULES.map((m) => m.split("/").pop()!.replace(/\.ko$/, "")).join(" ")}; do
  insmod /lib/modules/$m.ko || echo "VOLANT_TEST_ERROR insmod $m failed"
done
for d in /sys/block/vd*; do
  [ -e "$d" ] || continue
  n=\${d##*/}
  i=0
  while [ ! -b /dev/$n ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  echo "${TEST_DISK_MARKER} $n $(head -c 256 /dev/$n | head -n 1)"
done
for n in /sys/class/net/*; do
  [ "\${n##*/}" = lo ] && continue
  echo "VOLANT_TEST_NIC \${n##*/} $(cat $n/address)"
done
# Open the power button's input device before announcing readiness: evdev only queues events
# for readers that have it open, so a button pressed right after the ready line is not lost.
ev=
for e in /sys/class/input/event*; do
  [ "$(cat $e/device/name 2>/dev/null)" = "Power Button" ] && ev=/dev/input/\${e##*/}
done
[ -n "$ev" ] && exec 3<"$ev"
read up idle < /proc/uptime
total=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
avail=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
ms=$(awk "BEGIN {print int($up * 1000)}")
echo "KESTREL_READY {\\"name\\":\\"\${volant_test_name:-test-guest}\\",\\"kestrel_version\\":\\"busybox-test\\",\\"uptime_ms\\":$ms,\\"mem_total_kb\\":$total,\\"mem_available_kb\\":$avail}"
# volant_test_ticks=1: count on the console every 0.2 s (a guest whose memory and vCPU state
# show in its output: a restored guest carries on counting from where it was saved).
if [ "$volant_test_ticks" = 1 ]; then
  (i=0; while :; do echo "VOLANT_TEST_TICK $i $(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' ')"; i=$((i + 1)); sleep 0.2; done) &
fi
if [ "$${POWER_KEY}" = ${POWER_IGNORE} ]; then
  echo "VOLANT_TEST_POWER ignoring the power button"
  while :; do sleep 3600; done
fi
if [ -z "$ev" ]; then
  echo "VOLANT_TEST_ERROR no power button input device"
  while :; do sleep 3600; done
fi
dd of=/dev/null bs=24 count=1 <&3 2>/dev/null
echo "VOLANT_TEST_POWER pressed"
poweroff -f
`;

/** A built test guest. */
export interface BusyboxGuest {
  /** The kernel image. */
  kernel: { path: string; format: KernelFormat };
  /** The initramfs written by {@linkcode buildBusyboxGuest}. */
  initramfs: string;
  /** Base kernel command line (console, quiet, panic handling, TSC frequency under TCG). */
  cmdline: string;
}

/**
 * The Debian kernel the tests boot: `$VOLANT_TEST_GUEST_DIR` or `<repo>/.cache/guest`.
 *
 * @example
 * ```ts
 * import { testKernelDir } from "./busybox_guest.ts";
 * console.assert(testKernelDir().startsWith("/"));
 * ```
 */
export function testKernelDir(): string {
  return Deno.env.get("VOLANT_TEST_GUEST_DIR") ??
    new URL("../../.cache/guest", import.meta.url).pathname;
}

/**
 * Finds (or fetches with apt) the Debian kernel; resolves to why it cannot, or its location.
 *
 * @example
 * ```ts ignore
 * const found = await findTestKernel();
 * if ("reason" in found) console.log(`skipping: ${found.reason}`);
 * ```
 */
export async function findTestKernel(
  dir = testKernelDir(),
): Promise<{ bzImage: string; modulesDir: string } | { reason: string }> {
  const info = await readKernelInfo(dir) ?? await fetchDebianKernel(dir).catch((err) => err);
  if (info instanceof Error) return { reason: `no guest kernel in ${dir}: ${info.message}` };
  return { bzImage: info.bzImage, modulesDir: info.modulesDir };
}

/**
 * The kernel words a TCG microvm guest needs (`tsc_early_khz` from /proc/cpuinfo).
 *
 * @example
 * ```ts
 * import { tcgCmdlineWords } from "./busybox_guest.ts";
 * console.assert(tcgCmdlineWords("cpu MHz\t: 2095.995\n") === "tsc_early_khz=2095995 tsc=reliable");
 * ```
 */
export function tcgCmdlineWords(cpuinfo: string): string {
  const m = cpuinfo.match(/^cpu MHz\s*:\s*([0-9.]+)/m);
  const khz = m ? Math.round(Number(m[1]) * 1000) : NaN;
  return Number.isFinite(khz) && khz > 0 ? `tsc_early_khz=${khz} tsc=reliable` : "tsc=reliable";
}

/** Options of {@linkcode buildBusyboxGuest}. */
export interface BuildBusyboxGuestOptions {
  /** Where the Debian kernel is; default {@linkcode testKernelDir}. */
  kernelDir?: string;
  /** The busybox binary (static); default `/bin/busybox`. */
  busybox?: string;
  /** Whether the VMM will use KVM (no TSC words then); default false. */
  kvm?: boolean;
}

/**
 * Writes the test initramfs into `dir` and returns the kernel, initramfs and base cmdline.
 *
 * @example
 * ```ts ignore
 * import { buildBusyboxGuest } from "./busybox_guest.ts";
 * const guest = await buildBusyboxGuest(await Deno.makeTempDir());
 * console.log(guest.kernel.path, guest.initramfs);
 * ```
 */
export async function buildBusyboxGuest(
  dir: string,
  options: BuildBusyboxGuestOptions = {},
): Promise<BusyboxGuest> {
  const kernel = await findTestKernel(options.kernelDir);
  if ("reason" in kernel) throw new Error(kernel.reason);
  const entries: CpioEntry[] = [
    { type: "file", path: "init", data: new TextEncoder().encode(INIT), mode: 0o755 },
    {
      type: "file",
      path: "bin/busybox",
      data: await Deno.readFile(options.busybox ?? "/bin/busybox"),
      mode: 0o755,
    },
    { type: "symlink", path: "bin/sh", target: "busybox" },
    { type: "chardev", path: "dev/console", major: 5, minor: 1, mode: 0o600 },
    { type: "dir", path: "proc" },
    { type: "dir", path: "sys" },
    { type: "dir", path: "tmp" },
  ];
  for (const module of MODULES) {
    entries.push({
      type: "file",
      path: `lib/modules/${module.split("/").pop()}`,
      data: await Deno.readFile(`${kernel.modulesDir}/kernel/${module}`),
    });
  }
  const initramfs = `${dir}/initramfs.cpio`;
  await Deno.writeFile(initramfs, writeCpio(entries));
  const words = ["console=ttyS0", "quiet", "reboot=t", "panic=-1"];
  if (!options.kvm) words.push(tcgCmdlineWords(await Deno.readTextFile("/proc/cpuinfo")));
  return {
    kernel: { path: kernel.bzImage, format: "bzImage" },
    initramfs,
    cmdline: words.join(" "),
  };
}
