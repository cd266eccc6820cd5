/**
 * The configuration of Volant's own guest kernel: the fragment kept in the repository
 * (`kernels/config/volant-microvm.config`, applied on top of `make tinyconfig`), the options
 * Volant requires with the reason for each, and the check of a resolved `.config` against both.
 * A resolved config that lacks a required option, or that dropped a value the fragment asks for
 * (Kconfig silently drops what it cannot satisfy), is refused naming the option.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";

/** The config fragment, as a file path. */
export const VOLANT_CONFIG_FRAGMENT: string =
  new URL("./config/volant-microvm.config", import.meta.url).pathname;

/** An option Volant's guests cannot do without. */
export interface RequiredOption {
  /** Kconfig symbol with its prefix, e.g. `CONFIG_VIRTIO_BLK`. */
  name: string;
  /** The value it must have: `y` (built in, never `m`), `n` (off), or a literal. */
  value: string;
  /** What in Volant needs it. */
  why: string;
}

const y = (name: string, why: string): RequiredOption => ({ name, value: "y", why });

/** The options Volant requires of its guest kernel, and why. */
export const REQUIRED_OPTIONS: readonly RequiredOption[] = [
  y("CONFIG_64BIT", "x86-64 guest: Deno and the runtime disk's glibc are 64-bit"),
  y("CONFIG_SMP", "VMs may have more than one vCPU"),
  {
    name: "CONFIG_MODULES",
    value: "n",
    why: "everything is built in: stage 0 loads no modules and the initramfs carries none",
  },
  y(
    "CONFIG_PVH",
    "vmlinux-generic is booted through its PVH entry note (QEMU microvm, Cloud Hypervisor, Firecracker)",
  ),
  y("CONFIG_PRINTK", "kernel messages (boot, panics) on the serial console the daemon records"),
  y("CONFIG_TTY", "the serial console and /dev/console"),
  y("CONFIG_SERIAL_8250", "console=ttyS0: every hypervisor exposes a 16550 UART"),
  y("CONFIG_SERIAL_8250_CONSOLE", "console=ttyS0 (kernel and stage-0 output in the serial log)"),
  y(
    "CONFIG_SERIAL_8250_PNP",
    "hardware-reduced ACPI has no legacy PIC: without the UART's IRQ from ACPI, userspace output never reaches the serial console",
  ),
  y("CONFIG_EARLY_PRINTK", "earlyprintk=serial, to debug a boot that dies before the console"),
  y("CONFIG_UNIX98_PTYS", "devpts (stage 0 and kestrel mount it; the console shell uses a pty)"),
  y("CONFIG_BLK_DEV_INITRD", "stage 0 is an initramfs (initramfs.cpio + the per-VM archive)"),
  y("CONFIG_BINFMT_ELF", "busybox and Deno are ELF executables"),
  y("CONFIG_BINFMT_SCRIPT", "stage 0's /init is a shell script"),
  y("CONFIG_DEVTMPFS", "stage 0 and kestrel mount devtmpfs on /dev"),
  y("CONFIG_PROC_FS", "/proc (stage 0 reads /proc/cmdline and /proc/uptime; kestrel its mounts)"),
  y("CONFIG_PROC_SYSCTL", "kestrel sets the hostname and ctrl-alt-del through /proc/sys"),
  y("CONFIG_SYSFS", "/sys (kestrel finds NICs and the power button there)"),
  y("CONFIG_TMPFS", "/tmp, /run and /dev/shm are tmpfs"),
  y("CONFIG_SHMEM", "tmpfs and memfd (V8)"),
  y("CONFIG_MULTIUSER", "workload.user: setuid/setgid to a non-root user"),
  y("CONFIG_FUTEX", "threads: Deno (Rust std, tokio) and glibc"),
  y("CONFIG_EPOLL", "Deno's event loop (tokio) waits with epoll"),
  y("CONFIG_EVENTFD", "Deno's event loop (tokio) wakes with eventfd"),
  y("CONFIG_POSIX_TIMERS", "clock and timer syscalls glibc and Deno use"),
  y("CONFIG_ADVISE_SYSCALLS", "madvise: V8 returns heap pages with it"),
  y("CONFIG_FILE_LOCKING", "flock/fcntl locks (Deno, SQLite in workloads)"),
  y("CONFIG_INOTIFY_USER", "Deno.watchFs"),
  y("CONFIG_BLOCK", "the runtime disk and image disks are block devices"),
  y("CONFIG_VIRTIO_BLK", "the runtime disk (/dev/vda) and image disks are virtio-blk"),
  y("CONFIG_VIRTIO_MMIO", "QEMU microvm and Firecracker attach virtio devices over MMIO"),
  y(
    "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES",
    "Firecracker describes its MMIO devices with virtio_mmio.device= on the command line",
  ),
  y("CONFIG_PCI", "Cloud Hypervisor attaches virtio devices over PCI"),
  y("CONFIG_VIRTIO_PCI", "Cloud Hypervisor attaches virtio devices over PCI"),
  y("CONFIG_EROFS_FS", "the runtime disk and image root filesystems are erofs"),
  y("CONFIG_EROFS_FS_XATTR", "image layers keep their xattrs (mkfs.erofs stores them)"),
  y("CONFIG_OVERLAY_FS", "an image root is an overlay of its erofs and a writable ext4 disk"),
  y("CONFIG_EXT4_FS", "the writable upper disk of an image root is ext4"),
  y("CONFIG_NET", "sockets and rtnetlink (kestrel configures eth0 over rtnetlink)"),
  y("CONFIG_INET", "kestrel's API listens on TCP; workloads serve over IPv4"),
  y("CONFIG_UNIX", "unix sockets (glibc, Deno, workloads)"),
  y("CONFIG_NETDEVICES", "network interfaces"),
  y("CONFIG_VIRTIO_NET", "the VM's NIC (eth0) is virtio-net"),
  y(
    "CONFIG_ACPI",
    "QEMU microvm (acpi=on) lists its virtio-mmio devices in ACPI; power button and power-off",
  ),
  y(
    "CONFIG_ACPI_BUTTON",
    "stop presses the ACPI power button (QEMU system_powerdown, Cloud Hypervisor power-button)",
  ),
  y("CONFIG_INPUT_EVDEV", "kestrel reads the power button's KEY_POWER from /dev/input/event*"),
  y("CONFIG_SERIO_I8042", "Firecracker's SendCtrlAltDel goes through the i8042 controller"),
  y("CONFIG_KEYBOARD_ATKBD", "Firecracker's SendCtrlAltDel arrives as a keyboard event"),
  y("CONFIG_VT", "turns Ctrl-Alt-Del from the keyboard into a signal to PID 1 (kestrel)"),
  y(
    "CONFIG_RANDOM_TRUST_CPU",
    "Deno's getrandom() blocks until the CRNG is ready: seeded from RDRAND at boot, not ~1.5 s later",
  ),
  y("CONFIG_HW_RANDOM_VIRTIO", "entropy from the host (virtio-rng) when the VMM offers it"),
];

/**
 * Parses a Kconfig file (a fragment or a resolved `.config`): `CONFIG_X=v` lines, and
 * `# CONFIG_X is not set` as `n`. String values keep their quotes.
 *
 * @example
 * ```ts
 * import { parseKconfig } from "./volant_config.ts";
 * const c = parseKconfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x"\n');
 * console.assert(c.get("CONFIG_A") === "y" && c.get("CONFIG_B") === "n" && c.get("CONFIG_C") === '"x"');
 * ```
 */
export function parseKconfig(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const unset = line.match(/^# (CONFIG_[A-Za-z0-9_]+) is not set$/);
    if (unset) {
      values.set(unset[1]!, "n");
      continue;
    }
    const set = line.match(/^(CONFIG_[A-Za-z0-9_]+)=(.*)$/);
    if (set) values.set(set[1]!, set[2]!);
  }
  return values;
}

/** One way a resolved config falls short. */
export interface ConfigProblem {
  /** The option. */
  name: string;
  /** The value wanted. */
  want: string;
  /** The value found (`n` when absent). */
  got: string;
  /** Why it is wanted: the required option's reason, or "asked for by the fragment". */
  why: string;
}

/**
 * Every required option and every value of `fragment` that `resolved` (a `.config` after
 * Kconfig ran) does not have. An option absent from `resolved` counts as `n`.
 *
 * @example
 * ```ts
 * import { configProblems } from "./volant_config.ts";
 * const problems = configProblems("CONFIG_A=y\n", "CONFIG_A=y\nCONFIG_B=y\n", [
 *   { name: "CONFIG_A", value: "y", why: "a" },
 * ]);
 * console.assert(problems.length === 1 && problems[0]!.name === "CONFIG_B");
 * ```
 */
export function configProblems(
  resolved: string,
  fragment: string,
  required: readonly RequiredOption[] = REQUIRED_OPTIONS,
): ConfigProblem[] {
  const have = parseKconfig(resolved);
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const option of required) {
    const got = have.get(option.name) ?? "n";
    seen.add(option.name);
    if (got !== option.value) {
      problems.push({ name: option.name, want: option.value, got, why: option.why });
    }
  }
  for (const [name, want] of parseKconfig(fragment)) {
    const got = have.get(name) ?? "n";
    if (!seen.has(name) && got !== want) {
      problems.push({ name, want, got, why: "asked for by the fragment" });
    }
  }
  return problems;
}

/**
 * Throws `kernel_not_found` naming every problem {@linkcode configProblems} finds.
 *
 * @example
 * ```ts
 * import { assertVolantConfig } from "./volant_config.ts";
 * try {
 *   assertVolantConfig("CONFIG_64BIT=y\n", "");
 * } catch (err) {
 *   console.assert(String(err).includes("CONFIG_VIRTIO_BLK"));
 * }
 * ```
 */
export function assertVolantConfig(
  resolved: string,
  fragment: string,
  required: readonly RequiredOption[] = REQUIRED_OPTIONS,
): void {
  const problems = configProblems(resolved, fragment, required);
  if (problems.length === 0) return;
  const list = problems.map((p) => `${p.name}=${p.got} (want ${p.want}: ${p.why})`);
  throw new VolantError(
    "kernel_not_found",
    `The resolved kernel config lacks ${problems.length} option(s) Volant needs: ${
      list.join("; ")
    }. Kconfig drops an option whose dependencies are off: add them to ${VOLANT_CONFIG_FRAGMENT}`,
    { options: problems.map((p) => p.name) },
  );
}
