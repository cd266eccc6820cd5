/**
 * The VM service's network policies: each VM that runs (it has a tap and a lease) is one
 * endpoint of `net/nft_policy.ts`, with its MAC and address, its policy from the store, its
 * peers' current addresses, and kestrel's port closed to peers. The whole set is rewritten
 * (one atomic nft transaction) whenever a tap, a lease or a policy changes, serialised and read
 * inside the lock, so the last rewrite always reflects the latest state; rules disappear with
 * the VM's tap.
 *
 * A policy change of a running VM is all-or-nothing: the new rules are computed from the store
 * as it would be after the change (a transaction rolled back), applied, and only then is the
 * change committed; when nft refuses, nothing changed on either side.
 *
 * @module
 */
import {
  DEPLOYMENT_PEER,
  LEGACY_AGENT_PORT,
  type NetworkPolicy,
  VolantError,
} from "../../schema/mod.ts";
import type { EndpointPolicy } from "../../net/mod.ts";
import type { VmRow } from "../store/mod.ts";
import type { VmRuntime } from "./_runtime.ts";
import { inPool } from "./_network.ts";

/** The mutex key that serialises rewrites of the policies (never a VM name). */
const POLICY_KEY = "#policy";

/** The endpoint of a row that runs, or `undefined` when it has no tap, lease or MAC. */
function endpointOf(
  row: VmRow,
  addresses: ReadonlyMap<string, string>,
  replicas: ReadonlyMap<string, readonly string[]>,
): EndpointPolicy | undefined {
  if (row.tap === null || row.ip === null || row.mac === null) return undefined;
  const policy = row.network_policy;
  return {
    owner: row.name,
    link: row.tap,
    mac: row.mac,
    address: row.ip,
    egress: policy.egress,
    allowEgress: policy.allow_egress.map((r) => ({
      cidr: r.cidr.includes("/") ? r.cidr : `${r.cidr}/32`,
      ...(r.protocol === undefined ? {} : { protocol: r.protocol }),
      ...(r.port === undefined ? {} : { port: r.port }),
    })),
    // Peers without a lease (stopped and reconciled, or never started) have no address yet.
    allowFrom: [
      ...new Set(policy.allow_from.flatMap((peer) => {
        if (peer.startsWith(DEPLOYMENT_PEER)) {
          // Every replica with an address, now: the rules are rewritten as replicas come and go.
          return (replicas.get(peer.slice(DEPLOYMENT_PEER.length)) ?? []).filter((ip) =>
            ip !== row.ip
          );
        }
        const ip = addresses.get(peer);
        return ip === undefined ? [] : [ip];
      })),
    ],
    // kestrel's port as this run of the VM was booted with (8080 before it was recorded).
    closedPorts: [{ port: row.agent_port ?? LEGACY_AGENT_PORT, protocol: "tcp" }],
    hostPorts: policy.allow_host_ports.map((p) => ({ port: p.port, protocol: p.protocol })),
  };
}

/** The endpoints of every VM that runs, from the store as it is now. */
export function currentEndpoints(rt: VmRuntime): EndpointPolicy[] {
  const rows = rt.store.list();
  const addresses = new Map<string, string>();
  const replicas = new Map<string, string[]>();
  for (const row of rows) {
    if (row.ip === null || !inPool(rt.pool, row.ip)) continue;
    addresses.set(row.name, row.ip);
    if (row.deployment !== null) {
      replicas.set(row.deployment, [...(replicas.get(row.deployment) ?? []), row.ip]);
    }
  }
  return rows.flatMap((row) => {
    if (row.ip !== null && !inPool(rt.pool, row.ip)) return [];
    const endpoint = endpointOf(row, addresses, replicas);
    return endpoint === undefined ? [] : [endpoint];
  });
}

/** Rewrites the host's policy rules from the store (serialised; the store read in the lock). */
export async function syncPolicies(rt: VmRuntime): Promise<void> {
  await rt.mutex.run(POLICY_KEY, async () => {
    const endpoints = currentEndpoints(rt);
    await rt.network.setPolicies(endpoints);
    rt.logger.debug("network policies set", { count: endpoints.length });
  });
}

/** Rewrites the rules, logging instead of throwing (cleanup paths: a VM went away). */
export async function syncPoliciesQuietly(rt: VmRuntime, vm: string): Promise<void> {
  try {
    await syncPolicies(rt);
  } catch (err) {
    rt.logger.error("updating network policies failed", { vm, error: err });
  }
}

class Rollback extends Error {}

/**
 * Replaces the policy of `row` (starting or running; the caller holds its lock): nft first with
 * the state the change makes, then the store. `invalid_argument` naming `allow_from[i]` for a
 * peer that does not exist; the network's error when nft refuses — nothing changed either way.
 */
export async function replacePolicy(
  rt: VmRuntime,
  row: VmRow,
  policy: NetworkPolicy,
): Promise<void> {
  await rt.mutex.run(POLICY_KEY, async () => {
    let endpoints: EndpointPolicy[] = [];
    try {
      rt.transaction(() => {
        rt.policies.set(row.id, policy, "");
        endpoints = currentEndpoints(rt);
        throw new Rollback();
      });
    } catch (err) {
      if (!(err instanceof Rollback)) throw err;
    }
    await rt.network.setPolicies(endpoints);
    try {
      rt.transaction(() => rt.policies.set(row.id, policy, ""));
    } catch (err) {
      // The rules are the new ones, the store still holds the old policy: put them back.
      await rt.network.setPolicies(currentEndpoints(rt)).catch((again) =>
        rt.logger.error("restoring network policies failed", { vm: row.name, error: again })
      );
      throw err;
    }
    rt.logger.info("network policy changed", { vm: row.name, ...policy });
  });
}

/**
 * Refuses a policy change for a VM that does not run: its rules exist only while its tap does,
 * and the change is applied to them at once (`invalid_state` with the way out).
 */
export function assertPolicyChangeable(row: VmRow): void {
  if (row.state === "starting" || row.state === "running") return;
  throw new VolantError(
    "invalid_state",
    `VM ${row.name} is ${row.state}: a network policy is changed on a running VM, where it ` +
      `applies at once; start it first (volar vms start ${row.name}), or delete it and create ` +
      "it again with the policy",
    { name: row.name, state: row.state },
  );
}
