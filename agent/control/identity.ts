/**
 * Applying a new identity to a running guest (a clone resumed from another VM's memory): fresh
 * entropy, the host's clock, the hostname, the NIC's MAC, address and route, kestrel's secret and
 * API address, and the workload's `restore_signal`. Every effect goes through
 * {@linkcode IdentityDeps}, so tests check the order and arguments of each step.
 *
 * @module
 */
import {
  IDENTITY_ENTROPY_BYTES,
  type IdentityMessage,
  type IdentityReply,
} from "../../schema/guest_control.ts";
import type { RestoreSignal } from "../../schema/manifest.ts";
import type { AgentInfo } from "../api/health.ts";
import type { ApiAddress } from "../api/server.ts";
import { type ConfiguredNetwork, type NetOps, type NetworkPlan, planNetwork } from "../network.ts";
import { isValidHostname } from "../hostname.ts";
import type { HostEntry } from "./hosts.ts";
import { renumberNic } from "./renumber.ts";
import { identityFailed } from "./channel.ts";

/** The guest's identity as kestrel holds it; {@linkcode applyIdentity} updates it step by step. */
export interface CurrentIdentity {
  /** The last generation applied in full; 0 for the identity the guest booted with. */
  generation: number;
  /** The VM's name. */
  name: string;
  /** The kernel's hostname. */
  hostname: string;
  /** The network kestrel configured; undefined when it configured none. */
  network: ConfiguredNetwork | undefined;
}

/** What the `api` step changes. */
export interface IdentityApi {
  /** Replaces kestrel's secret (the old one is refused from then on). */
  setSecret(secret: string | undefined): void;
  /** Moves the listener to `address` (the new eth0 address and port). */
  rebind(address: Required<ApiAddress>): Promise<unknown>;
  /** Where it listens now (a rebind to the same address is skipped). */
  address?(): Required<ApiAddress> | undefined;
}

/** Whether `plan` is the network kestrel has now (a restore in place: nothing to move). */
function sameNetwork(now: ConfiguredNetwork, plan: NetworkPlan): boolean {
  return now.ip === plan.ip && now.prefix === plan.prefix && now.gateway === plan.gateway &&
    (plan.mac === undefined || plan.mac === (now.nicMac ?? now.mac)?.toLowerCase());
}

/** The steps of {@linkcode applyIdentity}, each replaceable in tests. */
export interface IdentityDeps {
  /** The identity now; updated in place as steps succeed. */
  current: CurrentIdentity;
  /** What `/healthz` reports (name, hostname, ip, mac); updated in place. */
  info: AgentInfo;
  /** Adds and credits entropy, then reseeds the CRNG (`creditEntropy`). */
  entropy(bytes: Uint8Array): void;
  /** Steps the wall clock to `ms` since the epoch (`setClock`). */
  clock(ms: number): void;
  /** Sets the kernel's hostname. */
  sethostname(name: string): void;
  /** Rewrites the workload root's `/etc/hostname` and `/etc/hosts`; only where kestrel wrote them. */
  hostFiles?: (old: HostEntry, next: HostEntry) => Promise<unknown>;
  /** The network operations (the NIC is `current.network.nic`). */
  net: NetOps;
  /** kestrel's API, when it serves one. */
  api?: IdentityApi;
  /** The manifest's `workload.restore_signal`, if any. */
  restoreSignal?: RestoreSignal | undefined;
  /** Sends a signal to the workload's process group; false when no workload runs. */
  signal?: (sig: RestoreSignal) => boolean;
  /** kestrel's console log. */
  log(message: string): void;
  /** A monotonic clock in ms (tests); default `performance.now`. */
  now?: () => number;
}

/** A failure in step `step`. */
class StepFailed extends Error {
  constructor(readonly step: string, readonly reason: string) {
    super(`${step}: ${reason}`);
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The 64 bytes of the message's base64 entropy; throws when there are not exactly that many. */
function decodeEntropy(text: string): Uint8Array {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (bytes.length !== IDENTITY_ENTROPY_BYTES) {
    throw new Error(`entropy: ${bytes.length} bytes, expected ${IDENTITY_ENTROPY_BYTES}`);
  }
  return bytes;
}

/** What must hold before anything is changed; throws naming the field. */
function validate(
  msg: IdentityMessage,
  current: CurrentIdentity,
): { bytes: Uint8Array; plan: NetworkPlan; network: ConfiguredNetwork } {
  const bytes = decodeEntropy(msg.entropy);
  if (!isValidHostname(msg.hostname)) {
    throw new Error(
      `hostname: ${JSON.stringify(msg.hostname)} is not a valid hostname ` +
        "(letters, digits, inner hyphens, dots)",
    );
  }
  const plan = planNetwork(msg.network);
  const network = current.network;
  if (network === undefined) {
    throw new Error("network: kestrel configured no network at boot, so there is no NIC to move");
  }
  return { bytes, plan, network };
}

/**
 * Applies `msg` to the guest, in order: **entropy** (credited, CRNG reseeded), **clock**,
 * **hostname** (kernel, then the workload root's files kestrel wrote), **network** (MAC,
 * addresses, default route on the NIC kestrel configured), **api** (new secret at once, then the
 * listener moved to the new address and port; `/healthz` reports the new name, hostname, ip and
 * mac), then **signal** (the workload's `restore_signal`, when set and a run is under way).
 *
 * Resolves to `identity_applied` with the steps done, or `identity_failed`: for a generation
 * not above the last applied one (`stale generation`, nothing done), for a message that cannot
 * apply (bad hostname, network or entropy: nothing done), or naming the step that failed and
 * why. Steps done before a failure stay done (they are listed in the error); a failed identity
 * does not count as applied, so it may be sent again. Logs one console line either way.
 * Never throws.
 *
 * @example
 * ```ts ignore
 * import { applyIdentity } from "./identity.ts";
 * const reply = await applyIdentity(message, deps);
 * // { kind: "identity_applied", generation: 1, steps: ["entropy", "clock", …], ms: 4 }
 * ```
 */
export async function applyIdentity(
  msg: IdentityMessage,
  deps: IdentityDeps,
): Promise<IdentityReply> {
  const now = deps.now ?? (() => performance.now());
  const started = now();
  const { current, info } = deps;
  const generation = msg.generation;
  const failed = (error: string) => {
    deps.log(`new identity (generation ${generation}) refused: ${error}`);
    return identityFailed(generation, error);
  };
  if (generation <= current.generation) {
    return failed(
      `stale generation ${generation}: generation ${current.generation} is applied already`,
    );
  }
  let checked: ReturnType<typeof validate>;
  try {
    checked = validate(msg, current);
  } catch (err) {
    return failed(`${message(err)}; nothing was changed`);
  }
  const { bytes, plan, network } = checked;
  const steps: string[] = [];
  const took: string[] = [];
  /** Runs step `name`; `run` resolving to `false` means there was nothing to do. */
  const step = async (name: string, run: () => unknown) => {
    let done: unknown;
    const begun = performance.now();
    try {
      done = await run();
    } catch (err) {
      throw new StepFailed(name, message(err));
    }
    if (done !== false) {
      steps.push(name);
      took.push(`${name} ${Math.round(performance.now() - begun)}`);
    }
  };
  try {
    await step("entropy", () => deps.entropy(bytes));
    await step("clock", () => deps.clock(msg.time_ms));
    await step("hostname", async () => {
      deps.sethostname(msg.hostname);
      info.hostname = msg.hostname;
      await deps.hostFiles?.(
        { hostname: current.hostname, ip: network.ip },
        { hostname: msg.hostname, ip: plan.ip },
      );
      current.hostname = msg.hostname;
    });
    await step("network", () => {
      if (sameNetwork(network, plan)) return false; // a restore in place keeps its address
      current.network = renumberNic(deps.net, network, plan);
      info.ip = current.network.ip;
      info.mac = current.network.nicMac ?? null;
    });
    current.name = msg.name;
    info.name = msg.name;
    const api = deps.api;
    if (api !== undefined) {
      await step("api", async () => {
        api.setSecret(msg.agent.secret);
        const at = api.address?.();
        if (at?.hostname === plan.ip && at.port === msg.agent.port) return; // same listener
        await api.rebind({ hostname: plan.ip, port: msg.agent.port });
      });
    }
    const sig = deps.restoreSignal;
    const send = deps.signal;
    if (sig !== undefined && send !== undefined) await step("signal", () => send(sig));
  } catch (err) {
    const [name, reason] = err instanceof StepFailed
      ? [err.step, err.reason]
      : ["internal", message(err)];
    const done = steps.length === 0 ? "nothing" : steps.join(", ");
    return failed(`${name}: ${reason} (done before it, and kept: ${done})`);
  }
  current.generation = generation;
  const ms = Math.round(now() - started);
  if (msg.agent.secret === undefined) {
    deps.log("warning: the new identity has no agent secret: the API refuses every request");
  }
  deps.log(
    `new identity (generation ${generation}): ${msg.name} ${plan.cidr} ` +
      `mac ${
        current.network?.nicMac ?? "unknown"
      }, hostname ${msg.hostname}, applied in ${ms} ms ` +
      `(${took.join(", ")})`,
  );
  return { kind: "identity_applied", generation, steps, ms };
}
