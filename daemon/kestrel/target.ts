/** Where the daemon finds a VM's kestrel: its address, port and secret. @module */
import { LEGACY_AGENT_PORT } from "../../schema/mod.ts";
import type { AgentSecret } from "./secret.ts";

/** Where a VM's kestrel listens, and the secret it wants. */
export interface KestrelTarget {
  /** The guest's address. */
  ip: string;
  /** kestrel's port (the one the VM was booted with). */
  port: number;
  /** The VM's secret; `null` only for VMs booted before kestrel had one (sent no header). */
  secret: AgentSecret | null;
}

/** What a VM row says about its kestrel. */
export interface KestrelRowFields {
  ip: string | null;
  agent_port: number | null;
  agent_secret: AgentSecret | null;
}

/**
 * The target of a VM's kestrel, or `undefined` when it holds no address. A VM booted before
 * the port and secret were recorded has its kestrel on the old port, without a secret.
 *
 * @example
 * ```ts
 * import { kestrelTarget } from "./target.ts";
 * import { AgentSecret } from "./secret.ts";
 * const secret = AgentSecret.generate();
 * const t = kestrelTarget({ ip: "192.168.127.2", agent_port: 12751, agent_secret: secret });
 * console.assert(t?.port === 12751 && t.secret === secret);
 * console.assert(kestrelTarget({ ip: null, agent_port: 12751, agent_secret: secret }) === undefined);
 * ```
 */
export function kestrelTarget(vm: KestrelRowFields): KestrelTarget | undefined {
  if (vm.ip === null) return undefined;
  if (vm.agent_port === null) return { ip: vm.ip, port: LEGACY_AGENT_PORT, secret: null };
  return { ip: vm.ip, port: vm.agent_port, secret: vm.agent_secret };
}
