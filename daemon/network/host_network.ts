/**
 * The seam between volantd and the host's network: everything the daemon does to links,
 * nftables and sockets goes through a {@linkcode HostNetwork}. The real one
 * ({@linkcode netHostNetwork} in real.ts) is a thin layer over `net/`; the fake one (fake.ts)
 * keeps state in memory so the VM service can be tested without root.
 *
 * @module
 */
import type { AgentHealth } from "../../schema/mod.ts";
import type { EndpointPolicy } from "../../net/mod.ts";
import type { KestrelTarget } from "../kestrel/target.ts";

export type { EndpointPolicy };

/** One forwarded host port (the shape `net/nft.ts` takes). */
export interface Forward {
  /** The port on the host's addresses. */
  hostPort: number;
  /** The guest's address. */
  guestIp: string;
  /** The port in the guest. */
  guestPort: number;
  /** `tcp` or `udp`. */
  protocol: "tcp" | "udp";
  /** The VM it belongs to (kept as the rules' comment). */
  owner: string;
}

/** What one probe of kestrel's `/healthz` found. */
export type AgentProbe =
  | { ok: true; health: AgentHealth }
  | { ok: false; reason: string };

/** Options of {@linkcode HostNetwork.probeAgent}. */
export interface ProbeOptions {
  /** Give up on this one request after this many milliseconds. */
  timeoutMs: number;
  /** Aborts the request. */
  signal?: AbortSignal;
}

/** The host-side network operations volantd needs. */
export interface HostNetwork {
  /** Where it acts, for logs (e.g. `netlink + nft in the current namespace`). */
  readonly description: string;
  /**
   * Makes the bridge exist with the gateway address and be up, IPv4 forwarding on, and NAT as
   * configured. Idempotent; returns one line per change.
   */
  prepare(): Promise<{ changes: string[] }>;
  /**
   * Creates persistent tap `name`, attaches it to the bridge and sets it up; `owner` (a jailed
   * VMM's uid and gid) may then open it without privileges.
   */
  createTap(name: string, owner?: { uid: number; gid: number }): Promise<void>;
  /** Deletes tap `name`; `false` when there was none. */
  deleteTap(name: string): Promise<boolean>;
  /** Names of the taps whose name starts with `prefix`. */
  listTaps(prefix: string): Promise<string[]>;
  /** Makes the host's port forwards exactly `forwards` (atomically). */
  setForwards(forwards: readonly Forward[]): Promise<void>;
  /**
   * Makes the guests' network policies exactly `endpoints` (one per tap that runs), atomically:
   * on failure nothing changed. Taps with the project's prefix that have none send nothing.
   */
  setPolicies(endpoints: readonly EndpointPolicy[]): Promise<void>;
  /** Whether a host socket listens on `port` (TCP) or is bound to it (UDP). */
  portInUse(port: number, protocol: "tcp" | "udp"): Promise<boolean>;
  /**
   * One `GET /healthz` to the guest's kestrel at `target` (address, port, secret), through the
   * daemon's kestrel client.
   */
  probeAgent(target: KestrelTarget, options: ProbeOptions): Promise<AgentProbe>;
  /** Whether a TCP connection to `ip:port` succeeds (workloads that run without kestrel). */
  probeTcp(ip: string, port: number, options: ProbeOptions): Promise<TcpProbe>;
}

/** What one TCP connection attempt found. */
export type TcpProbe = { ok: true } | { ok: false; reason: string };
