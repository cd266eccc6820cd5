/**
 * Launching a VMM in its jail without a setuid helper: the launch prefix is
 * `unshare --mount --propagation private` (a mount namespace of its own) running a short POSIX
 * shell script as root that mounts a tmpfs on the jail directory, bind-mounts the VMM's files
 * into it at their own paths, makes its device nodes, remounts the root read-only, and then
 * `exec`s `setpriv --no-new-privs chroot --userspec=<uid>:<gid> --groups= <root> <vmm…>`:
 * every step execs the next, so the pid the daemon records is the VMM's. The mounts live only
 * in that namespace and vanish with the VMM; the directory stays empty on the host.
 *
 * @module
 */
import type { JailOp } from "./plan.ts";
import type { VmmJail } from "./types.ts";

/**
 * The script. Arguments: root, uid, gid, then steps until `--`, then the VMM's argv:
 * `link TARGET PATH`, `bind MODE DIR(0|1) SOURCE PATH`, `dev PATH MODE MAJOR MINOR OWNED(0|1)`.
 */
export const JAIL_SCRIPT = `set -eu
umask 022
root=$1 uid=$2 gid=$3
shift 3
mount -t tmpfs -o mode=0755,size=1m,nr_inodes=4096,nosuid volant-jail "$root"
while [ "$1" != -- ]; do
  case $1 in
  link)
    mkdir -p "$root\${3%/*}"
    ln -s "$2" "$root$3"
    shift 3 ;;
  bind)
    dst=$root$5
    if [ "$3" = 1 ]; then mkdir -p "$dst"; else mkdir -p "\${dst%/*}"; [ -e "$dst" ] || : >"$dst"; fi
    mount --bind "$4" "$dst"
    case $2 in
    ro) mount -o remount,bind,ro,nosuid,nodev,noexec "$dst" ;;
    exec) mount -o remount,bind,ro,nosuid,nodev "$dst" ;;
    *) mount -o remount,bind,nosuid,nodev,noexec "$dst" ;;
    esac
    shift 5 ;;
  dev)
    mkdir -p "$root\${2%/*}"
    mknod -m "$3" "$root$2" c "$4" "$5"
    if [ "$6" = 1 ]; then chown "$uid:$gid" "$root$2"; fi
    shift 6 ;;
  *)
    echo "volant-jail: unknown step $1" >&2
    exit 125 ;;
  esac
done
shift
mount -o remount,ro,nosuid volant-jail "$root"
exec setpriv --no-new-privs -- chroot --userspec="$uid:$gid" --groups= -- "$root" "$@"
`;

/** How to start a VMM in a jail. */
export interface JailLaunch {
  /** Command words to run the VMM through (after any other prefix). */
  prefix: string[];
  /** What `/proc/<pid>/exe` shows once the VMM runs: its binary under the jail root. */
  exe: string;
}

function words(op: JailOp): string[] {
  switch (op.op) {
    case "link":
      return ["link", op.target, op.path];
    case "bind":
      return ["bind", op.mode, op.dir ? "1" : "0", op.source, op.path];
    case "dev":
      return [
        "dev",
        op.path,
        op.mode.toString(8).padStart(4, "0"),
        String(op.major),
        String(op.minor),
        op.owned ? "1" : "0",
      ];
  }
}

/**
 * The launch prefix for a VMM whose binary is `binary` (symlink-free, as bound in the jail)
 * in `jail`, building its root with `ops` (see `planJail`).
 *
 * @example
 * ```ts
 * import { jailLaunch } from "./launch.ts";
 * const launch = jailLaunch({
 *   uid: 900001, gid: 900001, root: "/run/volant/jails/web", devices: [],
 *   cgroup: {
 *     version: "v2",
 *     dirs: { memory: "/c/web", cpu: "/c/web", pids: "/c/web" },
 *     limits: { memoryMaxBytes: 1, cpuQuotaUs: 1, cpuPeriodUs: 1, pidsMax: 1 },
 *   },
 * }, [], "/usr/bin/qemu-system-x86_64");
 * console.assert(launch.prefix[0] === "unshare");
 * console.assert(launch.exe === "/run/volant/jails/web/usr/bin/qemu-system-x86_64");
 * ```
 */
export function jailLaunch(jail: VmmJail, ops: readonly JailOp[], binary: string): JailLaunch {
  const root = jail.root.replace(/\/+$/, "");
  return {
    prefix: [
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "--",
      "/bin/sh",
      "-c",
      JAIL_SCRIPT,
      "volant-jail",
      root,
      String(jail.uid),
      String(jail.gid),
      ...ops.flatMap(words),
      "--",
    ],
    exe: `${root}${binary}`,
  };
}
