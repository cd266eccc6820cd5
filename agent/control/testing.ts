/**
 * Test fixtures of the control channel: identity messages and fake {@linkcode IdentityDeps}
 * that record every step as a line (`entropy …`, `clock …`, `mac … eth0` …).
 *
 * @module
 */
import type { IdentityMessage } from "../../schema/guest_control.ts";
import type { AgentInfo } from "../api/health.ts";
import type { ConfiguredNetwork, NetOps } from "../network.ts";
import type { IdentityDeps } from "./identity.ts";

/** The entropy bytes of {@linkcode identity}: 0, 1, …, 63. */
export const ENTROPY_BYTES: Uint8Array = Uint8Array.from({ length: 64 }, (_, i) => i);

/** {@linkcode ENTROPY_BYTES} in base64, as the message carries them. */
export const ENTROPY = btoa(String.fromCharCode(...ENTROPY_BYTES));

/** The parent's secret (the boot's). */
export const OLD_SECRET = "old-secret-".repeat(4);
/** The clone's secret. */
export const NEW_SECRET = "new-secret-".repeat(4);

/** The network kestrel configured at boot in these tests. */
export const BOOT_NETWORK: ConfiguredNetwork = {
  ip: "10.1.2.10",
  prefix: 24,
  cidr: "10.1.2.10/24",
  gateway: "10.1.2.1",
  mac: "52:54:00:12:34:56",
  nic: "eth0",
  nicMac: "52:54:00:12:34:56",
};

/** A valid identity of `generation` with `overrides`. */
export function identity(
  generation = 1,
  overrides: Partial<IdentityMessage> = {},
): IdentityMessage {
  return {
    kind: "identity",
    generation,
    name: "web-clone",
    hostname: "web-clone-1",
    network: { ip: "10.1.2.11", prefix: 24, gateway: "10.1.2.1", mac: "52:54:00:12:34:57" },
    agent: { port: 12751, secret: NEW_SECRET },
    entropy: ENTROPY,
    time_ms: 1_900_000_000_123,
    ...overrides,
  };
}

/** Options of {@linkcode fakeDeps}. */
export interface FakeDepsOptions {
  /** Throws `error` from the fake operation named `op` (`entropy`, `setMac`, `rebind`…). */
  fail?: { op: string; error: Error };
  /** The network kestrel configured (default {@linkcode BOOT_NETWORK}; `null`: none). */
  network?: ConfiguredNetwork | null;
  /** The manifest's restore_signal. */
  restoreSignal?: IdentityDeps["restoreSignal"];
  /** Whether a workload run is under way (signals reach it); default true. */
  running?: boolean;
  /** Leave out the workload (no `signal`). */
  noWorkload?: boolean;
  /** Leave out the host files (not an image root). */
  noHostFiles?: boolean;
  /** The API (default: a recording fake); `null`: none. */
  api?: IdentityDeps["api"] | null;
  /** IPv4 addresses on the NIC (default the boot's). */
  addresses?: string[];
}

/** Fake steps recording into `calls`, console lines into `logs`. */
export function fakeDeps(
  options: FakeDepsOptions = {},
): { deps: IdentityDeps; calls: string[]; logs: string[]; info: AgentInfo } {
  const calls: string[] = [];
  const logs: string[] = [];
  const record = (op: string, line: string) => {
    if (options.fail?.op === op) throw options.fail.error;
    calls.push(line);
  };
  const network = options.network === null ? undefined : options.network ?? BOOT_NETWORK;
  const info: AgentInfo = {
    name: "web",
    hostname: "web-1",
    status: "ok",
    ip: network?.ip ?? null,
    mac: network?.nicMac ?? null,
  };
  const net: NetOps = {
    links: () => Promise.resolve([]),
    up: (name) => record("up", `up ${name}`),
    addAddress: (link, cidr) => record("addAddress", `address ${cidr} ${link}`),
    addDefaultRoute: (gw, dev) => record("addDefaultRoute", `route ${gw} ${dev}`),
    down: (name) => record("down", `down ${name}`),
    setMac: (name, mac) => record("setMac", `mac ${mac} ${name}`),
    ipv4Addresses: () => options.addresses ?? [BOOT_NETWORK.cidr],
    deleteAddress: (link, cidr) => record("deleteAddress", `delete ${cidr} ${link}`),
    replaceDefaultRoute: (gw, dev) => record("replaceDefaultRoute", `default via ${gw} ${dev}`),
  };
  const api: IdentityDeps["api"] = options.api === null ? undefined : options.api ?? {
    setSecret: (s) => record("setSecret", `secret ${s}`),
    rebind: (a) => {
      record("rebind", `api ${a.hostname}:${a.port}`);
      return Promise.resolve();
    },
  };
  let tick = 0;
  const deps: IdentityDeps = {
    current: { generation: 0, name: "web", hostname: "web-1", network },
    info,
    entropy: (bytes) =>
      record("entropy", `entropy ${Array.from(bytes, (b) => b.toString(16)).join("")}`),
    clock: (ms) => record("clock", `clock ${ms}`),
    sethostname: (name) => record("sethostname", `hostname ${name}`),
    ...(options.noHostFiles ? {} : {
      hostFiles: (old, next) => {
        record("hostFiles", `files ${old.hostname} ${old.ip} -> ${next.hostname} ${next.ip}`);
        return Promise.resolve();
      },
    }),
    net,
    ...(api === undefined ? {} : { api }),
    restoreSignal: options.restoreSignal,
    ...(options.noWorkload ? {} : {
      signal: (sig) => {
        if (options.running === false) return false;
        record("signal", `signal ${sig}`);
        return true;
      },
    }),
    log: (line) => void logs.push(line),
    now: () => (tick += 7),
  };
  return { deps, calls, logs, info };
}
