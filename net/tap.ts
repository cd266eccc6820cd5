/**
 * Persistent TAP devices through `/dev/net/tun` (the ioctl interface QEMU itself uses): created
 * with `IFF_TAP | IFF_NO_PI` and, by default, `IFF_VNET_HDR`, made persistent, then the file
 * descriptor is closed so that the hypervisor can open the tap by name later
 * (`-netdev tap,ifname=<name>,script=no,downscript=no`).
 *
 * @module
 */
import { closeQuietly, cString, errno, libc, O_CLOEXEC, O_RDWR } from "./libc.ts";
import { validateIfName } from "./names.ts";
import { type FailureContext, netlinkError } from "./netlink/error.ts";
import { deleteLink } from "./netlink/create_link.ts";
import { getLink } from "./netlink/link.ts";

const EEXIST = 17;
const TUN_DEVICE = "/dev/net/tun";

/** TUN/TAP ioctls (`linux/if_tun.h`) and `ifr_flags`. */
const TUNSETIFF = 0x400454ca;
const TUNSETPERSIST = 0x400454cb;
const TUNSETOWNER = 0x400454cc;
const TUNSETGROUP = 0x400454ce;
const IFF_TAP = 0x0002;
const IFF_MULTI_QUEUE = 0x0100;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
/** `struct ifreq` size on x86_64 and the name field size. */
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;

/** Options of {@linkcode createTap}. */
export interface TapOptions {
  /** uid allowed to open the tap besides root (`TUNSETOWNER`). */
  owner?: number;
  /** gid allowed to open the tap (`TUNSETGROUP`). */
  group?: number;
  /** Frames carry a `virtio_net_hdr` (what QEMU's virtio-net wants). Default `true`. */
  vnetHdr?: boolean;
  /**
   * Create a multi-queue tap. Default `false`. A multi-queue tap can only be opened with
   * `IFF_MULTI_QUEUE` too, i.e. by QEMU with `queues=N` (N > 1).
   */
  multiQueue?: boolean;
}

function fail(errnoValue: number, name: string, step: string): never {
  const context: FailureContext = {
    op: "create tap",
    subject: `tap ${name} (${step})`,
    link: name,
    phrases: {
      EPERM: `not permitted to create tap ${name}: needs CAP_NET_ADMIN (run as root)`,
      ENOENT: `${TUN_DEVICE} does not exist (load the tun module: modprobe tun)`,
      ENODEV: `${TUN_DEVICE} has no driver behind it (load the tun module: modprobe tun)`,
      EBUSY: `tap ${name} is in use by another process`,
      EINVAL: `link ${name} exists with incompatible flags, or is not a tap`,
    },
    details: { step },
  };
  throw netlinkError(errnoValue, context);
}

/**
 * Creates persistent tap `name`. The name is validated before any syscall. Throws a
 * `NetlinkError`: `EEXIST` when a link called `name` exists, `EPERM` without
 * CAP_NET_ADMIN, `ENOENT` without `/dev/net/tun`.
 *
 * @example
 * ```ts ignore
 * import { createTap } from "./tap.ts";
 * import { setMaster, setLinkUp } from "./netlink/mod.ts";
 * createTap("vt-web");
 * setMaster("vt-web", "vbr0");
 * setLinkUp("vt-web");
 * ```
 */
export function createTap(name: string, options: TapOptions = {}): void {
  validateIfName(name, "name");
  const { owner, group, vnetHdr = true, multiQueue = false } = options;
  if (libc().if_nametoindex(cString(name, "link")) !== 0) {
    throw netlinkError(EEXIST, {
      op: "create tap",
      subject: `tap ${name}`,
      link: name,
      phrases: { EEXIST: `link ${name} already exists` },
    });
  }
  const fd = libc().open(cString(TUN_DEVICE, "path"), O_RDWR | O_CLOEXEC);
  if (fd < 0) fail(errno(), name, `open ${TUN_DEVICE}`);
  try {
    const ifr = new Uint8Array(IFREQ_SIZE);
    ifr.set(new TextEncoder().encode(name).subarray(0, IFNAMSIZ - 1));
    const flags = IFF_TAP | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0) |
      (multiQueue ? IFF_MULTI_QUEUE : 0);
    new DataView(ifr.buffer).setUint16(IFNAMSIZ, flags, true);
    if (libc().ioctl_ptr(fd, BigInt(TUNSETIFF), ifr) !== 0) fail(errno(), name, "TUNSETIFF");
    // Until TUNSETPERSIST succeeds the tap dies with the fd, so a failure below leaves nothing.
    if (owner !== undefined && libc().ioctl_int(fd, BigInt(TUNSETOWNER), BigInt(owner)) !== 0) {
      fail(errno(), name, "TUNSETOWNER");
    }
    if (group !== undefined && libc().ioctl_int(fd, BigInt(TUNSETGROUP), BigInt(group)) !== 0) {
      fail(errno(), name, "TUNSETGROUP");
    }
    if (libc().ioctl_int(fd, BigInt(TUNSETPERSIST), 1n) !== 0) {
      fail(errno(), name, "TUNSETPERSIST");
    }
  } finally {
    closeQuietly(fd);
  }
}

/**
 * Creates tap `name` unless a tap of that name exists; returns whether it created it. Throws
 * `EEXIST` when a link of that name exists but is not a tap.
 *
 * @example
 * ```ts ignore
 * import { ensureTap } from "./tap.ts";
 * ensureTap("vt-web");
 * ```
 */
export function ensureTap(name: string, options: TapOptions = {}): boolean {
  const link = getLink(name);
  if (link === undefined) {
    createTap(name, options);
    return true;
  }
  if (link.tun?.type !== "tap") {
    throw netlinkError(EEXIST, {
      op: "ensure tap",
      subject: `link ${name}`,
      link: name,
      phrases: {
        EEXIST: `link ${name} exists but is ${link.kind ?? "not a tap"}${
          link.kind === "tun" ? " in tun mode" : ""
        }, not a tap`,
      },
    });
  }
  return false;
}

/**
 * Deletes tap `name` (a netlink `RTM_DELLINK`). Throws `ENODEV` when it does not exist,
 * unless `missingOk`; returns whether it deleted one.
 *
 * @example
 * ```ts ignore
 * import { deleteTap } from "./tap.ts";
 * deleteTap("vt-web", { missingOk: true });
 * ```
 */
export function deleteTap(name: string, options: { missingOk?: boolean } = {}): boolean {
  return deleteLink(name, options);
}
