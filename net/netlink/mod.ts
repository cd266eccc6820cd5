/**
 * rtnetlink over Deno FFI: links (bridges, veths, taps' attachments), addresses and routes,
 * with errors that name the errno and the object (`EEXIST: link vbr0 already exists`).
 * Each call opens its own netlink socket in the calling thread's network namespace.
 *
 * ```ts ignore
 * import { addAddress, ensureBridge, setLinkUp } from "./mod.ts";
 * ensureBridge("vbr0");
 * setLinkUp("vbr0");
 * addAddress("vbr0", "192.168.127.1/24");
 * ```
 *
 * @module
 */
export { type FailureContext, NetlinkError, netlinkError } from "./error.ts";
export {
  createBridge,
  createLink,
  createVeth,
  deleteLink,
  ensureBridge,
  type LinkSpec,
} from "./create_link.ts";
export {
  getLink,
  type LinkChanges,
  type LinkInfo,
  listLinks,
  setLink,
  setLinkDown,
  setLinkUp,
  setMaster,
  setNoMaster,
  type TunInfo,
} from "./link.ts";
export {
  addAddress,
  type AddressInfo,
  deleteAddress,
  ensureAddress,
  listAddresses,
} from "./address.ts";
export { addRoute, deleteRoute, listRoutes, type RouteInfo, type RouteSpec } from "./route.ts";
