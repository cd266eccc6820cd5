/**
 * An in-memory {@linkcode HostNetwork} for tests of the VM service, the reconciler and the API
 * without root, plus {@linkcode fakeGuestAgent}: kestrel's `/healthz` answered for the fake
 * driver's simulated guests (ready once their serial console shows the ready line).
 *
 * @module
 */
import { type AgentHealth, READY_MARKER, VolantError } from "../../schema/mod.ts";
import type { FakeRegistry } from "../../hypervisor/fake/mod.ts";
import type { AgentProbe, Forward, HostNetwork, ProbeOptions, TcpProbe } from "./host_network.ts";
import type { KestrelTarget } from "../kestrel/target.ts";
import { type EndpointPolicy, endpointPolicyScript } from "../../net/mod.ts";
import { policyAllows } from "./_policy_model.ts";

/** Answers a probe of kestrel at `ip`: its health, or `null` while nothing answers there. */
export type FakeAgent = (ip: string) => AgentHealth | null;

/** Failures a test can inject, each thrown by the next call of that method. */
export interface FakeNetworkFailures {
  prepare?: Error;
  createTap?: Error;
  deleteTap?: Error;
  setForwards?: Error;
  setPolicies?: Error;
}

/** Options of {@linkcode FakeHostNetwork}. */
export interface FakeHostNetworkOptions {
  /** Answers agent probes; default: nothing ever answers. */
  agent?: FakeAgent;
  /** Host ports with a listener, as `8080/tcp`. */
  listening?: Iterable<string>;
  /** Taps present from the start (e.g. orphans of an earlier daemon). */
  taps?: Iterable<string>;
  /**
   * The VMs' subnet and gateway, for {@linkcode FakeHostNetwork.allows} and for checking
   * policies as the real network does; default `192.168.127.0/24` and `.1` (policies are then
   * checked without the subnet).
   */
  subnet?: string;
  gateway?: string;
}

/**
 * The fake host network: a set of taps, the forwards and guest policies last set (with a model
 * of what the policies let through, {@linkcode FakeHostNetwork.allows}), host listeners, call
 * counts.
 *
 * @example
 * ```ts
 * import { FakeHostNetwork } from "./fake.ts";
 * const net = new FakeHostNetwork();
 * await net.createTap("vt-web");
 * console.assert(net.taps.has("vt-web"));
 * ```
 */
export class FakeHostNetwork implements HostNetwork {
  /** Always `fake`. */
  readonly description = "fake host network";
  /** Taps that exist. */
  readonly taps: Set<string>;
  /** The owner (uid, gid) each tap was created for, when one was given. */
  readonly tapOwners = new Map<string, { uid: number; gid: number }>();
  /** Host listeners, as `8080/tcp`. */
  readonly listening: Set<string>;
  /** The forwards last set. */
  forwards: Forward[] = [];
  /** The guests' network policies last set. */
  policies: EndpointPolicy[] = [];
  /** How often each method ran. */
  readonly calls: Record<keyof FakeNetworkFailures | "listTaps" | "probeAgent", number> = {
    prepare: 0,
    createTap: 0,
    deleteTap: 0,
    setForwards: 0,
    setPolicies: 0,
    listTaps: 0,
    probeAgent: 0,
  };
  /** One-shot failures; set a field to make the next call of that method throw it. */
  readonly fail: FakeNetworkFailures = {};
  #agent: FakeAgent;
  #network: { subnet: string; gateway: string };
  #checkSubnet: boolean;

  /** Creates an empty fake network. */
  constructor(options: FakeHostNetworkOptions = {}) {
    this.#agent = options.agent ?? (() => null);
    this.#network = {
      subnet: options.subnet ?? "192.168.127.0/24",
      gateway: options.gateway ?? "192.168.127.1",
    };
    this.#checkSubnet = options.subnet !== undefined;
    this.listening = new Set(options.listening ?? []);
    this.taps = new Set(options.taps ?? []);
  }

  #maybeFail(method: keyof FakeNetworkFailures): void {
    this.calls[method]++;
    const err = this.fail[method];
    if (err) {
      delete this.fail[method];
      throw err;
    }
  }

  prepare(): Promise<{ changes: string[] }> {
    try {
      this.#maybeFail("prepare");
      return Promise.resolve({ changes: [] });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  createTap(name: string, owner?: { uid: number; gid: number }): Promise<void> {
    try {
      this.#maybeFail("createTap");
      if (this.taps.has(name)) {
        throw new VolantError("network_error", `create tap ${name}: link ${name} already exists`);
      }
      this.taps.add(name);
      if (owner) this.tapOwners.set(name, { ...owner });
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  deleteTap(name: string): Promise<boolean> {
    try {
      this.#maybeFail("deleteTap");
      return Promise.resolve(this.taps.delete(name));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  listTaps(prefix: string): Promise<string[]> {
    this.calls.listTaps++;
    return Promise.resolve([...this.taps].filter((t) => t.startsWith(prefix)).sort());
  }

  setForwards(forwards: readonly Forward[]): Promise<void> {
    try {
      this.#maybeFail("setForwards");
      this.forwards = forwards.map((f) => ({ ...f }));
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  setPolicies(endpoints: readonly EndpointPolicy[]): Promise<void> {
    try {
      this.#maybeFail("setPolicies");
      // Refused exactly as the real network refuses (same validation, no kernel).
      endpointPolicyScript(
        endpoints,
        this.#checkSubnet
          ? { bridge: "vbr0", ...this.#network }
          : { bridge: "vbr0", subnet: "0.0.0.0/0", gateway: "255.255.255.255" },
      );
      this.policies = structuredClone([...endpoints]);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Whether the policies last set let `from` open a connection to `to`:`port` (the model of the
   * real rules; the host, at the gateway address, reaches every guest).
   *
   * @example
   * ```ts
   * import { FakeHostNetwork } from "./fake.ts";
   * const net = new FakeHostNetwork();
   * await net.setPolicies([{
   *   owner: "a", link: "vt-a", mac: "02:00:00:00:00:02", address: "192.168.127.2",
   *   egress: "deny", allowEgress: [], allowFrom: [], closedPorts: [], hostPorts: [],
   * }]);
   * console.assert(!net.allows("192.168.127.2", "198.51.100.1", 443));
   * ```
   */
  allows(from: string, to: string, port: number, protocol: "tcp" | "udp" = "tcp"): boolean {
    return policyAllows(this.policies, this.#network, { from, to, port, protocol });
  }

  portInUse(port: number, protocol: "tcp" | "udp"): Promise<boolean> {
    return Promise.resolve(this.listening.has(`${port}/${protocol}`));
  }

  probeTcp(ip: string, _port: number, options: ProbeOptions): Promise<TcpProbe> {
    if (options.signal?.aborted) return Promise.resolve({ ok: false, reason: "aborted" });
    return Promise.resolve(
      this.#agent(ip) ? { ok: true } : { ok: false, reason: "connection refused (fake)" },
    );
  }

  probeAgent(target: KestrelTarget, options: ProbeOptions): Promise<AgentProbe> {
    this.calls.probeAgent++;
    if (options.signal?.aborted) return Promise.resolve({ ok: false, reason: "aborted" });
    const health = this.#agent(target.ip);
    return Promise.resolve(
      health ? { ok: true, health } : { ok: false, reason: "connection refused (fake)" },
    );
  }
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/**
 * kestrel's `/healthz` for the fake driver's guests: the live fake VMM whose boot config holds
 * `ip` answers once its serial console shows a ready line after its last boot line (kestrel
 * serves `/healthz` before it prints the line, so this is never early).
 *
 * @example
 * ```ts
 * import { FakeRegistry } from "../../hypervisor/fake/mod.ts";
 * import { fakeGuestAgent, FakeHostNetwork } from "./fake.ts";
 * const registry = new FakeRegistry();
 * const net = new FakeHostNetwork({ agent: fakeGuestAgent(registry) });
 * console.assert(net.description === "fake host network");
 * registry.dispose();
 * ```
 */
export function fakeGuestAgent(registry: FakeRegistry): FakeAgent {
  return (ip) => {
    for (const p of registry.alive()) {
      if (p.state !== "running" || !p.nicsConnected) continue;
      // Who the guest is now: its boot config's, or its parent's and then its own (a clone).
      if (p.identity.ip !== ip) continue;
      if (p.restoredFrom === null) {
        const log = readText(p.spec.serialLog);
        const lastBoot = log.lastIndexOf("Linux version");
        if (log.indexOf(READY_MARKER, Math.max(0, lastBoot)) < 0) return null;
      } else if (!p.ready) {
        return null;
      }
      return {
        status: "ok",
        name: p.identity.name,
        hostname: p.identity.hostname,
        kestrel_version: "fake",
        uptime_ms: p.behavior.readyDelayMs,
        ip,
        mac: p.identity.mac,
        ...(p.behavior.workload === null ? {} : { workload: p.behavior.workload }),
      };
    }
    return null;
  };
}
