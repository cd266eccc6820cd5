/**
 * The {@linkcode PolicyStore} over `vm_network_policies` and `vm_policy_peers`: each VM's
 * network policy, its peers kept by row id (so they follow renames and vanish with the peer).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import {
  DEFAULT_NETWORK_POLICY,
  DEPLOYMENT_PEER,
  type EgressRule,
  type HostPortRule,
  type NetworkPolicy,
  VolantError,
} from "../../schema/mod.ts";
import type { SqlRow } from "./_vm_store.ts";
import type { PolicyStore } from "./types.ts";

const POLICIES = "SELECT vm_id, egress, allow_egress, allow_host_ports, allow_from_deployments " +
  "FROM vm_network_policies";
const PEERS = "SELECT p.vm_id, v.name FROM vm_policy_peers p JOIN vms v ON v.id = p.peer_id";

function toPolicy(r: SqlRow | undefined, peers: string[]): NetworkPolicy {
  if (r === undefined) return { ...DEFAULT_NETWORK_POLICY, allow_from: peers };
  return {
    egress: r.egress === "deny" ? "deny" : "allow-internet",
    allow_egress: JSON.parse(String(r.allow_egress)) as EgressRule[],
    allow_from: [
      ...peers,
      ...(JSON.parse(String(r.allow_from_deployments ?? "[]")) as string[]).map((d) =>
        `${DEPLOYMENT_PEER}${d}`
      ),
    ],
    allow_host_ports: JSON.parse(String(r.allow_host_ports)) as HostPortRule[],
  };
}

/** Reads policies: one VM's, or every VM's by row id (VMs without a row get the default). */
export function createPolicyReader(db: DatabaseSync): {
  of(vmId: number): NetworkPolicy;
  all(): Map<number, NetworkPolicy>;
} {
  const one = db.prepare(`${POLICIES} WHERE vm_id = ?`);
  const peersOf = db.prepare(`${PEERS} WHERE p.vm_id = ? ORDER BY p.position`);
  const every = db.prepare(POLICIES);
  const allPeers = db.prepare(`${PEERS} ORDER BY p.vm_id, p.position`);
  return {
    of(vmId) {
      const peers = (peersOf.all(vmId) as SqlRow[]).map((p) => String(p.name));
      return toPolicy(one.get(vmId) as SqlRow | undefined, peers);
    },
    all() {
      const peers = new Map<number, string[]>();
      for (const p of allPeers.all() as SqlRow[]) {
        const id = Number(p.vm_id);
        peers.set(id, [...(peers.get(id) ?? []), String(p.name)]);
      }
      const out = new Map<number, NetworkPolicy>();
      for (const r of every.all() as SqlRow[]) {
        out.set(Number(r.vm_id), toPolicy(r, peers.get(Number(r.vm_id)) ?? []));
      }
      for (const [id, names] of peers) {
        if (!out.has(id)) out.set(id, toPolicy(undefined, names));
      }
      return out;
    },
  };
}

/** Builds the policy store over an open database. */
export function createPolicyStore(db: DatabaseSync): PolicyStore {
  const reader = createPolicyReader(db);
  const upsert = db.prepare(
    "INSERT INTO vm_network_policies (vm_id, egress, allow_egress, allow_host_ports, " +
      "allow_from_deployments) VALUES (?, ?, ?, ?, ?) ON CONFLICT (vm_id) DO UPDATE SET " +
      "egress = excluded.egress, allow_egress = excluded.allow_egress, " +
      "allow_host_ports = excluded.allow_host_ports, " +
      "allow_from_deployments = excluded.allow_from_deployments",
  );
  const clearPeers = db.prepare("DELETE FROM vm_policy_peers WHERE vm_id = ?");
  const addPeer = db.prepare(
    "INSERT OR IGNORE INTO vm_policy_peers (vm_id, peer_id, position) VALUES (?, ?, ?)",
  );
  const idOf = db.prepare("SELECT id FROM vms WHERE name = ?");
  const nameOf = db.prepare("SELECT name FROM vms WHERE id = ?");
  const deploymentNamed = db.prepare("SELECT 1 AS found FROM deployments WHERE name = ?");

  return {
    get: (vmId) => reader.of(vmId),
    all: () => reader.all(),
    set(vmId, policy, field = "network_policy") {
      const self = (nameOf.get(vmId) as SqlRow | undefined)?.name;
      if (self === undefined) {
        throw new VolantError("not_found", `VM with row id ${vmId} does not exist`, {
          vm_id: vmId,
        });
      }
      const groups: string[] = [];
      const peers = policy.allow_from.flatMap((name, i) => {
        const at = field === "" ? `allow_from[${i}]` : `${field}.allow_from[${i}]`;
        if (name.startsWith(DEPLOYMENT_PEER)) {
          const deployment = name.slice(DEPLOYMENT_PEER.length);
          if (deploymentNamed.get(deployment) === undefined) {
            throw new VolantError(
              "invalid_argument",
              `${at}: deployment ${deployment} does not exist; name one of \`volar deployments list\``,
              { field: at, value: name },
            );
          }
          if (!groups.includes(deployment)) groups.push(deployment);
          return [];
        }
        if (name === self) {
          throw new VolantError(
            "invalid_argument",
            `${at}: ${name} is this VM; name the other VMs that may reach it`,
            { field: at, value: name },
          );
        }
        const row = idOf.get(name) as SqlRow | undefined;
        if (row === undefined) {
          throw new VolantError(
            "invalid_argument",
            `${at}: VM ${name} does not exist; name a VM of \`volar vms list\``,
            { field: at, value: name },
          );
        }
        return [Number(row.id)];
      });
      upsert.run(
        vmId,
        policy.egress,
        JSON.stringify(policy.allow_egress),
        JSON.stringify(policy.allow_host_ports),
        JSON.stringify(groups),
      );
      clearPeers.run(vmId);
      peers.forEach((peer, i) => addPeer.run(vmId, peer, i));
    },
  };
}
