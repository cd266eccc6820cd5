/**
 * Creating and deleting links over rtnetlink: any kind, bridges (with an idempotent
 * {@linkcode ensureBridge}) and veth pairs. Like every operation here, each call acts on the
 * network namespace the calling thread is in; names are validated before any syscall.
 *
 * @module
 */
import { parseMac } from "../mac.ts";
import { validateIfName } from "../names.ts";
import {
  AF_UNSPEC,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  NLM_F_CREATE,
  NLM_F_EXCL,
  RTM_DELLINK,
  RTM_NEWLINK,
  VETH_INFO_PEER,
} from "./_constants.ts";
import { MessageBuilder, writeIfInfoMsg } from "./_message.ts";
import { NetlinkError, netlinkError } from "./error.ts";
import { linkIndex, perform, requireIndex } from "./_op.ts";
import { getLink } from "./link.ts";

const EEXIST = 17;
const EINVAL = 22;

/** What {@linkcode createLink} creates. */
export interface LinkSpec {
  /** The new link's name (1-15 bytes). */
  name: string;
  /** The rtnetlink kind: `"bridge"`, `"veth"`, `"dummy"`, … */
  kind: string;
  /** MTU in bytes. */
  mtu?: number;
  /** Hardware address. */
  mac?: string;
  /** Bridge to attach the new link to. */
  master?: string;
  /** Bring it up at once. */
  up?: boolean;
  /** For `kind: "veth"`: the name of the peer end (required). */
  peer?: string;
}

/**
 * Creates a link. Throws a {@linkcode NetlinkError}: `EEXIST` when a link of that name
 * exists, `EOPNOTSUPP` when the kernel lacks the kind, `ENODEV` when `master` is missing.
 *
 * @example
 * ```ts ignore
 * import { createLink } from "./create_link.ts";
 * createLink({ name: "dummy0", kind: "dummy", mtu: 9000, up: true });
 * ```
 */
export function createLink(spec: LinkSpec): void {
  const { name, kind } = spec;
  validateIfName(name, "name");
  if (spec.master !== undefined) validateIfName(spec.master, "master");
  if (spec.peer !== undefined) validateIfName(spec.peer, "peer");
  const op = `create ${kind}`;
  const request = writeIfInfoMsg(new MessageBuilder(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL), {
    family: AF_UNSPEC,
    flags: spec.up ? IFF_UP : 0,
    change: spec.up ? IFF_UP : 0,
  }).string(IFLA_IFNAME, name);
  if (spec.mtu !== undefined) request.attrU32(IFLA_MTU, spec.mtu);
  if (spec.mac !== undefined) request.attr(IFLA_ADDRESS, parseMac(spec.mac, "mac"));
  if (spec.master !== undefined) {
    request.attrU32(IFLA_MASTER, requireIndex(spec.master, op, "bridge", "master"));
  }
  request.begin(IFLA_LINKINFO).string(IFLA_INFO_KIND, kind);
  if (kind === "veth") {
    if (spec.peer === undefined) {
      throw new NetlinkError(EINVAL, `EINVAL: creating veth ${name} needs a peer name`, {
        op,
        link: name,
      });
    }
    request.begin(IFLA_INFO_DATA).begin(VETH_INFO_PEER, false);
    writeIfInfoMsg(request, { family: AF_UNSPEC }).string(IFLA_IFNAME, spec.peer);
    request.end().end();
  }
  request.end();
  perform({
    op,
    subject: `link ${name}`,
    link: name,
    phrases: {
      EEXIST: spec.peer === undefined
        ? `link ${name} already exists`
        : `link ${name} or ${spec.peer} already exists`,
      EOPNOTSUPP: `the kernel does not support links of kind ${JSON.stringify(kind)} ` +
        "(is its module available?)",
    },
    details: { kind },
  }, (sock) => sock.request(request));
}

/**
 * Creates bridge `name` (down; bring it up with {@linkcode setLinkUp}). Throws `EEXIST` when
 * a link of that name exists.
 *
 * @example
 * ```ts ignore
 * import { createBridge, setLinkUp } from "./mod.ts";
 * createBridge("vbr0");
 * setLinkUp("vbr0");
 * ```
 */
export function createBridge(name: string): void {
  createLink({ name, kind: "bridge" });
}

/**
 * Creates bridge `name` unless it exists; returns whether it created it. Throws `EEXIST` when
 * a link of that name exists but is not a bridge.
 *
 * @example
 * ```ts ignore
 * import { ensureBridge } from "./create_link.ts";
 * if (ensureBridge("vbr0")) console.log("created vbr0");
 * ```
 */
export function ensureBridge(name: string): boolean {
  const existing = getLink(name);
  if (existing === undefined) {
    try {
      createBridge(name);
      return true;
    } catch (err) {
      // Lost a race with another creator: fall through and check what is there now.
      if (!(err instanceof NetlinkError && err.errno === "EEXIST")) throw err;
    }
  }
  const link = existing ?? getLink(name);
  if (link?.kind !== "bridge") {
    throw netlinkError(EEXIST, {
      op: "ensure bridge",
      subject: `link ${name}`,
      link: name,
      phrases: {
        EEXIST: `link ${name} exists but is ${
          link?.kind === undefined ? "not a bridge" : `a ${link.kind}, not a bridge`
        }; delete it or choose another bridge name`,
      },
    });
  }
  return false;
}

/**
 * Creates a veth pair `name` ↔ `peer` (both down).
 *
 * @example
 * ```ts ignore
 * import { createVeth } from "./create_link.ts";
 * createVeth("veth0", "veth1");
 * ```
 */
export function createVeth(name: string, peer: string): void {
  createLink({ name, kind: "veth", peer });
}

/**
 * Deletes link `name` (a veth deletes its peer too). Throws `ENODEV` when it does not exist,
 * unless `missingOk`; returns whether a link was deleted.
 *
 * @example
 * ```ts ignore
 * import { deleteLink } from "./create_link.ts";
 * deleteLink("vt-web", { missingOk: true });
 * ```
 */
export function deleteLink(name: string, options: { missingOk?: boolean } = {}): boolean {
  validateIfName(name, "name");
  const index = linkIndex(name);
  if (index === 0) {
    if (options.missingOk) return false;
    requireIndex(name, "delete link");
  }
  const request = writeIfInfoMsg(new MessageBuilder(RTM_DELLINK), { family: AF_UNSPEC, index });
  try {
    perform({
      op: "delete link",
      subject: `link ${name}`,
      link: name,
      phrases: {
        ENODEV: `link ${name} does not exist`,
        EOPNOTSUPP: `link ${name} cannot be deleted (a physical device or loopback?)`,
      },
    }, (sock) => sock.request(request));
  } catch (err) {
    if (options.missingOk && err instanceof NetlinkError && err.errno === "ENODEV") return false;
    throw err;
  }
  return true;
}
