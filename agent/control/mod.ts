/**
 * kestrel's end of the guest control channel (`schema/guest_control.ts`): the serial port the
 * boot config names (`control_device`) through which the daemon gives a clone its new identity.
 * `port.ts` finds the port, `tty.ts` opens it raw and exclusive, `channel.ts` serves it (one JSON line in, one out), `identity.ts`
 * applies an identity (entropy, clock, hostname, network, API, workload signal) with
 * `renumber.ts` (the NIC), `hosts.ts` (the workload root's files) and `api_binding.ts` (the
 * API's secret and address), and `service.ts` runs it all for kestrel's lifetime.
 *
 * ```ts ignore
 * import { applyIdentity, startControl } from "./mod.ts";
 * const channel = await startControl((msg) => applyIdentity(msg, deps), { log: console.log });
 * await channel?.stop();
 * ```
 *
 * @module
 */
export { findControlPort, type FindPortOptions } from "./port.ts";
export { openRawTty } from "./tty.ts";
export { LineSplitter, type Pushed } from "./lines.ts";
export {
  abortableSleep,
  answerLine,
  type ControlStream,
  EOF_RETRY_MS,
  identityFailed,
  type IdentityHandler,
  REPLY_ERROR_MAX,
  serveControl,
  type ServeControlOptions,
} from "./channel.ts";
export {
  applyIdentity,
  type CurrentIdentity,
  type IdentityApi,
  type IdentityDeps,
} from "./identity.ts";
export { changeMac, renumberNic } from "./renumber.ts";
export {
  type HostEntry,
  hostsLine,
  rewriteHostFiles,
  rewriteHosts,
  type RewrittenFile,
} from "./hosts.ts";
export { ApiBinding, REBIND_GRACE_MS } from "./api_binding.ts";
export {
  type ControlChannel,
  type OpenPort,
  startControl,
  type StartControlOptions,
} from "./service.ts";
