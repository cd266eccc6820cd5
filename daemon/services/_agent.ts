/**
 * The VM service's side of kestrel's access: the port (the config's `guest.agent_port`), a new
 * secret at every start (the boot config is rebuilt each launch, so a restarted VM never reuses
 * one, and it is cleared when the VMM ends), the target the daemon's kestrel client uses, and
 * the rule that a published port never leads to kestrel.
 *
 * @module
 */
import { AGENT_PORT, type AgentAccess, type PortMapping, VolantError } from "../../schema/mod.ts";
import { AgentSecret } from "../kestrel/secret.ts";
import { type KestrelTarget, kestrelTarget } from "../kestrel/target.ts";
import type { VmRow } from "../store/mod.ts";
import type { VmRuntime } from "./_runtime.ts";

/** kestrel's port for VMs started now. */
export function agentPort(rt: VmRuntime): number {
  return rt.config.agentPort ?? AGENT_PORT;
}

/**
 * Gives VM `name` a new secret and the current port for this start, recorded on its row before
 * the boot config is written; returns what the boot config carries.
 */
export function issueAgentAccess(rt: VmRuntime, name: string): AgentAccess {
  const secret = AgentSecret.generate();
  const port = agentPort(rt);
  rt.store.update(name, { agent_port: port, agent_secret: secret });
  return { port, secret: secret.reveal() };
}

/**
 * Records kestrel's port and secret as a restored guest already knows them (its memory holds
 * them): the daemon must speak to that kestrel with them.
 */
export function keepAgentAccess(rt: VmRuntime, name: string, access: AgentAccess): AgentAccess {
  const secret = AgentSecret.from(access.secret);
  if (secret === null) {
    throw new VolantError("invalid_state", `the saved guest's kestrel secret is not valid`);
  }
  rt.store.update(name, { agent_port: access.port, agent_secret: secret });
  return access;
}

/**
 * Refuses a publish list that forwards to kestrel's port (TCP): kestrel answers only the
 * daemon, and a published port reaches it from every host address. `invalid_argument` naming
 * `publish[i].guest_port` and the way out.
 */
export function refuseAgentPort(publish: readonly PortMapping[], port: number): void {
  const i = publish.findIndex((p) => p.protocol === "tcp" && p.guest_port === port);
  if (i < 0) return;
  const field = `publish[${i}].guest_port`;
  throw new VolantError(
    "invalid_argument",
    `${field}: ${port}/tcp is kestrel's API port in the guest, which only volantd may reach; ` +
      `publish the workload's own port, or move kestrel to another port with guest.agent_port ` +
      `in the daemon config`,
    { field, value: port, agent_port: port },
  );
}

/**
 * Where VM `name`'s kestrel answers, for a call now: `invalid_state` unless the VM is starting
 * or running with an address.
 */
export function runningTarget(row: VmRow): KestrelTarget {
  if (row.state !== "running" && row.state !== "starting") {
    throw new VolantError(
      "invalid_state",
      `VM ${row.name} is ${row.state}; start it first (volar vms start ${row.name})`,
      { name: row.name, state: row.state },
    );
  }
  const target = kestrelTarget(row);
  if (target === undefined) {
    throw new VolantError("invalid_state", `VM ${row.name} has no address to reach kestrel on`, {
      name: row.name,
    });
  }
  return target;
}
