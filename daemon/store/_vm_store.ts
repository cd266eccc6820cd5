/** The {@linkcode VmStore} over the `vms` table (with the lease and ports joined in). @module */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import {
  DEFAULT_NETWORK_POLICY,
  type NetworkPolicy,
  NO_RESTARTS,
  type PortMapping,
  type VmRestartState,
  VolantError,
} from "../../schema/mod.ts";
import type { VmmHandle } from "../../hypervisor/driver.ts";
import type { VmmJail } from "../../hypervisor/jail/types.ts";
import type { BootTimeline } from "../../schema/boot_config.ts";
import type { ImageOverrides, NewVm, VmPatch, VmRow, VmStore, WorkloadSummary } from "./types.ts";
import { createPolicyReader } from "./_policy_store.ts";
import { AgentSecret } from "../kestrel/secret.ts";

/** A row as `node:sqlite` returns it. */
export type SqlRow = Record<string, SQLInputValue>;

const PLAIN_COLUMNS = [
  "state",
  "cpu_cores",
  "memory_mb",
  "kernel",
  "kernel_cmdline",
  "hypervisor",
  "started_at",
  "ready_at",
  "boot_ms",
  "last_error",
  "serial_offset",
  "mac",
  "tap",
  "last_ip",
  "plugin",
  "image",
  "image_digest",
  "agent_port",
  "jail_uid",
  "deployment",
  "generation",
] as const;

function handleColumns(handle: VmmHandle | null): Record<string, SQLInputValue> {
  return {
    vmm_driver: handle?.driver ?? null,
    vmm_pid: handle?.pid ?? null,
    vmm_start_time: handle?.startTime ?? null,
    vmm_api_socket: handle?.apiSocket ?? null,
    vmm_runtime_dir: handle?.runtimeDir ?? null,
    vmm_log: handle?.vmmLog ?? null,
    vmm_jail: handle?.jail ? JSON.stringify(handle.jail) : null,
  };
}

function text(value: SQLInputValue | undefined): string | null {
  return value === null || value === undefined ? null : String(value);
}

function toRow(r: SqlRow, ports: PortMapping[], network_policy: NetworkPolicy): VmRow {
  const handle: VmmHandle | null = r.vmm_pid === null ? null : {
    driver: String(r.vmm_driver),
    pid: Number(r.vmm_pid),
    startTime: Number(r.vmm_start_time),
    apiSocket: String(r.vmm_api_socket),
    runtimeDir: String(r.vmm_runtime_dir),
    vmmLog: String(r.vmm_log),
    ...(r.vmm_jail === null || r.vmm_jail === undefined
      ? {}
      : { jail: JSON.parse(String(r.vmm_jail)) as VmmJail }),
  };
  return {
    id: Number(r.id),
    name: String(r.name),
    state: r.state as VmRow["state"],
    cpu_cores: Number(r.cpu_cores),
    memory_mb: Number(r.memory_mb),
    kernel: r.kernel as VmRow["kernel"],
    kernel_cmdline: text(r.kernel_cmdline),
    hypervisor: r.hypervisor as VmRow["hypervisor"],
    kvm: Number(r.kvm) === 1,
    created_at: String(r.created_at),
    updated_at: String(r.updated_at),
    started_at: text(r.started_at),
    ready_at: text(r.ready_at),
    boot_ms: r.boot_ms === null ? null : Number(r.boot_ms),
    last_error: text(r.last_error),
    serial_offset: Number(r.serial_offset),
    handle,
    mac: text(r.mac),
    tap: text(r.tap),
    last_ip: text(r.last_ip),
    plugin: text(r.plugin),
    workload: r.workload === null || r.workload === undefined
      ? null
      : JSON.parse(String(r.workload)) as WorkloadSummary,
    image: text(r.image),
    image_digest: text(r.image_digest),
    image_overrides: r.image_overrides === null || r.image_overrides === undefined
      ? null
      : JSON.parse(String(r.image_overrides)) as ImageOverrides,
    ip: text(r.ip),
    ports,
    network_policy,
    agent_port: r.agent_port === null || r.agent_port === undefined ? null : Number(r.agent_port),
    agent_secret: AgentSecret.from(text(r.agent_secret)),
    jail_uid: r.jail_uid === null || r.jail_uid === undefined ? null : Number(r.jail_uid),
    deployment: text(r.deployment),
    generation: r.generation === null || r.generation === undefined ? null : Number(r.generation),
    restart: r.restart === null || r.restart === undefined
      ? { ...NO_RESTARTS }
      : JSON.parse(String(r.restart)) as VmRestartState,
    timeline: r.timeline === null || r.timeline === undefined
      ? null
      : JSON.parse(String(r.timeline)) as BootTimeline,
  };
}

function toPort(r: SqlRow): PortMapping {
  return {
    host_port: Number(r.host_port),
    guest_port: Number(r.guest_port),
    protocol: r.protocol === "udp" ? "udp" : "tcp",
  };
}

const SELECT = "SELECT vms.*, l.ip AS ip FROM vms LEFT JOIN ip_leases l ON l.vm_id = vms.id";
const PORTS = "SELECT vm_id, host_port, guest_port, protocol FROM port_forwards";
const PORT_ORDER = "ORDER BY host_port, protocol";

/** Builds the VM store over an open database. */
export function createVmStore(
  db: DatabaseSync,
  now: () => Date,
  transaction: <T>(fn: () => T) => T,
): VmStore {
  const selectOne = db.prepare(`${SELECT} WHERE vms.name = ?`);
  const selectAll = db.prepare(`${SELECT} ORDER BY vms.name`);
  const selectByDeployment = db.prepare(`${SELECT} WHERE vms.deployment = ? ORDER BY vms.name`);
  const portsOf = db.prepare(`${PORTS} WHERE vm_id = ? ${PORT_ORDER}`);
  const allPorts = db.prepare(`${PORTS} ${PORT_ORDER}`);
  const countAll = db.prepare("SELECT COUNT(*) AS n FROM vms");
  const deleteOne = db.prepare("DELETE FROM vms WHERE name = ?");
  const policies = createPolicyReader(db);

  function withParts(r: SqlRow): VmRow {
    const id = Number(r.id);
    return toRow(r, (portsOf.all(id) as SqlRow[]).map(toPort), policies.of(id));
  }

  function get(name: string): VmRow | undefined {
    const r = selectOne.get(name) as SqlRow | undefined;
    return r === undefined ? undefined : withParts(r);
  }

  function list(): VmRow[] {
    const byVm = new Map<number, PortMapping[]>();
    for (const p of allPorts.all() as SqlRow[]) {
      const id = Number(p.vm_id);
      byVm.set(id, [...(byVm.get(id) ?? []), toPort(p)]);
    }
    const policy = policies.all();
    return (selectAll.all() as SqlRow[]).map((r) => {
      const id = Number(r.id);
      return toRow(
        r,
        byVm.get(id) ?? [],
        policy.get(id) ?? structuredClone(DEFAULT_NETWORK_POLICY),
      );
    });
  }

  function insert(vm: NewVm): VmRow {
    const ts = now().toISOString();
    const values: Record<string, SQLInputValue> = {
      name: vm.name,
      kvm: vm.kvm ? 1 : 0,
      created_at: ts,
      updated_at: ts,
      ...handleColumns(vm.handle),
    };
    for (const column of PLAIN_COLUMNS) values[column] = vm[column] ?? null;
    values.agent_secret = vm.agent_secret?.reveal() ?? null;
    values.workload = vm.workload === null ? null : JSON.stringify(vm.workload);
    values.restart = vm.restart === undefined ? null : JSON.stringify(vm.restart);
    values.timeline = vm.timeline ? JSON.stringify(vm.timeline) : null;
    values.image_overrides = vm.image_overrides === null
      ? null
      : JSON.stringify(vm.image_overrides);
    const keys = Object.keys(values);
    try {
      db.prepare(
        `INSERT INTO vms (${keys.join(", ")}) VALUES (${keys.map((k) => `:${k}`).join(", ")})`,
      ).run(values);
    } catch (err) {
      if (String((err as Error).message).includes("UNIQUE constraint failed: vms.name")) {
        throw new VolantError("already_exists", `VM ${vm.name} already exists`, {
          name: vm.name,
        });
      }
      throw err;
    }
    return get(vm.name)!;
  }

  function update(name: string, patch: VmPatch): VmRow {
    const values: Record<string, SQLInputValue> = { updated_at: now().toISOString() };
    for (const column of PLAIN_COLUMNS) {
      const value = patch[column];
      if (value !== undefined) values[column] = value;
    }
    if (patch.kvm !== undefined) values.kvm = patch.kvm ? 1 : 0;
    if (patch.agent_secret !== undefined) {
      values.agent_secret = patch.agent_secret === null ? null : patch.agent_secret.reveal();
    }
    if (patch.workload !== undefined) {
      values.workload = patch.workload === null ? null : JSON.stringify(patch.workload);
    }
    if (patch.restart !== undefined) values.restart = JSON.stringify(patch.restart);
    if (patch.timeline !== undefined) {
      values.timeline = patch.timeline === null ? null : JSON.stringify(patch.timeline);
    }
    if (patch.image_overrides !== undefined) {
      values.image_overrides = patch.image_overrides === null
        ? null
        : JSON.stringify(patch.image_overrides);
    }
    if (patch.handle !== undefined) Object.assign(values, handleColumns(patch.handle));
    const sets = Object.keys(values).map((k) => `${k} = :${k}`).join(", ");
    const result = db.prepare(`UPDATE vms SET ${sets} WHERE name = :name`).run({
      ...values,
      name,
    });
    if (Number(result.changes) === 0) {
      throw new VolantError("not_found", `VM ${name} does not exist`, { name });
    }
    return get(name)!;
  }

  return {
    insert,
    get,
    list,
    listByDeployment: (name) => (selectByDeployment.all(name) as SqlRow[]).map(withParts),
    count: () => Number((countAll.get() as SqlRow).n),
    update,
    delete: (name) => Number(deleteOne.run(name).changes) > 0,
    transaction,
  };
}
