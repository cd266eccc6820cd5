/**
 * Links over rtnetlink: inspect, list, bring up or down, attach to a bridge (creating and
 * deleting is in `create_link.ts`). Every call opens its own netlink socket, so it acts on the
 * network namespace the calling thread is in (see `withNetns`). Names are validated before any
 * syscall.
 *
 * @module
 */
import { formatMac, parseMac } from "../mac.ts";
import { validateIfName } from "../names.ts";
import {
  AF_UNSPEC,
  IFF_LOWER_UP,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_INFO_SLAVE_KIND,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_OPERSTATE,
  IFLA_TUN_GROUP,
  IFLA_TUN_MULTI_QUEUE,
  IFLA_TUN_OWNER,
  IFLA_TUN_PERSIST,
  IFLA_TUN_PI,
  IFLA_TUN_TYPE,
  IFLA_TUN_VNET_HDR,
  RTM_GETLINK,
  RTM_NEWLINK,
  RTM_SETLINK,
} from "./_constants.ts";
import {
  attrString,
  attrU32,
  attrU8,
  MessageBuilder,
  parseAttrs,
  readIfInfoMsg,
  writeIfInfoMsg,
} from "./_message.ts";
import { netlinkError } from "./error.ts";
import { perform, requireIndex } from "./_op.ts";
import { KernelError, withNetlink } from "./_socket.ts";

const ENODEV = 19;

/** TUN/TAP details of a `tun` link (from the kernel's `IFLA_INFO_DATA`). */
export interface TunInfo {
  /** `"tap"` (Ethernet frames) or `"tun"` (IP packets). */
  type: "tap" | "tun";
  /** Whether frames carry a `virtio_net_hdr` (`IFF_VNET_HDR`). */
  vnetHdr: boolean;
  /** Whether the device outlives the file descriptor that created it. */
  persist: boolean;
  /** Whether it was created with `IFF_MULTI_QUEUE`. */
  multiQueue: boolean;
  /** Whether frames carry the 4-byte packet-information header. */
  pi: boolean;
  /** The uid allowed to open it, if restricted. */
  owner: number | undefined;
  /** The gid allowed to open it, if restricted. */
  group: number | undefined;
}

/** One network link as the kernel reports it. */
export interface LinkInfo {
  /** Interface index. */
  index: number;
  /** Interface name. */
  name: string;
  /** Raw `IFF_*` flags. */
  flags: number;
  /** Administratively up (`IFF_UP`). */
  up: boolean;
  /** Carrier present (`IFF_LOWER_UP`). */
  lowerUp: boolean;
  /** RFC 2863 operational state: `"up"`, `"down"`, `"lowerlayerdown"`, `"unknown"`, … */
  operstate: string;
  /** MTU in bytes. */
  mtu: number;
  /** Hardware address (`aa:bb:…`), when the link has one. */
  mac: string | undefined;
  /**
   * Link kind from `IFLA_INFO_KIND`: `"bridge"`, `"tun"`, `"veth"`, …; `undefined` for
   * physical and loopback links.
   */
  kind: string | undefined;
  /** Index of the master (bridge) this link is attached to. */
  masterIndex: number | undefined;
  /** Kind of the port when attached (`"bridge"` for a bridge port). */
  slaveKind: string | undefined;
  /** TUN/TAP details when `kind` is `"tun"`. */
  tun: TunInfo | undefined;
}

const OPERSTATES = [
  "unknown",
  "notpresent",
  "down",
  "lowerlayerdown",
  "testing",
  "dormant",
  "up",
];

function decodeTun(data: Uint8Array | undefined): TunInfo | undefined {
  if (data === undefined) return undefined;
  const a = parseAttrs(data);
  const id = (v: number | undefined) => v === undefined || v === 0xffffffff ? undefined : v;
  return {
    type: attrU8(a, IFLA_TUN_TYPE) === 2 ? "tap" : "tun",
    vnetHdr: attrU8(a, IFLA_TUN_VNET_HDR) === 1,
    persist: attrU8(a, IFLA_TUN_PERSIST) === 1,
    multiQueue: attrU8(a, IFLA_TUN_MULTI_QUEUE) === 1,
    pi: attrU8(a, IFLA_TUN_PI) === 1,
    owner: id(attrU32(a, IFLA_TUN_OWNER)),
    group: id(attrU32(a, IFLA_TUN_GROUP)),
  };
}

function decodeLink(payload: Uint8Array): LinkInfo {
  const m = readIfInfoMsg(payload);
  const info = m.attrs.get(IFLA_LINKINFO);
  const infoAttrs = info === undefined ? undefined : parseAttrs(info);
  const kind = infoAttrs === undefined ? undefined : attrString(infoAttrs, IFLA_INFO_KIND);
  const hw = m.attrs.get(IFLA_ADDRESS);
  const master = attrU32(m.attrs, IFLA_MASTER);
  return {
    index: m.index,
    name: attrString(m.attrs, IFLA_IFNAME) ?? "",
    flags: m.flags,
    up: (m.flags & IFF_UP) !== 0,
    lowerUp: (m.flags & IFF_LOWER_UP) !== 0,
    operstate: OPERSTATES[attrU8(m.attrs, IFLA_OPERSTATE) ?? 0] ?? "unknown",
    mtu: attrU32(m.attrs, IFLA_MTU) ?? 0,
    mac: hw === undefined || hw.length === 0 ? undefined : formatMac(hw),
    kind,
    masterIndex: master === undefined || master === 0 ? undefined : master,
    slaveKind: infoAttrs === undefined ? undefined : attrString(infoAttrs, IFLA_INFO_SLAVE_KIND),
    tun: kind === "tun" ? decodeTun(infoAttrs?.get(IFLA_INFO_DATA)) : undefined,
  };
}

/**
 * The link called `name`, or `undefined` when there is none.
 *
 * @example
 * ```ts ignore
 * import { getLink } from "./link.ts";
 * const lo = getLink("lo");
 * console.log(lo?.index, lo?.up, lo?.mtu);
 * ```
 */
export function getLink(name: string): LinkInfo | undefined {
  validateIfName(name, "name");
  const request = writeIfInfoMsg(new MessageBuilder(RTM_GETLINK), { family: AF_UNSPEC })
    .string(IFLA_IFNAME, name);
  try {
    const replies = withNetlink((sock) => sock.get(request));
    const reply = replies.find((r) => r.type === RTM_NEWLINK);
    return reply === undefined ? undefined : decodeLink(reply.payload);
  } catch (err) {
    if (err instanceof KernelError) {
      if (err.errno === ENODEV) return undefined;
      throw netlinkError(err.errno, { op: "get", subject: `link ${name}`, link: name }, err.extack);
    }
    throw err;
  }
}

/**
 * Every link in the current network namespace (one `RTM_GETLINK` dump).
 *
 * @example
 * ```ts ignore
 * import { listLinks } from "./link.ts";
 * const taps = listLinks().filter((l) => l.kind === "tun" && l.name.startsWith("vt-"));
 * ```
 */
export function listLinks(): LinkInfo[] {
  const request = writeIfInfoMsg(new MessageBuilder(RTM_GETLINK), { family: AF_UNSPEC });
  const replies = perform({ op: "list", subject: "links" }, (sock) => sock.dump(request));
  return replies.filter((r) => r.type === RTM_NEWLINK).map((r) => decodeLink(r.payload));
}

/** Changes {@linkcode setLink} can make. */
export interface LinkChanges {
  /** Bring the link up (`true`) or down (`false`). */
  up?: boolean;
  /** New MTU. */
  mtu?: number;
  /** New hardware address. */
  mac?: string;
  /** Attach to this bridge, or detach from any with `null`. */
  master?: string | null;
}

/**
 * Changes link `name` in one request. Throws `ENODEV` (naming the link or the bridge) when
 * either is missing.
 *
 * @example
 * ```ts ignore
 * import { setLink } from "./link.ts";
 * setLink("vt-web", { master: "vbr0", up: true });
 * ```
 */
export function setLink(name: string, changes: LinkChanges): void {
  const op = changes.master === undefined ? "set" : changes.master === null ? "detach" : "attach";
  validateIfName(name, "name");
  if (typeof changes.master === "string") validateIfName(changes.master, "master");
  const index = requireIndex(name, `${op} link`);
  const request = writeIfInfoMsg(new MessageBuilder(RTM_SETLINK), {
    family: AF_UNSPEC,
    index,
    flags: changes.up ? IFF_UP : 0,
    change: changes.up === undefined ? 0 : IFF_UP,
  });
  if (changes.mtu !== undefined) request.attrU32(IFLA_MTU, changes.mtu);
  if (changes.mac !== undefined) request.attr(IFLA_ADDRESS, parseMac(changes.mac, "mac"));
  if (changes.master !== undefined) {
    const master = changes.master === null
      ? 0
      : requireIndex(changes.master, `${op} link`, "bridge", "master");
    request.attrU32(IFLA_MASTER, master);
  }
  const to = typeof changes.master === "string" ? ` to ${changes.master}` : "";
  perform({
    op: `${op} link`,
    subject: `link ${name}${to}`,
    link: name,
    phrases: {
      ENODEV: `link ${name} does not exist`,
      EOPNOTSUPP: typeof changes.master === "string"
        ? `link ${changes.master} cannot be a master of ${name} (is it a bridge?)`
        : undefined,
      ELOOP: typeof changes.master === "string"
        ? `attaching ${name} to ${changes.master} would make a loop`
        : undefined,
    },
    details: { ...changes },
  }, (sock) => sock.request(request));
}

/**
 * Brings link `name` up (`ip link set <name> up`).
 *
 * @example
 * ```ts ignore
 * import { setLinkUp } from "./link.ts";
 * setLinkUp("lo");
 * ```
 */
export function setLinkUp(name: string): void {
  setLink(name, { up: true });
}

/**
 * Brings link `name` down.
 *
 * @example
 * ```ts ignore
 * import { setLinkDown } from "./link.ts";
 * setLinkDown("vt-web");
 * ```
 */
export function setLinkDown(name: string): void {
  setLink(name, { up: false });
}

/**
 * Attaches `link` to bridge `bridge` (`ip link set <link> master <bridge>`).
 *
 * @example
 * ```ts ignore
 * import { setMaster } from "./link.ts";
 * setMaster("vt-web", "vbr0");
 * ```
 */
export function setMaster(link: string, bridge: string): void {
  setLink(link, { master: bridge });
}

/**
 * Detaches `link` from its bridge (`ip link set <link> nomaster`).
 *
 * @example
 * ```ts ignore
 * import { setNoMaster } from "./link.ts";
 * setNoMaster("vt-web");
 * ```
 */
export function setNoMaster(link: string): void {
  setLink(link, { master: null });
}
