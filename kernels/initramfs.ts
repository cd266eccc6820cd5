/**
 * The stage-0 initramfs: static busybox, `/dev/console`, the kernel modules the guest needs
 * and an `/init` script that mounts the shared read-only runtime disk (`/dev/vda`, erofs) and
 * hands PID 1 to kestrel with `switch_root`. Everything that can be decided at build time is:
 * module order, applet links and paths are baked into the archive; at boot the script only
 * mounts, loads and switches.
 *
 * @module
 */
import {
  BOOT_CONFIG_PATH,
  EARLY_WORKLOAD_FDS,
  EARLY_WORKLOAD_FILES,
  KESTREL_BOOT_CONFIG,
} from "../schema/boot_config.ts";
import { type CpioEntry, writeCpio } from "./cpio.ts";
import type { ModuleToLoad } from "./modules.ts";

/** Version of the `/init` script contract; recorded in `guest.json`. */
export const INIT_SCRIPT_VERSION = 6;

/** The line stage 0 prints (followed by what failed) before powering off. */
export const STAGE0_ERROR_MARKER = "VOLANT_STAGE0_ERROR";

/**
 * Where stage 0 keeps its own files (busybox, applets, modules): a reserved prefix a plugin's
 * archive, merged over stage 0, must not touch (so a plugin's own `/bin/sh` cannot break it).
 */
export const STAGE0_DIR = ".volant";

/** The busybox applets `/init` calls, linked in `/.volant/bin` at build time (the last two: shell mode). */
export const STAGE0_APPLETS = [
  "sh",
  "mount",
  "insmod",
  "usleep",
  "mkdir",
  "chroot",
  "ip",
  "hostname",
  "rm",
  "poweroff",
  "setsid",
  "cttyhack",
  "mkfifo",
  "mv",
  "env",
  "nsenter",
] as const;

/**
 * The per-VM settings file stage 0 sources (shell assignments; the daemon writes it into a
 * small archive appended to the shared initramfs): `VOLANT_INIT` (`kestrel`, `custom` or
 * `none`), `VOLANT_EXEC` (the program and arguments for `custom`/`none`, shell-quoted),
 * `VOLANT_HOSTNAME`, `VOLANT_IP`, `VOLANT_PREFIX`, `VOLANT_GATEWAY`.
 */
export const BOOT_ENV_PATH = "/volant/boot.env";

/** Where kestrel sees the initramfs root (bind-mounted by stage 0 before it chroots). */
export const STAGE0_ROOT_BIND = "/run/volant/root";

/** The line stage 0 prints before it execs a `custom`/`none` init (the program follows). */
export const STAGE0_EXEC_MARKER = "VOLANT_STAGE0_EXEC";

/** The command stage 0 `exec`s into (chrooted into the runtime disk): kestrel under Deno. */
export const KESTREL_COMMAND = [
  "/usr/bin/deno",
  "run",
  "-A",
  "--no-config",
  "--no-lock",
  "--quiet",
  "/opt/volant/kestrel.js",
  "kestrel",
] as const;

/** Options of {@linkcode initScript}. */
export interface InitScriptOptions {
  /** Modules in load order (dependencies first); loaded from `/.volant/modules/<name>.ko`. */
  modules: readonly ModuleToLoad[];
  /** How long to wait for `/dev/vda` (by the guest's uptime clock), in seconds; default 5. */
  diskTimeoutSeconds?: number;
}

function quote(word: string): string {
  return /^[A-Za-z0-9_./=:-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The `/init` script (busybox `sh`). Steps, in order: mount proc, sysfs and devtmpfs; insmod
 * the modules (a required one failing is fatal, an optional one is silent) and delete the
 * module files; source {@linkcode BOOT_ENV_PATH} when present. Then, by `VOLANT_INIT`:
 *
 * - `kestrel` (default): wait up to 5 s for `/dev/vda` and mount it `-t erofs -o ro` on
 *   `/newroot`; tmpfs on `/newroot/tmp` (1777) and `/newroot/run` (0755); move kestrel's boot
 *   config there ({@linkcode KESTREL_BOOT_CONFIG}); bind the initramfs root (with any plugin
 *   payload merged into it) on `/newroot/run/volant/root`. With `VOLANT_EARLY_EXEC` set (and the
 *   `detach` helper present): configure the network, give the workload's root its own proc,
 *   sysfs and `/dev`, and start the workload there exactly as kestrel would (`detach` — own
 *   session, default signals — then `env -i`, `nsenter -F -r -w [-S -G]`), its output into two
 *   FIFOs held open on fds 3 and 4, its pid in {@linkcode EARLY_WORKLOAD_FILES}; kestrel adopts
 *   it. Then move `/proc`, `/sys`, `/dev` into `/newroot`; move `/newroot` over `/` and
 *   `exec chroot` into kestrel. (Not `switch_root`: it would delete the payload kestrel's
 *   workload runs from.)
 * - `custom` / `none`: set the hostname, configure `eth0` with busybox `ip` from the settings,
 *   print {@linkcode STAGE0_EXEC_MARKER} and `exec` the program in `VOLANT_EXEC` as PID 1.
 *
 * Any failure prints `VOLANT_STAGE0_ERROR <what>` and runs `poweroff -f`.
 * `volant.stage0=shell` on the kernel command line opens a shell after the modules are loaded
 * (and instead of powering off on failure); leaving it continues the boot.
 *
 * @example
 * ```ts
 * import { initScript } from "./initramfs.ts";
 * const text = initScript({ modules: [{ name: "erofs", path: "kernel/fs/erofs/erofs.ko", required: true }] });
 * console.assert(text.includes("insmod /.volant/modules/erofs.ko"));
 * ```
 */
export function initScript(options: InitScriptOptions): string {
  const timeout = options.diskTimeoutSeconds ?? 5;
  const insmods = options.modules.map((m) =>
    m.required
      ? `insmod /${STAGE0_DIR}/modules/${m.name}.ko || fail "insmod ${m.name}"`
      : `insmod /${STAGE0_DIR}/modules/${m.name}.ko 2>/dev/null`
  );
  const exec = ["exec chroot .", ...KESTREL_COMMAND.map(quote)].join(" ");
  return `#!/${STAGE0_DIR}/bin/sh
# Volant stage 0, init script v${INIT_SCRIPT_VERSION} (generated by kernels/initramfs.ts).
# Loads the drivers, then hands PID 1 to kestrel (from the shared runtime disk) or, with
# VOLANT_INIT=custom|none in ${BOOT_ENV_PATH}, to the plugin's own program. Any failure prints
# one ${STAGE0_ERROR_MARKER} line and powers off. volant.stage0=shell on the kernel command
# line opens a shell after the modules are loaded (exit it to continue booting).
export PATH=/${STAGE0_DIR}/bin
mode=
fail() {
	echo "${STAGE0_ERROR_MARKER} $*"
	if [ "$mode" = shell ]; then setsid cttyhack sh; fi
	poweroff -f
	exit 1
}
mount -t proc proc /proc || fail "mount proc on /proc"
read -r VOLANT_T_KERNEL _ </proc/uptime
mount -t sysfs sysfs /sys || fail "mount sysfs on /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs on /dev"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts || fail "mount devpts on /dev/pts"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm || fail "mount tmpfs on /dev/shm"
read -r cmdline </proc/cmdline
case " $cmdline " in *" volant.stage0=shell "*) mode=shell ;; esac
${insmods.join("\n")}
rm -rf /${STAGE0_DIR}/modules
VOLANT_INIT=kestrel
if [ -f ${BOOT_ENV_PATH} ]; then . ${BOOT_ENV_PATH} || fail "${BOOT_ENV_PATH} is not a valid settings file"; fi
if [ "$mode" = shell ]; then
	busybox --install -s /${STAGE0_DIR}/bin
	echo "volant stage 0: shell before starting $VOLANT_INIT (exit to continue booting)"
	setsid cttyhack sh
fi
# This runs as PID 1 inside the guest VM (never on the host): configure the guest's own eth0.
network() {
	[ -z "$VOLANT_HOSTNAME" ] || hostname "$VOLANT_HOSTNAME"
	ip link set lo up
	if [ -n "$VOLANT_IP" ]; then
		until [ -e /sys/class/net/eth0 ]; do
			read -r up _ </proc/uptime
			now=$((\${up%.*} * 100 + 1\${up#*.} - 100))
			: "\${nicdeadline:=$((now + ${Math.round(timeout * 100)}))}"
			[ "$now" -lt "$nicdeadline" ] || fail "no eth0 after ${timeout} s"
			usleep 10000
		done
		ip link set eth0 up || fail "ip link set eth0 up"
		ip addr add "$VOLANT_IP/$VOLANT_PREFIX" dev eth0 || fail "ip addr add $VOLANT_IP/$VOLANT_PREFIX dev eth0"
		if [ -n "$VOLANT_GATEWAY" ]; then ip route add default via "$VOLANT_GATEWAY" || fail "ip route add default via $VOLANT_GATEWAY"; fi
	fi
	read -r VOLANT_T_NETWORK _ </proc/uptime
}
if [ "$VOLANT_INIT" != kestrel ]; then
	[ -n "$VOLANT_EXEC" ] || fail "VOLANT_INIT=$VOLANT_INIT needs VOLANT_EXEC"
	network
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/
	eval "set -- $VOLANT_EXEC"
	echo "${STAGE0_EXEC_MARKER} $*"
	exec "$@"
	fail "exec $1"
fi
until [ -b /dev/vda ]; do
	read -r up _ </proc/uptime
	now=$((\${up%.*} * 100 + 1\${up#*.} - 100))
	: "\${deadline:=$((now + ${Math.round(timeout * 100)}))}"
	[ "$now" -lt "$deadline" ] || fail "no /dev/vda (the runtime disk) after ${timeout} s"
	usleep 10000
done
mount -t erofs -o ro /dev/vda /newroot || fail "mount -t erofs -o ro /dev/vda /newroot (is the runtime disk an erofs image?)"
[ -x /newroot/usr/bin/deno ] || fail "the runtime disk has no /usr/bin/deno"
[ -f /newroot/opt/volant/kestrel.js ] || fail "the runtime disk has no /opt/volant/kestrel.js"
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || fail "mount tmpfs on /newroot/tmp"
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fail "mount tmpfs on /newroot/run"
mkdir -p /newroot/run/volant /newroot${STAGE0_ROOT_BIND}
# kestrel's secret leaves the workload's root before anything of the workload runs.
if [ -f ${BOOT_CONFIG_PATH} ]; then mv ${BOOT_CONFIG_PATH} /newroot${KESTREL_BOOT_CONFIG} || fail "mv ${BOOT_CONFIG_PATH} /newroot${KESTREL_BOOT_CONFIG}"; fi
rm -f ${BOOT_ENV_PATH}
mount --bind / /newroot${STAGE0_ROOT_BIND} || fail "mount --bind / /newroot${STAGE0_ROOT_BIND}"
if [ -n "$VOLANT_EARLY_EXEC" ] && [ -x /${STAGE0_DIR}/bin/detach ]; then
	network
	r=/newroot${STAGE0_ROOT_BIND}
	mount -t proc -o nosuid,nodev,noexec proc "$r/proc" || fail "mount proc on the workload's /proc"
	mount -t sysfs -o nosuid,nodev,noexec sysfs "$r/sys" || fail "mount sysfs on the workload's /sys"
	mount --rbind /dev "$r/dev" || fail "mount --rbind /dev on the workload's /dev"
	mkfifo -m 0600 /newroot${EARLY_WORKLOAD_FILES.stdout} /newroot${EARLY_WORKLOAD_FILES.stderr} || fail "mkfifo /newroot/run/volant/workload.{out,err}"
	exec ${EARLY_WORKLOAD_FDS.stdout}<>/newroot${EARLY_WORKLOAD_FILES.stdout} ${EARLY_WORKLOAD_FDS.stderr}<>/newroot${EARLY_WORKLOAD_FILES.stderr}
	ids=
	[ -z "$VOLANT_EARLY_UID" ] || ids="-S $VOLANT_EARLY_UID -G $VOLANT_EARLY_GID"
	eval "set -- $VOLANT_EARLY_EXEC"
	eval "set -- /${STAGE0_DIR}/bin/detach /${STAGE0_DIR}/bin/env -i $VOLANT_EARLY_ENV /${STAGE0_DIR}/bin/nsenter -F \\"-r\\$r\\" \\"-w\\$r\\$VOLANT_EARLY_DIR\\" $ids -- \\"\\$@\\""
	"$@" </dev/null >&${EARLY_WORKLOAD_FDS.stdout} 2>&${EARLY_WORKLOAD_FDS.stderr} ${EARLY_WORKLOAD_FDS.stdout}>&- ${EARLY_WORKLOAD_FDS.stderr}>&- &
	echo $! >/newroot${EARLY_WORKLOAD_FILES.pid}
	read -r VOLANT_T_WORKLOAD _ </proc/uptime
fi
read -r VOLANT_T_STAGE0 _ </proc/uptime
mount --move /proc /newroot/proc || fail "mount --move /proc /newroot/proc"
mount --move /sys /newroot/sys || fail "mount --move /sys /newroot/sys"
mount --move /dev /newroot/dev || fail "mount --move /dev /newroot/dev"
cd /newroot || fail "cd /newroot"
mount --move . / || fail "mount --move /newroot /"
export DENO_DIR=/tmp/deno HOME=/tmp NO_COLOR=1 PATH=/usr/bin:/bin VOLANT_T_KERNEL VOLANT_T_STAGE0 VOLANT_T_NETWORK VOLANT_T_WORKLOAD
${exec}
`;
}

/** A module file to put in the initramfs. */
export interface InitramfsModule extends ModuleToLoad {
  /** The `.ko` contents. */
  data: Uint8Array;
}

/** Options of {@linkcode initramfsEntries}. */
export interface InitramfsOptions {
  /** Contents of a static busybox. */
  busybox: Uint8Array;
  /** Modules in load order with their contents. */
  modules: readonly InitramfsModule[];
  /** How long to wait for `/dev/vda`, in seconds; default 5. */
  diskTimeoutSeconds?: number;
  /**
   * The static `detach` helper (`kernels/detach/`); without it stage 0 never starts a workload
   * itself and kestrel starts every workload.
   */
  detach?: Uint8Array;
}

/**
 * The members of the stage-0 archive: `/init`, `/.volant/bin/busybox` and its applet links,
 * `/dev/console` (c 5 1), `/.volant/modules/<name>.ko`, and the mount points.
 *
 * @example
 * ```ts
 * import { initramfsEntries } from "./initramfs.ts";
 * const entries = initramfsEntries({ busybox: new Uint8Array([1]), modules: [] });
 * console.assert(entries.some((e) => e.path === "dev/console"));
 * ```
 */
export function initramfsEntries(options: InitramfsOptions): CpioEntry[] {
  const init = new TextEncoder().encode(
    initScript({ modules: options.modules, diskTimeoutSeconds: options.diskTimeoutSeconds }),
  );
  return [
    { type: "file", path: "init", data: init, mode: 0o755 },
    { type: "dir", path: STAGE0_DIR, mode: 0o700 },
    { type: "dir", path: `${STAGE0_DIR}/bin`, mode: 0o755 },
    { type: "dir", path: `${STAGE0_DIR}/modules`, mode: 0o755 },
    { type: "file", path: `${STAGE0_DIR}/bin/busybox`, data: options.busybox, mode: 0o755 },
    ...(options.detach === undefined ? [] : [
      { type: "file", path: `${STAGE0_DIR}/bin/detach`, data: options.detach, mode: 0o755 },
    ] satisfies CpioEntry[]),
    ...STAGE0_APPLETS.map((a): CpioEntry => ({
      type: "symlink",
      path: `${STAGE0_DIR}/bin/${a}`,
      target: "busybox",
    })),
    { type: "chardev", path: "dev/console", major: 5, minor: 1, mode: 0o600 },
    ...["proc", "sys", "newroot"].map((d): CpioEntry => ({ type: "dir", path: d })),
    ...options.modules.map((m): CpioEntry => ({
      type: "file",
      path: `${STAGE0_DIR}/modules/${m.name}.ko`,
      data: m.data,
      mode: 0o644,
    })),
  ];
}

/**
 * The stage-0 initramfs as deterministic cpio newc bytes (same inputs, same bytes).
 *
 * @example
 * ```ts
 * import { buildInitramfs } from "./initramfs.ts";
 * const a = buildInitramfs({ busybox: new Uint8Array([1]), modules: [] });
 * const b = buildInitramfs({ busybox: new Uint8Array([1]), modules: [] });
 * console.assert(a.length === b.length && a.every((x, i) => x === b[i]));
 * ```
 */
export function buildInitramfs(options: InitramfsOptions): Uint8Array {
  return writeCpio(initramfsEntries(options));
}
